/**
 * `npm start`: Tripline in one process on the embedded defaults, or the distributed mode (every role, or
 * those in TRIPLINE_ROLES) when KAFKA_BROKERS is set. Stops cleanly on SIGINT/SIGTERM.
 */
import { loadConfig } from './config.ts';
import { runDistributedMain, stopOnSignals } from './distributed-main.ts';
import { ROLES } from './distributed.ts';
import { describeGeneratedTokens } from './auth.ts';
import { startEmbedded } from './embedded.ts';
import { isTriplineError, messageOf } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`tripline: ${messageOf(error)}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  if (config.kafka.brokers !== undefined) {
    await runDistributedMain(ROLES, { config, logger });
    return;
  }
  try {
    const running = await startEmbedded(config, logger);
    // Shown once, on the terminal only: the log may be shipped elsewhere and must never hold a secret.
    process.stderr.write(describeGeneratedTokens(running.auth.generated));
    const mcp = running.mcpGatewayUrl === undefined ? '' : `; MCP servers at ${running.mcpGatewayUrl}/mcp/<name>`;
    logger.info(
      {
        otlp: `${running.otlpUrl}/v1/traces`,
        api: running.apiUrl,
        mcpGateway: running.mcpGatewayUrl,
        dataDir: config.store.url ?? config.store.dataDir,
      },
      `Tripline is running: send OTLP traces to ${running.otlpUrl}/v1/traces; API and console at ${running.apiUrl}${mcp}`,
    );
    stopOnSignals(running, logger, config.shutdownGraceMs);
  } catch (error) {
    const code = isTriplineError(error) ? error.code : 'START_FAILED';
    logger.fatal({ code, err: messageOf(error) }, `Tripline could not start: ${messageOf(error)}`);
    process.exit(1);
  }
}

await main();
