/**
 * How long a processor takes to start over a store that holds many active tasks: it rebuilds each task's
 * detector state from the task's stored events before it scores anything (services/processor/processor.ts,
 * restoreActiveTasks). On the in-process engine (chdb), in a fresh temporary directory removed at the end.
 *
 *   node test/bench/processor-restart.bench.ts [tasks=5000] [eventsPerTask=6] [tenants=3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_DETECTOR_CONFIG } from '../../services/core/detect/index.ts';
import { createLocalKillSwitch } from '../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../services/processor/processor.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { AgentEvent } from '../../schemas/events.ts';
import { dataAccess, taskCtx, toolCall } from '../unit/detect/fixtures.ts';

const TASKS = Number(process.argv[2] ?? 5000);
const EVENTS_PER_TASK = Number(process.argv[3] ?? 6);
const TENANTS = Number(process.argv[4] ?? 3);

const dataDir = mkdtempSync(join(tmpdir(), 'tripline-bench-restart-'));
const logger = createLogger('warn');
try {
  const store = await openClickHouseStore({ dataDir, database: 'restart_bench', logger });
  await store.migrate();
  const startProcessor = () =>
    createProcessor({
      store,
      killSwitch: createLocalKillSwitch(),
      logger,
      taskIdleTimeoutMs: 3_600_000,
      detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: 1_000_000 },
    });

  const first = await startProcessor();
  const t0 = performance.now();
  const base = Date.now() - 600_000;
  let batch: AgentEvent[] = [];
  for (let i = 0; i < TASKS; i += 1) {
    const ctx = taskCtx(`type-${String(i % 10)}`, `task-${String(i)}`, `agent-${String(i % 50)}`, base + i);
    for (let n = 0; n < EVENTS_PER_TASK; n += 1) {
      if (n % 2 === 0) toolCall(ctx, 'search_tickets');
      else dataAccess(ctx, 'crm.tickets', { rows: 5 });
    }
    const tenant = `tenant-${String(i % TENANTS)}`;
    batch.push(...ctx.events.map((event) => ({ ...event, tenant })));
    if (batch.length >= 5000) {
      await first.handle({ events: batch, boundaries: [] });
      batch = [];
    }
  }
  if (batch.length > 0) await first.handle({ events: batch, boundaries: [] });
  await first.stop();
  const active = (await store.listActiveTasks()).length;
  process.stderr.write(
    `stored ${String(TASKS)} active tasks × ${String(EVENTS_PER_TASK)} events in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );

  const t1 = performance.now();
  const second = await startProcessor();
  const startMs = performance.now() - t1;
  await second.stop();
  console.log(
    `processor start over ${String(active)} active tasks (${String(active * EVENTS_PER_TASK)} stored events, ${String(TENANTS)} tenants): ${(startMs / 1000).toFixed(2)} s ` +
      `(${((startMs * 1000) / Math.max(1, active)).toFixed(0)} µs per task)`,
  );
  await store.close();
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
