/**
 * The learner: `node services/learner/main.ts [--tenant T] [--dry-run] [--shadow-alerts-block]` with Tripline's environment
 * (TRIPLINE_DATA_DIR or CLICKHOUSE_URL, CLICKHOUSE_DATABASE…; see services/app/config.ts).
 *
 * Rebuilds every baseline from ClickHouse history — completed tasks that never alerted and were never revoked,
 * plus tasks whose alert an operator marked a false positive — and saves them. On the embedded engine run it
 * while Tripline is stopped (one process holds the data directory); against a ClickHouse server it also publishes
 * the book as a new version, which distributed-mode processors poll and swap in (docs/detection.md, "One learner
 * of record"); embedded Tripline loads the rebuilt baselines at its next start. `--shadow-alerts-block` also keeps out tasks whose
 * only alerts were in shadow mode (the processor learns those today; see docs/detection.md).
 */
import { parseArgs } from 'node:util';
import { describeBaseline } from '../core/detect/index.ts';
import { loadConfig } from '../app/config.ts';
import { isTriplineError, messageOf } from '../shared/errors.ts';
import { createLogger } from '../shared/logger.ts';
import { openClickHouseStore } from '../store/clickhouse/store.ts';
import { createDetectionQueries, openDetectionClient } from '../store/clickhouse/detection-queries.ts';
import { createBaselineBooks } from '../store/clickhouse/baseline-books.ts';
import { hostname } from 'node:os';
import { baselineRecords, rebuildBaselines } from './rebuild.ts';

async function main(): Promise<number> {
  let args;
  let config;
  try {
    args = parseArgs({
      options: {
        tenant: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'shadow-alerts-block': { type: 'boolean', default: false },
      },
      strict: true,
    }).values;
    config = loadConfig();
  } catch (error) {
    process.stderr.write(
      `learner: ${messageOf(error)}\nusage: node services/learner/main.ts [--tenant T] [--dry-run] [--shadow-alerts-block]\n`,
    );
    return 2;
  }
  const logger = createLogger(config.logLevel, 'tripline-learner');
  const started = Date.now();
  try {
    const store = await openClickHouseStore({ ...config.store, logger });
    const client = openDetectionClient(config.store);
    try {
      await store.migrate();
      const queries = createDetectionQueries(client, config.store.database);
      const result = await rebuildBaselines(queries, {
        ...(args.tenant === undefined ? {} : { tenant: args.tenant }),
        shadowAlertsBlock: args['shadow-alerts-block'],
        warmupTasks: config.detector.warmupTasks,
        onProgress: (tasks) => logger.debug({ tasks }, 'learning'),
      });
      const records = baselineRecords(result.book, Date.now());
      let version: number | undefined;
      if (!args['dry-run']) {
        await store.saveBaselines(records);
        if (args.tenant === undefined) {
          // The whole book as a new version (a one-tenant rebuild is not a whole book: saved only).
          const books = createBaselineBooks(client, config.store.database);
          const builtMs = Date.now();
          version = Math.max(builtMs, (await books.latestVersion()) + 1);
          await books.publish({
            version,
            builtMs,
            learner: `learner-cli@${hostname()}`,
            tasks: result.tasks,
            feedback: await books.feedbackCount(),
            records,
          });
        }
      }
      for (const entry of result.book.list()) {
        if (entry.agentId !== '') continue;
        const described = describeBaseline(entry.baseline);
        logger.info(
          {
            tenant: entry.tenant,
            taskType: entry.taskType,
            tasks: entry.baseline.tasks,
            falsePositivesLearned: described.falsePositivesLearned,
          },
          'baseline rebuilt',
        );
      }
      logger.info(
        {
          tasks: result.tasks,
          falsePositives: result.falsePositives,
          skipped: result.skipped,
          baselines: records.length,
          saved: !args['dry-run'],
          ...(version === undefined ? {} : { version }),
          ms: Date.now() - started,
        },
        args['dry-run'] ? 'rebuilt the baselines (dry run: nothing saved)' : 'rebuilt and saved the baselines',
      );
      return 0;
    } finally {
      await client.close();
      await store.close();
    }
  } catch (error) {
    logger.fatal(
      { code: isTriplineError(error) ? error.code : 'LEARNER_FAILED', err: messageOf(error) },
      `the learner failed: ${messageOf(error)}`,
    );
    return 1;
  }
}

process.exitCode = await main();
