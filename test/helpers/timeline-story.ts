/**
 * One killed task's story in every store the timeline reads (test/unit/timeline.test.ts over the in-memory twins,
 * test/integration/timeline-stores.test.ts over ClickHouse).
 */
import type { AgentEvent, Alert, Revocation, Verdict } from '../../schemas/events.ts';
import type { AccessStore } from '../../services/auth/access-store.ts';
import type { KillSwitchStore } from '../../services/killswitch/ks-store.ts';
import type { ModelUsageRow, Store, TaskRecord } from '../../services/store/store.ts';

export const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
export const ALLOW: Verdict = { score: 2, decision: 'allow', regime: 'rules', contributions: [], shadow: false };
const REVOKE: Verdict = {
  score: 97,
  decision: 'revoke',
  regime: 'rules',
  contributions: [{ feature: 'privilege.unapproved', score: 97, reason: 'admin scope granted without approval' }],
  hardRule: 'unapproved_admin',
  shadow: false,
};

export function event(id: string, atMs: number, kind: AgentEvent['kind'] = 'tool_call', taskId = 'task-1'): AgentEvent {
  return {
    id,
    tenant: 'default',
    kind,
    taskId,
    taskType: 'customer_refund',
    agentId: 'refund-agent',
    traceId: 't1',
    spanId: id,
    parentSpanId: '',
    name: kind === 'tool_call' ? 'execute_tool get_order' : 'elevate',
    startMs: atMs,
    endMs: atMs + 1,
    error: false,
    ...(kind === 'tool_call' ? { tool: { name: 'get_order', sideEffect: 'read' as const } } : {}),
    ...(kind === 'privilege_change'
      ? { privilege: { action: 'elevate', scopesBefore: ['payments:read'], scopesAfter: ['admin'], approved: false } }
      : {}),
    attributes: {},
  };
}

export function task(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    tenant: 'default',
    taskId: 'task-1',
    name: '',
    taskType: 'customer_refund',
    agentId: 'refund-agent',
    status: 'revoked',
    score: 97,
    decision: 'revoke',
    regime: 'rules',
    reasons: ['admin scope granted without approval'],
    counts: { tool_call: 2, data_access: 0, privilege_change: 1 },
    startedMs: T0,
    lastEventMs: T0 + 30,
    endedMs: T0 + 40,
    version: 1,
    ...overrides,
  };
}

export const alert: Alert = {
  id: 'alert-1',
  tenant: 'default',
  taskId: 'task-1',
  taskType: 'customer_refund',
  agentId: 'refund-agent',
  eventId: 'e2',
  timeMs: T0 + 21,
  score: 97,
  decision: 'revoke',
  regime: 'rules',
  reasons: ['admin scope granted without approval'],
  shadow: false,
};

export const revocation: Revocation = {
  id: 'rev-1',
  tenant: 'default',
  taskId: 'task-1',
  taskType: 'customer_refund',
  agentId: 'refund-agent',
  action: 'revoke',
  source: 'detector',
  actor: 'tripline',
  reason: 'score reached the revoke threshold',
  reasons: ['admin scope granted without approval'],
  score: 97,
  eventId: 'e2',
  timeMs: T0 + 25,
};

/** Stores of a task's timeline: the spine's, the kill switch's and the audit trail's. */
export interface TimelineStores {
  store: Store;
  ks: KillSwitchStore;
  access: Pick<AccessStore, 'insertAudit'>;
}

/**
 * Writes one killed task's story (task-1 of tenant default, with a child) and some noise (another task, another
 * tenant) into the stores. `ksRevocations`: the kill switch's store keeps its own revocations (the in-memory twin);
 * over ClickHouse both ports share one table, written once.
 */
