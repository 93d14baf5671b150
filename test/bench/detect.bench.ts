/**
 * Throughput and memory of the detector's pure path (observe + score), on synthetic data.
 * Run: `node test/bench/detect.bench.ts` (Node 24 runs the TypeScript directly).
 *
 * - events/s per core: one thread folds and scores a realistic mix (three task types in their type and
 *   agent regimes, 1,000 tasks live at once with their events interleaved, 2% of tasks attacks).
 * - memory per active task: heap delta over 10,000 live task states, each holding a typical task.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AgentEvent } from '../../schemas/events.ts';
import {
  type Baseline,
  type BaselineLookup,
  DEFAULT_DETECTOR_CONFIG,
  FLEET_TASK_TYPE,
  type TaskState,
  emptyBaseline,
  learn,
  newTaskState,
  observe,
  rebuildBaseline,
  score,
  serializeBaseline,
  summarize,
} from '../../services/core/detect/index.ts';
import { ATTACKS, TYPES, benignTask, int, rng, stateOf, summarizeTicket, taskCtx } from '../unit/detect/fixtures.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const r = rng(42);
const types = Object.keys(TYPES);
const agents = ['agent-1', 'agent-2', 'agent-3'];

// Baselines: 200 tasks per type, so types and agents are past warm-up.
const fleet = emptyBaseline(FLEET_TASK_TYPE);
const typeB = new Map<string, Baseline>();
const agentB = new Map<string, Baseline>();
const learnStart = performance.now();
let learnCalls = 0;
for (const type of types) {
  const tb = emptyBaseline(type);
  for (let i = 0; i < 200; i++) {
    const agentId = agents[i % agents.length] ?? 'agent-1';
    const s = summarize(stateOf(benignTask(type, `train-${type}-${String(i)}`, r, { agentId }).events));
    learn(tb, s);
    learn(fleet, s);
    const key = `${type}/${agentId}`;
    agentB.set(key, learn(agentB.get(key) ?? emptyBaseline(type, agentId), s));
    learnCalls += 3;
  }
  typeB.set(type, tb);
}
const learnMs = performance.now() - learnStart;

// Workload: 6,000 tasks, 2% attacks, interleaved 1,000 at a time.
const attackNames = Object.keys(ATTACKS);
const tasks: AgentEvent[][] = [];
for (let i = 0; i < 6000; i++) {
  const type = types[i % types.length] ?? 'summarize_ticket';
  const agentId = agents[int(r, 0, agents.length - 1)] ?? 'agent-1';
  if (i % 50 === 0) {
    const ctx = taskCtx('summarize_ticket', `atk-${String(i)}`, agentId);
    summarizeTicket(ctx, r);
    const atk = ATTACKS[attackNames[(i / 50) % attackNames.length] ?? 'unseen_tool'];
    atk?.(ctx, r);
    tasks.push(ctx.events);
  } else {
    tasks.push(benignTask(type, `task-${String(i)}`, r, { agentId, busy: i % 10 === 0 ? 3 : 1 }).events);
  }
}
const stream: AgentEvent[] = [];
for (let start = 0; start < tasks.length; start += 1000) {
  const batch = tasks.slice(start, start + 1000);
  const cursors = batch.map(() => 0);
  let left = true;
  while (left) {
    left = false;
    batch.forEach((evs, j) => {
      const c = cursors[j] ?? 0;
      const e = evs[c];
      if (e !== undefined) {
        stream.push(e);
        cursors[j] = c + 1;
        left = true;
      }
    });
  }
}

const lookups = new Map<string, BaselineLookup>();
function lookupFor(e: AgentEvent): BaselineLookup {
  const key = `${e.taskType}/${e.agentId}`;
  let l = lookups.get(key);
  if (l === undefined) {
    l = { fleet };
    const t = typeB.get(e.taskType);
    const a = agentB.get(key);
    if (t !== undefined) l.type = t;
    if (a !== undefined) l.agent = a;
    lookups.set(key, l);
  }
  return l;
}

function pass(): { ms: number; revoked: Set<string>; alerted: Set<string> } {
  const states = new Map<string, TaskState>();
  const revoked = new Set<string>();
  const alerted = new Set<string>();
  const t0 = performance.now();
  for (const e of stream) {
    let s = states.get(e.taskId);
    if (s === undefined) {
      s = newTaskState({
        tenant: e.tenant,
        taskId: e.taskId,
        taskType: e.taskType,
        agentId: e.agentId,
        startMs: e.startMs,
      });
      states.set(e.taskId, s);
    }
    observe(s, e);
    const v = score(e, s, lookupFor(e), DEFAULT_DETECTOR_CONFIG);
    if (v.decision === 'revoke') revoked.add(e.taskId);
    else if (v.decision === 'alert') alerted.add(e.taskId);
  }
  return { ms: performance.now() - t0, revoked, alerted };
}

pass(); // warm up the JIT
const runs: number[] = [];
let last = pass();
const PASSES = 9;
for (let i = 0; i < PASSES; i++) {
  last = pass();
  runs.push(stream.length / (last.ms / 1000));
}
runs.sort((a, b) => a - b);

// Memory per active task.
const typical = benignTask('summarize_ticket', 'mem', rng(7)).events;
const big = benignTask('build_report', 'mem2', rng(8), { busy: 3 }).events;
gc();
const before = process.memoryUsage().heapUsed;
const live: TaskState[] = [];
for (let i = 0; i < 10_000; i++) {
  const evs = i % 3 === 0 ? big : typical;
  const first = evs[0];
  if (first === undefined) break;
  const s = newTaskState({
    tenant: 't1',
    taskId: `m-${String(i)}`,
    taskType: first.taskType,
    agentId: first.agentId,
    startMs: first.startMs,
  });
  for (const e of evs) observe(s, e);
  live.push(s);
}
gc();
const perTask = (process.memoryUsage().heapUsed - before) / live.length;

// Learning cost and baseline size.
const summaries = Array.from({ length: 500 }, (_, i) =>
  summarize(stateOf(benignTask('summarize_ticket', `l-${String(i)}`, r).events)),
);
const rb0 = performance.now();
const rebuilt = rebuildBaseline('summarize_ticket', summaries);
const rebuildMs = performance.now() - rb0;

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(`detector benchmark (synthetic data), node ${process.version}`);
const benignHit = (set: Set<string>): number => [...set].filter((id) => id.startsWith('task-')).length;
const attacks = tasks.length / 50;
console.log(`events in the mix: ${fmt(stream.length)} from ${fmt(tasks.length)} tasks (${fmt(attacks)} attacks)`);
console.log(
  `tasks revoked: ${fmt(last.revoked.size - benignHit(last.revoked))} of ${fmt(attacks)} attacks, ${fmt(benignHit(last.revoked))} benign; benign tasks alerted (not revoked): ${fmt(benignHit(new Set([...last.alerted].filter((id) => !last.revoked.has(id)))))}`,
);
console.log(
  `observe+score: median ${fmt(runs[Math.floor(PASSES / 2)] ?? 0)} events/s per core over ${String(PASSES)} passes (min ${fmt(runs[0] ?? 0)}, max ${fmt(runs[PASSES - 1] ?? 0)})`,
);
console.log(
  `memory per active task: ~${fmt(perTask)} bytes (heap delta over ${fmt(live.length)} live task states, ${String(typical.length)}–${String(big.length)} events each)`,
);
console.log(
  `learn: ${(learnMs / learnCalls).toFixed(3)} ms per learn() call while training; rebuild of 500 tasks ${rebuildMs.toFixed(1)} ms`,
);
console.log(`serialized baseline of 500 tasks: ${fmt(serializeBaseline(rebuilt).length)} bytes`);
