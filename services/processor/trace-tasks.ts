/**
 * Which task a span belongs to, from its trace. The rule, in arrival order (so a replay resolves alike):
 *
 * 1. A trace's first span fixes the trace's task: the task id that span declares (`tripline.task.id` on the
 *    span, its resource, or baggage copied onto it), else the trace id itself.
 * 2. Later spans of the trace that declare nothing belong to the trace's task, whatever their timestamps.
 * 3. A span that declares task id X belongs to X, except when its trace began undeclared (the task is still keyed
 *    by the trace id) and no task X exists: then X becomes the name of the trace's task (`named`), and the API
 *    finds the task by either. That is the natural way users mark a task, a wrapper span around the agent's run:
 *    the framework's spans end, and are exported, before the wrapper that carries the id. Nothing already scored
 *    is scored again, so the verdicts stay what they were when each event arrived.
 * 4. A declared id that names a trace's task resolves to that task from then on (another trace of the same
 *    task, a span stamped by an agent kit).
 *
 * Bounded: the most recent `maxEntries` traces and names are remembered (Map insertion order, oldest dropped).
 * A forgotten trace's later undeclared spans resolve to its trace id again, which is its key anyway unless it
 * began declared; a forgotten name resolves to itself.
 */
export interface Resolution {
  taskId: string;
  /** Set when this span's declared id became the name of its trace's task. */
  named?: string;
}

/** Traces and names remembered per processor (a few hundred bytes each). */
export const DEFAULT_TRACE_MEMORY = 200_000;
/** Agents whose declared task type is remembered. */
const AGENT_TYPE_MEMORY = 50_000;
/** Roots of traces without a task yet, remembered in case the trace's events arrive after them. */
const ENDED_TRACE_MEMORY = 10_000;

/**
 * What a processor remembers about traces and agents to resolve each span's task: which task each trace is, the
 * names declared for tasks that began under their trace id, each agent's declared task type, and roots that
 * arrived before any event of their trace.
 */
export class TraceTasks<End = unknown> {
  readonly #traces = new Map<string, string>();
  readonly #names = new Map<string, string>();
  /** Per agent, the one task type its tasks declared (null once they declared two). */
  readonly #agentTypes = new Map<string, string | null>();
  readonly #endedTraces = new Map<string, End>();
  readonly #maxEntries: number;

  constructor(maxEntries = DEFAULT_TRACE_MEMORY) {
    this.#maxEntries = maxEntries;
  }

  /**
   * The task of a span of `traceId` that declares `declaredTaskId` (or nothing). `exists(taskId)` says whether
   * the processor holds (or the store knows) a task of that id.
   */
  resolve(
    tenant: string,
    traceId: string,
    declaredTaskId: string | undefined,
    exists: (tenant: string, taskId: string) => boolean,
  ): Resolution {
    const traceKey = `${tenant}\u0000${traceId}`;
    const mapped = traceId === '' ? undefined : this.#traces.get(traceKey);
    if (declaredTaskId === undefined) {
      if (mapped !== undefined) return { taskId: mapped };
      if (traceId !== '') remember(this.#traces, traceKey, traceId, this.#maxEntries);
      return { taskId: traceId };
    }
    const declared = this.#names.get(`${tenant}\u0000${declaredTaskId}`) ?? declaredTaskId;
    if (mapped === undefined) {
      if (traceId !== '') remember(this.#traces, traceKey, declared, this.#maxEntries);
      return { taskId: declared };
    }
    if (mapped === declared) return { taskId: declared };
    if (mapped === traceId && declared === declaredTaskId && !exists(tenant, declaredTaskId)) {
      remember(this.#names, `${tenant}\u0000${declaredTaskId}`, traceId, this.#maxEntries);
      return { taskId: traceId, named: declaredTaskId };
    }
    return { taskId: declared };
  }

  /** A task's name known from the store (a processor rebuilding its tasks after a restart). */
  rememberName(tenant: string, name: string, taskId: string): void {
    if (name !== '') remember(this.#names, `${tenant}\u0000${name}`, taskId, this.#maxEntries);
  }

  /** The task a declared id names, if it is the name of another task. */
  taskNamed(tenant: string, name: string): string | undefined {
    return this.#names.get(`${tenant}\u0000${name}`);
  }

  /**
   * A task of `agentId` declared `taskType`. A task id and type declared on a span wrapping the agent's run arrive
   * after the run's spans: until then a task of that agent is scored as the type its earlier tasks declared
   * (`usualType`), not as `unknown`. An agent that declared two types gets no guess any more.
   */
  noteAgentType(tenant: string, agentId: string, taskType: string): void {
    const key = `${tenant}\u0000${agentId}`;
    const known = this.#agentTypes.get(key);
    if (known === taskType || known === null) return;
    remember(this.#agentTypes, key, known === undefined ? taskType : null, AGENT_TYPE_MEMORY);
  }

  usualType(tenant: string, agentId: string): string | undefined {
    return this.#agentTypes.get(`${tenant}\u0000${agentId}`) ?? undefined;
  }

  /** The root of a trace that has no task yet ended (its events may still arrive: another topic, another exporter). */
  rememberEnd(tenant: string, traceId: string, end: End): void {
    remember(this.#endedTraces, `${tenant}\u0000${traceId}`, end, ENDED_TRACE_MEMORY);
  }

  /** The end remembered for a trace whose first event just arrived, once. */
  takeEnd(tenant: string, traceId: string): End | undefined {
    const key = `${tenant}\u0000${traceId}`;
    const end = this.#endedTraces.get(key);
    if (end !== undefined) this.#endedTraces.delete(key);
    return end;
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}
