/**
 * The console's activity query (services/store/clickhouse/console-queries.ts) on the in-process engine (chdb): events
 * per kind, a tool call recorded by two instrumentations counted once (its second record is stored marked,
 * `tool.sameCallOf` in `events.tool_facts`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentEvent, Verdict } from '../../schemas/events.ts';
import { openConsoleQueries } from '../../services/store/clickhouse/console-queries.ts';
import { openClickHouseStore } from '../../services/store/clickhouse/store.ts';

const DATA_DIR = mkdtempSync(join(tmpdir(), 'tripline-console-activity-'));
const DATABASE = 'tripline_console_activity';

afterAll(() => rmSync(DATA_DIR, { recursive: true, force: true }));

function toolEvent(spanId: string, parentSpanId: string, startMs: number, sameCallOf?: string): AgentEvent {
  return {
    id: `trace-1${spanId}`,
    tenant: 'acme',
    kind: 'tool_call',
    taskId: 'task-1',
    taskType: 'refund',
    agentId: 'agent-1',
    traceId: 'trace-1',
    spanId,
    parentSpanId,
    name: 'execute_tool issue_refund',
    startMs,
    endMs: startMs + 10,
    error: false,
    tool: { name: 'issue_refund', ...(sameCallOf === undefined ? {} : { sameCallOf }) },
    attributes: {},
  };
}

const verdict: Verdict = { score: 0, decision: 'allow', regime: 'rules', contributions: [], shadow: false };

describe('console activity over ClickHouse', () => {
  it('counts a tool call recorded twice once', async () => {
    const store = await openClickHouseStore({ dataDir: DATA_DIR, database: DATABASE });
    await store.migrate();
    const nowMs = Date.now();
    const counted = toolEvent('oi', 'run', nowMs - 5_000);
    const second = toolEvent('core', 'oi', nowMs - 4_999, counted.id);
    const other = toolEvent('next', 'run', nowMs - 3_000);
    await store.insertEvents([counted, second, other].map((event) => ({ event, verdict })));
    const queries = await openConsoleQueries({ url: undefined, dataDir: DATA_DIR, database: DATABASE });
    try {
      const activity = await queries.activity('acme', { nowMs: Date.now() + 1_000, bucketMs: 60_000, buckets: 5 });
      expect(activity.series.tool_call.reduce((sum, n) => sum + n, 0)).toBe(2);
      expect((await store.eventsForTask('acme', 'task-1')).map(({ event }) => event.tool?.sameCallOf)).toEqual([
        undefined,
        counted.id,
        undefined,
      ]);
    } finally {
      await queries.close();
      await store.close();
    }
  });
});
