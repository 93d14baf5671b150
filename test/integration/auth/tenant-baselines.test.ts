/**
 * Baselines are per tenant: what one tenant's tasks taught the detector is never what another tenant's tasks
 * are scored against, even for the same task type and agent id.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentEvent, TaskBoundary } from '../../../schemas/events.ts';
import { DEFAULT_DETECTOR_CONFIG } from '../../../services/core/detect/index.ts';
import { createLocalKillSwitch } from '../../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../../services/processor/processor.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { openClickHouseStore } from '../../../services/store/clickhouse/store.ts';
import { TENANT, benignTask, rng } from '../../unit/detect/fixtures.ts';

const WARMUP = 5;
const dataDir = mkdtempSync(join(tmpdir(), 'tripline-tenant-baselines-'));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function boundary(events: readonly AgentEvent[]): TaskBoundary {
  const first = events[0];
  const last = events[events.length - 1];
  if (first === undefined || last === undefined) throw new Error('empty task');
  return {
    tenant: first.tenant,
    taskId: first.taskId,
    taskType: first.taskType,
    agentId: first.agentId,
    traceId: first.traceId,
    spanId: `root-${first.taskId}`,
    startMs: first.startMs,
    endMs: last.endMs + 5,
    error: false,
    ends: true,
  };
}

const asTenant = (events: readonly AgentEvent[], tenant: string): AgentEvent[] =>
  events.map((event) => ({ ...event, tenant }));

describe('per-tenant baselines', () => {
  it("learns one tenant's normal without scoring another tenant against it", async () => {
    const logger = createLogger('silent');
    const store = await openClickHouseStore({ dataDir, database: 'tenant_baselines', logger });
    await store.migrate();
    const processor = await createProcessor({
      store,
      killSwitch: createLocalKillSwitch(),
      logger,
      taskIdleTimeoutMs: 600_000,
      detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: WARMUP },
    });
    try {
      const r = rng(7);
      const start = Date.now() - 3_600_000;
      for (let i = 0; i < WARMUP + 2; i += 1) {
        const task = benignTask('summarize_ticket', `warm-${i}`, r, { start: start + i * 60_000 });
        await processor.handle({ events: task.events, boundaries: [boundary(task.events)] });
      }
      expect(processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 2);
      expect(processor.baselines().get('acme', 'summarize_ticket')).toBeUndefined();

      // The same task type, agent and even task id in another tenant: scored by the rules, learned apart.
      const other = asTenant(benignTask('summarize_ticket', 'warm-0', r, { start: start + 3_000_000 }).events, 'acme');
      await processor.handle({ events: other, boundaries: [] });
      const acmeTask = await store.getTask('acme', 'warm-0');
      expect(acmeTask?.regime).toBe('rules');
      expect(acmeTask?.status).toBe('active');
      expect((await store.getTask(TENANT, 'warm-0'))?.status).toBe('completed');
      await processor.handle({ events: [], boundaries: [boundary(other)] });
      expect(processor.baselines().get('acme', 'summarize_ticket')?.tasks).toBe(1);
      expect(processor.baselines().get(TENANT, 'summarize_ticket')?.tasks).toBe(WARMUP + 2);
      expect(
        processor
          .baselines()
          .list('acme')
          .every((entry) => entry.tenant === 'acme'),
      ).toBe(true);
    } finally {
      await processor.stop();
      await store.close();
    }
  });
});
