/**
 * A task's timeline: the pure merge (services/core/timeline.ts), the sources read through the in-memory twins of
 * the store ports (services/api/timeline.ts), and the route on the API app (paging, export, cap, who may read).
 * The same reads over ClickHouse are in test/e2e/timeline.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { buildApiApp } from '../../services/api/app.ts';
import { installAccessControl } from '../../services/api/access.ts';
import { createHttpServer } from '../../services/api/http.ts';
import { readTaskTimeline, registerTimelineRoutes } from '../../services/api/timeline.ts';
import { eventEntries } from '../../services/api/timeline-entries.ts';
import type { AgentEvent, Verdict } from '../../schemas/events.ts';
import { mergeTimeline } from '../../services/core/timeline.ts';
import type { TimelineEntry } from '../../services/core/timeline.ts';
import { createInMemoryKillSwitchStore } from '../../services/killswitch/ks-store.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { createMemoryStore } from '../../services/store/memory-store.ts';
import { adminHeaders, agentHeaders, testAccess } from '../helpers/auth.ts';
import { seedTimeline } from '../helpers/timeline-story.ts';

async function seeded() {
  const store = createMemoryStore();
  const ks = createInMemoryKillSwitchStore();
  const access = await testAccess();
  await seedTimeline({ store, ks, access: access.store }, true);
  return { store, ks, access };
}

const kinds = (entries: readonly { kind: string }[]): string[] => entries.map((e) => e.kind);

describe('mergeTimeline', () => {
  const at = (timeMs: number, kind: string, id: string, source = 's'): TimelineEntry => ({
    timeMs,
    kind,
    source,
    id,
    summary: id,
    detail: {},
  });

  it('orders by time, then cause before effect within a millisecond, and pages with a cursor', () => {
    const sources = [
      {
        source: 'b',
        entries: [at(5, 'verification', 'v'), at(5, 'revocation', 'r'), at(1, 'tool_call', 'e')],
        truncated: false,
      },
      {
        source: 'a',
        entries: [at(5, 'alert', 'a'), at(Number.NaN, 'alert', 'bad'), at(9, 'approval', 'new')],
        truncated: false,
      },
    ];
    const all = mergeTimeline(sources, { limit: 100 });
    expect(all.items.map((e) => e.id)).toEqual(['e', 'a', 'r', 'v', 'new']);
    expect(all.next).toBeUndefined();
    const first = mergeTimeline(sources, { limit: 2 });
    expect(first.items.map((e) => e.id)).toEqual(['e', 'a']);
    const second = mergeTimeline(sources, { limit: 2, ...(first.next === undefined ? {} : { after: first.next }) });
    expect(second.items.map((e) => e.id)).toEqual(['r', 'v']);
  });

  it('says which sources were cut at their cap', () => {
    const page = mergeTimeline(
      [
        { source: 'events', entries: [at(1, 'tool_call', 'x')], truncated: true },
        { source: 'alerts', entries: [], truncated: false },
      ],
      { limit: 10 },
    );
    expect(page).toMatchObject({ truncated: true, truncatedSources: ['events'], counts: { events: 1, alerts: 0 } });
  });
});

describe('readTaskTimeline over the in-memory stores', () => {
  it('tells the whole story of the task in order, and nothing of other tasks or tenants', async () => {
    const { store, ks, access } = await seeded();
    const timeline = await readTaskTimeline({ store, killSwitch: ks, audit: access.store }, 'default', 'task-1');
    const page = mergeTimeline(timeline.sources, { limit: 1000 });
    expect(kinds(page.items)).toEqual([
      'task_started',
      'credential_issued',
      'policy_decision',
      'lease_issued',
      'child_started',
      'tool_call',
      'model_call',
      'privilege_change',
      'alert',
      'revocation',
      'credential_revoked',
      'lease_ended',
      'acknowledged',
      'audit',
      'tool_call',
      'task_ended',
      'verification',
      'audit',
    ]);
    const byKind = new Map(page.items.map((e) => [e.kind, e]));
    expect(byKind.get('privilege_change')?.summary).toContain('the detector said revoke (score 97)');
    expect(byKind.get('revocation')?.summary).toContain('revoked by the detector');
    expect(byKind.get('verification')?.summary).toContain('verified');
    expect(byKind.get('model_call')?.summary).toBe(
      'The agent called gpt-4o (chat): 1,200 tokens in, 300 tokens out, $0.0060.',
    );
    expect(byKind.get('lease_ended')?.summary).toContain('revoked at its provider');
    expect(page.items.some((e) => ['other', 'foreign', 'm-other', 'foreign-call'].includes(e.id))).toBe(false);
    expect(page.truncated).toBe(false);
  });

  it('shows a second record of a tool call (another instrumentation) as such, not as a second call', () => {
    const call: AgentEvent = {
      id: 'tr1oi',
      tenant: 'default',
      kind: 'tool_call',
      taskId: 'task-1',
      taskType: 'refund',
      agentId: 'a',
      traceId: 'tr1',
      spanId: 'oi',
      parentSpanId: 'run',
      name: 'support_agent.issue_refund',
      startMs: 1000,
      endMs: 1040,
      error: false,
      tool: { name: 'issue_refund', target: 'payments.example' },
      attributes: {},
    };
    const second: AgentEvent = {
      ...call,
      id: 'tr1core',
      spanId: 'core',
      parentSpanId: 'oi',
      name: 'execute_tool issue_refund',
      startMs: 1001,
      tool: { name: 'issue_refund', callId: 'call_0', sameCallOf: 'tr1oi' },
    };
    const verdict: Verdict = { score: 0, decision: 'allow', regime: 'rules', contributions: [], shadow: false };
    const entries = eventEntries([
      { event: call, verdict },
      { event: second, verdict },
    ]);
    expect(kinds(entries)).toEqual(['tool_call', 'same_tool_call']);
    expect(entries[1]?.summary).toBe(
      "Another instrumentation's record (span execute_tool issue_refund) of the call to tool issue_refund counted as event tr1oi: not a second call.",
    );
    expect(entries[1]?.detail.tool).toMatchObject({ sameCallOf: 'tr1oi' });
  });

  it('caps each source and marks the timeline truncated', async () => {
    const { store } = await seeded();
    const timeline = await readTaskTimeline({ store, cap: 2 }, 'default', 'task-1');
    const page = mergeTimeline(timeline.sources, { limit: 1000 });
    expect(page.truncatedSources).toEqual(['task', 'events']);
    expect(page.counts.events).toBe(2);
  });
});

describe('GET /v1/tasks/:taskId/timeline', () => {
  async function app() {
    const { store, access } = await seeded();
    const api = buildApiApp({
      access: access.api,
      admin: access.admin,
      store,
      commands: { revoke: () => Promise.reject(new Error('no')), restore: () => Promise.reject(new Error('no')) },
      logger: createLogger('silent'),
      detectorStatus: () => Promise.resolve({ regime: 'rules', baselineTasks: 0, warmupTasks: 20 }),
      baselines: () => Promise.resolve([]),
      ready: () => Promise.resolve({ ready: true, checks: {} }),
    });
    await api.ready();
    return { api, access };
  }

  it('pages the timeline, and the JSON-lines export holds the same entries', async () => {
    const { api } = await app();
    const pages: { kind: string; id: string }[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/tasks/task-1/timeline?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`;
      const response = await api.inject({ url, headers: adminHeaders });
      expect(response.statusCode).toBe(200);
      const body = response.json<{ items: { kind: string; id: string }[]; nextCursor: string | null }>();
      expect(body.items.length).toBeLessThanOrEqual(3);
      pages.push(...body.items);
      cursor = body.nextCursor;
    } while (cursor !== null);
    const exported = await api.inject({ url: '/v1/tasks/task-1/timeline?format=jsonl', headers: adminHeaders });
    expect(exported.headers['content-type']).toContain('application/x-ndjson');
    expect(exported.headers['content-disposition']).toBe('attachment; filename="timeline-task-1.jsonl"');
    const lines = exported.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; id: string });
    expect(lines).toEqual(pages);
    expect(kinds(lines)).toContain('audit');
    await api.close();
  });

  it("refuses agent tokens, reads only the caller's tenant, and rejects a forged cursor", async () => {
    const { api, access } = await app();
    const agent = await api.inject({ url: '/v1/tasks/task-1/timeline', headers: agentHeaders });
    expect(agent.statusCode).toBe(403);
    // Another tenant's task-1 is another task: its viewer sees its own event only, and a tenant with none a 404.
    const other = await access.control.createToken({ tenant: 'other', role: 'viewer', name: 'o', createdBy: 't' });
    const foreign = await api.inject({
      url: '/v1/tasks/task-1/timeline',
      headers: { authorization: `Bearer ${other.token}` },
    });
    expect(foreign.json<{ items: { id: string }[] }>().items.map((item) => item.id)).toEqual([
      'foreign',
      'foreign-call',
    ]);
    const third = await access.control.createToken({ tenant: 'third', role: 'viewer', name: 't', createdBy: 't' });
    const none = await api.inject({
      url: '/v1/tasks/task-1/timeline',
      headers: { authorization: `Bearer ${third.token}` },
    });
    expect(none.statusCode).toBe(404);
    const forged = await api.inject({ url: '/v1/tasks/task-1/timeline?cursor=bm9wZQ', headers: adminHeaders });
    expect(forged.statusCode).toBe(400);
    expect(forged.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    await api.close();
  });

  it('ends a cut export with a line of kind truncated naming the sources', async () => {
    const { store, ks, access } = await seeded();
    const api = createHttpServer(createLogger('silent'));
    installAccessControl(api, access.api);
    registerTimelineRoutes(api, { store, killSwitch: ks, cap: 2 });
    await api.ready();
    const exported = await api.inject({ url: '/v1/tasks/task-1/timeline?format=jsonl', headers: adminHeaders });
    const lines = exported.body
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; detail: Record<string, unknown> });
    expect(lines.at(-1)).toMatchObject({
      kind: 'truncated',
      detail: { truncatedSources: ['task', 'events'], capPerSource: 2 },
    });
    const page = await api.inject({ url: '/v1/tasks/task-1/timeline', headers: adminHeaders });
    expect(page.json()).toMatchObject({ truncated: true, truncatedSources: ['task', 'events'], capPerSource: 2 });
    await api.close();
  });
});
