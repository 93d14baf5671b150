/**
 * The shop's MCP server (test/helpers/mcp-shop.ts) over stdio, as the MCP gateway spawns a local server:
 * `node test/agents/typescript/mcp-shop-stdio.ts <calls.jsonl>` appends every tool call that reaches it to the file.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createShopServer, logCallsTo } from '../../helpers/mcp-shop.ts';

const log = process.argv[2];
if (log === undefined) {
  process.stderr.write('usage: mcp-shop-stdio.ts <calls.jsonl>\n');
  process.exit(2);
}
await createShopServer(logCallsTo(log)).connect(new StdioServerTransport());
