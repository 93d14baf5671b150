/**
 * Prints the configuration tables for the README from the code that reads them
 * (`node scripts/config-table.ts`): the core variables, the MCP gateway's, then the distributed mode's.
 */
import { CONFIG_VARIABLES } from '../services/app/config.ts';
import { KAFKA_CONFIG_VARIABLES } from '../services/bus/kafka/config.ts';
import { ROLE_VARIABLE } from '../services/app/distributed.ts';
import { MCP_GATEWAY_VARIABLES } from '../services/mcp-gateway/config.ts';

function table(rows: readonly (readonly [string, string, string])[]): string {
  return [
    '| variable | default | meaning |',
    '|---|---|---|',
    ...rows.map(([name, fallback, meaning]) => `| \`${name}\` | \`${fallback}\` | ${meaning} |`),
  ].join('\n');
}

console.log(table(CONFIG_VARIABLES));
console.log('\nThe MCP gateway (docs/mcp-gateway.md):\n');
console.log(table(MCP_GATEWAY_VARIABLES));
console.log('\nDistributed mode (read when `KAFKA_BROKERS` is set):\n');
console.log(table([ROLE_VARIABLE, ...KAFKA_CONFIG_VARIABLES]));