export async function seedTimeline({ store, ks, access }: TimelineStores, ksRevocations: boolean): Promise<void> {
  await store.upsertTasks([
    task(),
    task({ taskId: 'child-1', parentTaskId: 'task-1', startedMs: T0 + 5, endedMs: null, status: 'active' }),
  ]);
  await store.insertEvents([
    { event: event('e1', T0 + 10), verdict: ALLOW },
    { event: event('e2', T0 + 20, 'privilege_change'), verdict: REVOKE },
    { event: event('e3', T0 + 30), verdict: ALLOW },
    { event: event('other', T0 + 12, 'tool_call', 'task-2'), verdict: ALLOW },
    { event: { ...event('foreign', T0 + 13), tenant: 'other' }, verdict: ALLOW },
  ]);
  await store.insertModelUsage([
    modelCall('m1', T0 + 15, 'task-1'),
    modelCall('m-other', T0 + 16, 'task-2'),
    modelCall('foreign-call', T0 + 14, 'task-1', 'other'),
  ]);
  await store.insertAlerts([alert]);
  await store.insertRevocations([revocation]);
  if (ksRevocations) await ks.insertRevocations([revocation]);
  await ks.insertCredentials([
    {
      tenant: 'default',
      jti: 'jti-1',
      taskId: 'task-1',
      taskType: 'customer_refund',
      agentId: 'refund-agent',
      scopes: ['payments:refund'],
      tools: ['get_order'],
      resources: [],
      issuedMs: T0 + 1,
      expiresMs: T0 + 900_000,
      decisionId: 'dec-1',
      kid: 'k',
    },
  ]);
  await ks.insertDecisions([
    {
      id: 'dec-1',
      tenant: 'default',
      timeMs: T0 + 1,
      action: 'start_task',
      agentId: 'refund-agent',
      taskId: 'task-1',
      taskType: 'customer_refund',
      resource: 'customer_refund',
      decision: 'allow',
      policies: ['refund-agents'],
      reasons: [],
      errors: [],
      context: '{}',
    },
  ]);
  await ks.upsertLeases([
    {
      id: 'lease-1',
      tenant: 'default',
      taskId: 'task-1',
      taskType: 'customer_refund',
      agentId: 'refund-agent',
      secret: 'payments-api-key',
      provider: 'builtin',
      providerRef: '',
      status: 'revoked',
      issuedMs: T0 + 2,
      expiresMs: T0 + 600_000,
      endedMs: T0 + 26,
      endReason: 'task revoked',
      version: 2,
    },
  ]);
  await ks.upsertVerifications([
    {
      revocationId: 'rev-1',
      tenant: 'default',
      taskId: 'task-1',
      taskType: 'customer_refund',
      agentId: 'refund-agent',
      outcome: 'verified',
      revokedMs: T0 + 25,
      decidedMs: T0 + 1600,
      acknowledgedMs: T0 + 27,
      checks: { introspection: { ok: true, detail: 'every token inactive', atMs: T0 + 1600 } },
      failures: [],
      version: 3,
    },
  ]);
  await access.insertAudit([
    {
      timeMs: T0 + 2000,
      tenant: 'default',
      actor: 'alice',
      tokenId: 'tok_a',
      role: 'operator',
      method: 'POST',
      route: '/v1/alerts/:id/false-positive',
      target: JSON.stringify({ id: 'alert-1' }),
      reason: 'checked',
      status: 201,
      requestId: 'r1',
    },
    {
      timeMs: T0 + 2001,
      tenant: 'default',
      actor: 'alice',
      tokenId: 'tok_a',
      role: 'operator',
      method: 'POST',
      route: '/v1/tasks/:taskId/revoke',
      target: JSON.stringify({ taskId: 'task-2' }),
      reason: 'other task',
      status: 201,
      requestId: 'r2',
    },
    {
      timeMs: T0 + 28,
      tenant: 'default',
      actor: 'refund fleet',
      tokenId: 'tok_b',
      role: 'agent',
      method: 'POST',
      route: '/v1/revocations/:revocationId/ack',
      target: JSON.stringify({ revocationId: 'rev-1' }),
      reason: '',
      status: 200,
      requestId: 'r3',
    },
    {
      timeMs: T0 + 29,
      tenant: 'default',
      actor: 'refund fleet',
      tokenId: 'tok_b',
      role: 'agent',
      method: 'POST',
      route: '/v1/revocations/:revocationId/ack',
      target: JSON.stringify({ revocationId: 'rev-other' }),
      reason: '',
      status: 404,
      requestId: 'r4',
    },
  ]);
}

/** A model call of the task (a chat span's tokens, priced at $2.50 / $10 per million tokens). */
export function modelCall(id: string, atMs: number, taskId: string, tenant = 'default'): ModelUsageRow {
  return {
    usage: {
      id,
      tenant,
      taskId,
      taskType: 'support',
      agentId: 'agent-1',
      traceId: 'trace-1',
      spanId: id.slice(-16),
      startMs: atMs - 1,
      endMs: atMs,
      operation: 'chat',
      model: 'gpt-4o',
      provider: 'openai',
      inputTokens: 1200,
      outputTokens: 300,
    },
    costUsd: 0.006,
    priced: true,
  };
}
