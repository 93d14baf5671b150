/**
 * Memory under a hostile agent (docs/limits.md): an agent that sends ever new tool names, hosts, resources, event ids,
 * task ids and agent ids, with long strings, must not grow a process's heap past the documented bounds.
 * Reports figures only (no assertion: `test/unit/memory-bounds.test.ts` checks each bound).
 * Run: `node test/bench/memory-bounds.bench.ts [events=1000000] [tasks=300000] [liveCap=10000]`
 *
 * 1. The pure core: one task's state (`observe`) and its loop state (`observeLoops`) fold `events` tool calls and
 *    data accesses, every one with a new 300-character tool name, host, resource and event id. The heap the task
 *    holds is read at checkpoints: flat once its keys reach their caps.
 * 2. The processor: one task receives `events` / 5 events, each with a new event id and a new tool name; the heap
 *    is read at checkpoints: flat once its seen ids (4,096) and keys reach their caps.
 * 3. The processor: one tenant's agent starts `tasks` tasks, each with a new task id, a new 300-character agent id
 *    and a new task type, one event each (a store that keeps nothing, so only the processor's memory counts). The
 *    heap is read at checkpoints with the live tasks held: flat once the tenant holds `liveCap` live tasks and the
 *    ended, trace and baseline memories are full.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AgentEvent } from '../../schemas/events.ts';
import { DEFAULT_DETECTOR_CONFIG, newTaskState, observe } from '../../services/core/detect/index.ts';
import { DISABLED_LOOP_POLICY } from '../../services/core/loop-policy.ts';
import { newLoopState, observeLoops } from '../../services/core/loops.ts';
import { createLocalKillSwitch } from '../../services/killswitch/kill-switch.ts';
import { createProcessor } from '../../services/processor/processor.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { createMemoryStore } from '../../services/store/memory-store.ts';
import type { Store } from '../../services/store/store.ts';
import { T0, dataAccess, taskCtx, toolCall } from '../unit/detect/fixtures.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const EVENTS = Number(process.argv[2] ?? 1_000_000);
const TASKS = Number(process.argv[3] ?? 300_000);
const LIVE_CAP = Number(process.argv[4] ?? 10_000);
const PAD = 'p'.repeat(300);

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

/** `i` in letters (resource keys read digits as `#`). */
function letters(i: number): string {
  return String(i).replace(/\d/g, (digit) => String.fromCharCode(97 + Number(digit)));
}

function heap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function checkpoints(total: number): Set<number> {
  const marks = new Set<number>();
  for (let n = 1000; n < total; n *= 10) {
    marks.add(n);
    if (n * 3 < total) marks.add(n * 3);
  }
  marks.add(total);
  return marks;
}

console.log(`memory under a hostile agent (synthetic data), node ${process.version}`);

// 1. The pure core.
{
  const ctx = taskCtx('hostile', 'task');
  const state = newTaskState({ tenant: 't1', taskId: 'task', taskType: 'hostile', agentId: 'a', startMs: T0 });
  const loops = newLoopState();
  const before = heap();
  const marks = checkpoints(EVENTS);
  console.log(`\n1. one task, ${fmt(EVENTS)} events with new 300-character names, hosts and resources`);
  console.log('   events   heap held by the task (MiB)   tools  transitions  hosts  resources  loop keys');
  for (let i = 1; i <= EVENTS; i++) {
    ctx.events.length = 0;
    const event: AgentEvent =
      i % 2 === 0
        ? toolCall(ctx, `tool-${String(i)}-${PAD}`, {
            target: `https://h${String(i)}${PAD}.example.com/x`,
            argumentsHash: String(i),
            resultHash: String(i),
          })
        : dataAccess(ctx, `db${letters(i)}.${PAD}`);
    observe(state, event);
    observeLoops(loops, event, DISABLED_LOOP_POLICY.defaults);
    if (marks.has(i)) {
      const held = heap() - before;
      console.log(
        `   ${fmt(i).padStart(9)}   ${mib(held).padStart(10)}   ${String(state.tools.size).padStart(19)}  ${String(state.transitions.size).padStart(11)}  ${String(state.hosts.size).padStart(5)}  ${String(state.resources.size).padStart(9)}  ${String(loops.repeats.size + loops.results.size + loops.toolTimes.size).padStart(9)}`,
      );
    }
  }
}

