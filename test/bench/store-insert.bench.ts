/**
 * Insert throughput of the ClickHouse store on the in-process engine (chdb): 100k scored events in batches of
 * 1000 (one JSONCompactEachRow insert per batch), then the FINAL reads the processor and the API make.
 *
 * Then the engine's cost by the table's width: the same rows' text inserted again into a probe table of four
 * columns (tenant, task id, event id, and the whole row as one String), to show how much of the engine's CPU per
 * row is the events table's 43 columns (each a stream to parse into, compress and write) rather than its bytes.
 *
 *   node test/bench/store-insert.bench.ts [events=100000] [batch=1000]
 *
 * Runs in a fresh temporary directory, removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { Readable } from 'node:stream';
import {
  BULK_INSERT_SETTINGS_SQL,
  WITHOUT_QUERY_SETTINGS,
  embeddedClient,
  embeddedDataDir,
} from '../../services/store/clickhouse/client.ts';
import { eventRowValues } from '../../services/store/clickhouse/event-rows.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';
import type { ScoredEvent } from '../../services/store/store.ts';

const TOTAL = Number(process.argv[2] ?? 100_000);
const BATCH = Number(process.argv[3] ?? 1000);
const TASKS = 1000;

const baseUs = (Math.floor(Date.now() / 1000) - 86_400) * 1_000_000;

/** A realistic mix: tool calls, data accesses with row counts, a few privilege changes, a handful of attributes. */
function makeEvent(i: number): ScoredEvent {
  const kind = i % 10 === 9 ? 'privilege_change' : i % 3 === 0 ? 'data_access' : 'tool_call';
  const task = i % TASKS;
  const startUs = baseUs + i * 1000 + 123;
  return {
    event: {
      id: `bench-${String(i)}`,
      tenant: `tenant-${String(task % 5)}`,
      kind,
      taskId: `task-${String(task)}`,
      taskType: `type-${String(task % 20)}`,
      agentId: `agent-${String(task % 50)}`,
      traceId: (i * 7919).toString(16).padStart(32, '0'),
      spanId: i.toString(16).padStart(16, '0'),
      parentSpanId: task.toString(16).padStart(16, '0'),
      name:
        kind === 'tool_call'
          ? 'execute_tool search_web'
          : kind === 'data_access'
            ? 'SELECT crm.customers'
            : 'grant scopes',
      startMs: startUs / 1000,
      endMs: (startUs + 25_000) / 1000,
      error: i % 50 === 0,
      ...(kind === 'tool_call'
        ? { tool: { name: 'search_web', type: 'function', sideEffect: 'read' as const, target: 'api.search.example' } }
        : {}),
      ...(kind === 'data_access'
        ? {
            data: {
              resource: 'crm.customers',
              system: 'postgresql',
              operation: 'SELECT',
              rows: i % 500,
              bytes: (i % 500) * 220,
              classification: 'confidential' as const,
            },
          }
        : {}),
      ...(kind === 'privilege_change'
        ? { privilege: { action: 'grant', scopesBefore: ['read:crm'], scopesAfter: ['read:crm', 'write:crm'] } }
        : {}),
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'service.name': 'support-agent',
        'db.response.returned_rows': i % 500,
        retry: false,
      },
    },
    verdict: {
      score: (i % 1000) / 10,
      decision: i % 100 === 0 ? 'alert' : 'allow',
      regime: 'type_baseline',
      contributions:
        i % 100 === 0 ? [{ feature: 'data.rows_per_task', score: 80, reason: 'Read 10x the usual rows' }] : [],
      shadow: false,
    },
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

/** The rows' text into a table of four columns: CPU of the threads other than this one (the engine's), and MB sent. */
async function narrowProbe(batches: readonly ScoredEvent[][]): Promise<{ engineSeconds: number; megabytes: number }> {
  const client = embeddedClient(embeddedDataDir(dataDir), { application: 'bench', settings: {} });
  try {
    await client.command({
      query: `CREATE TABLE tripline.width_probe (tenant LowCardinality(String), task_id String, id String, row String CODEC(ZSTD(1)))
              ENGINE = ReplacingMergeTree ORDER BY (tenant, task_id, id)`,
    });
    const bodies = batches.map((batch) =>
      batch
        .map((scored) =>
          JSON.stringify([
            scored.event.tenant,
            scored.event.taskId,
            scored.event.id,
            JSON.stringify(eventRowValues(scored)),
          ]),
        )
        .join('\n'),
    );
    const insert = async (body: string): Promise<void> => {
      const result = await client.exec({
        query: `INSERT INTO tripline.width_probe (tenant, task_id, id, row) SETTINGS ${BULK_INSERT_SETTINGS_SQL} FORMAT JSONCompactEachRow`,
        values: Readable.from([body]),
        clickhouse_settings: WITHOUT_QUERY_SETTINGS,
      });
      result.stream.destroy();
    };
    await insert(bodies[0]?.split('\n').slice(0, 10).join('\n') ?? '');
    const cpu = process.cpuUsage();
    const mainThread = process.threadCpuUsage();
    for (const body of bodies) await insert(body);
    const used = process.cpuUsage(cpu);
    const main = process.threadCpuUsage(mainThread);
    const engineSeconds = (used.user + used.system - main.user - main.system) / 1e6;
    return { engineSeconds, megabytes: bodies.reduce((sum, body) => sum + body.length, 0) / 1e6 };
  } finally {
    await client.close();
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'tripline-store-bench-'));
const store = await openClickHouseStore({ dataDir, database: 'tripline' });
try {
  await store.migrate();
  const batches: ScoredEvent[][] = [];
  for (let start = 0; start < TOTAL; start += BATCH) {
    batches.push(Array.from({ length: Math.min(BATCH, TOTAL - start) }, (_, j) => makeEvent(start + j)));
  }
  await store.insertEvents(batches[0]?.slice(0, 10) ?? []); // warm up (first insert loads the table)

  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const mainThread = process.threadCpuUsage();
  const started = performance.now();
  for (const batch of batches) {
    const t0 = performance.now();
    await store.insertEvents(batch);
    latencies.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  const main = process.threadCpuUsage(mainThread);
  const mainSeconds = (main.user + main.system) / 1e6;
  latencies.sort((a, b) => a - b);

  const t1 = performance.now();
  const counts = await store.counts();
  const countMs = performance.now() - t1;
  const t2 = performance.now();
  const timeline = await store.eventsForTask('tenant-1', 'task-1');
  const timelineMs = performance.now() - t2;

  console.log(`events: ${String(TOTAL)} in batches of ${String(BATCH)} on chdb`);
  console.log(
    `insert: ${seconds.toFixed(2)} s = ${Math.round(TOTAL / seconds).toLocaleString('en-US')} rows/s, ${((cpuSeconds / TOTAL) * 10_000).toFixed(3)} CPU-s per 10k rows: main thread (rows, checks, serialisation) ${((mainSeconds / TOTAL) * 10_000).toFixed(3)}, other threads (the engine, V8's background GC) ${(((cpuSeconds - mainSeconds) / TOTAL) * 10_000).toFixed(3)}`,
  );
  console.log(
    `per batch: p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${percentile(latencies, 0.99).toFixed(1)} ms, max ${(latencies[latencies.length - 1] ?? 0).toFixed(1)} ms`,
  );
  console.log(`counts() (FINAL over ${String(counts.events)} events): ${countMs.toFixed(0)} ms`);
  console.log(`eventsForTask (FINAL, ${String(timeline.length)} events): ${timelineMs.toFixed(0)} ms`);
  console.log(`rss: ${String(Math.round(process.memoryUsage().rss / 2 ** 20))} MB`);

  const engineSeconds = cpuSeconds - mainSeconds;
  const narrow = await narrowProbe(batches);
  console.log(
    `the same rows into 4 columns (the row's text as one String, ${narrow.megabytes.toFixed(0)} MB): other threads ${((narrow.engineSeconds / TOTAL) * 10_000).toFixed(3)} CPU-s per 10k rows against ${((engineSeconds / TOTAL) * 10_000).toFixed(3)} into the events table's 43`,
  );
} finally {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
}
