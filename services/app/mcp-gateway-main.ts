/**
 * The MCP gateway of the distributed mode on its own: `npm run mcp-gateway` (`node services/app/mcp-gateway-main.ts`)
 * beside the API and the OTLP receiver (TRIPLINE_MCP_API_URL, TRIPLINE_MCP_OTLP_URL, TRIPLINE_MCP_API_TOKEN). It
 * needs no Kafka and no ClickHouse. Stops cleanly on SIGINT/SIGTERM.
 */
import { loadConfig } from './config.ts';
import { stopOnSignals } from './distributed-main.ts';
import { startMcpGatewayService } from './mcp-gateway.ts';
import { isTriplineError, messageOf } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';

let config;
try {
  config = loadConfig();
} catch (error) {
  process.stderr.write(`tripline: ${messageOf(error)}\n`);
  process.exit(2);
}
const logger = createLogger(config.logLevel);
try {
  const running = await startMcpGatewayService(config, logger);
  stopOnSignals(running, logger, config.shutdownGraceMs);
} catch (error) {
  const code = isTriplineError(error) ? error.code : 'START_FAILED';
  logger.fatal({ code, err: messageOf(error) }, `the MCP gateway could not start: ${messageOf(error)}`);
  process.exit(isTriplineError(error) && error.code === 'CONFIG_INVALID' ? 2 : 1);
}