// 2. One task in the processor: distinct event ids.
{
  const memory = createMemoryStore();
  await memory.migrate();
  const store = new Proxy(memory, {
    get(target, name, receiver) {
      if (typeof name === 'string' && /^(insert|upsert|save)/.test(name)) return () => Promise.resolve();
      return Reflect.get(target, name, receiver) as unknown;
    },
  }) as Store;
  const processor = await createProcessor({
    store,
    killSwitch: createLocalKillSwitch(),
    detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: 10 },
    logger: createLogger('error'),
    taskIdleTimeoutMs: 24 * 3_600_000,
  });
  const total = Math.max(1000, Math.floor(EVENTS / 5));
  const before = heap();
  const marks = checkpoints(total);
  console.log(`\n2. one task in the processor, ${fmt(total)} events, each a new event id and tool name`);
  console.log('   events   heap (MiB)');
  const ctx = taskCtx('hostile', 'one-task');
  const BATCH = 1000;
  for (let sent = 0; sent < total;) {
    ctx.events.length = 0;
    for (let j = 0; j < BATCH && sent < total; j++, sent++) toolCall(ctx, `tool-${String(sent)}-${PAD}`);
    await processor.handle({ events: [...ctx.events], boundaries: [] });
    if ([...marks].some((mark) => mark > sent - BATCH && mark <= sent))
      console.log(`   ${fmt(sent).padStart(9)}   ${mib(heap() - before).padStart(10)}`);
  }
  await processor.stop();
}

// 3. The processor's task table.
{
  const memory = createMemoryStore();
  await memory.migrate();
  // Keeps nothing: only the processor's own memory is measured.
  const store = new Proxy(memory, {
    get(target, name, receiver) {
      if (typeof name === 'string' && /^(insert|upsert|save)/.test(name)) return () => Promise.resolve();
      return Reflect.get(target, name, receiver) as unknown;
    },
  }) as Store;
  const processor = await createProcessor({
    store,
    killSwitch: createLocalKillSwitch(),
    detector: { ...DEFAULT_DETECTOR_CONFIG, warmupTasks: 10 },
    logger: createLogger('error'),
    taskIdleTimeoutMs: 24 * 3_600_000,
    maxLiveTasksPerTenant: LIVE_CAP,
  });
  const before = heap();
  const marks = checkpoints(TASKS);
  console.log(
    `\n3. one tenant, ${fmt(TASKS)} tasks, each a new task id, agent id and task type (live tasks held per tenant: ${fmt(LIVE_CAP)})`,
  );
  console.log('    tasks   heap (MiB)   tasks held   bytes per task sent   baselines');
  const BATCH = 500;
  for (let sent = 0; sent < TASKS;) {
    const events: AgentEvent[] = [];
    for (let j = 0; j < BATCH && sent < TASKS; j++, sent++) {
      const ctx = taskCtx(`type-${String(sent)}`, `task-${String(sent)}`, `agent-${String(sent)}-${PAD}`, T0 + sent);
      // One tool name: a new name per task makes each learn walk the fleet baseline's keys (CPU, not memory).
      toolCall(ctx, 'get_ticket');
      events.push(...ctx.events);
    }
    await processor.handle({ events, boundaries: [] });
    if ([...marks].some((mark) => mark > sent - BATCH && mark <= sent)) {
      const held = heap() - before;
      console.log(
        `   ${fmt(sent).padStart(7)}   ${mib(held).padStart(10)}   ${fmt(processor.liveTasks()).padStart(10)}   ${fmt(held / sent).padStart(19)}   ${fmt(processor.baselines().list().length).padStart(9)}`,
      );
    }
  }
  await processor.stop();
}
