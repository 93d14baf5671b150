/**
 * A single global z-score detector: one mean and standard deviation per feature over every event of the
 * tenant's fleet (all task types together, no per-task-type or per-agent baselines), learned from completed
 * tasks that were never flagged — the same learning rule and warm-up as Tripline's processor. An event scores
 * by its largest one-sided z; z = 3 is the alert threshold (score 50), z = 4.8 revokes (score 80).
 * It is a comparator for the evaluation, not part of Tripline's decision path.
 *
 * Features per event (heavy-tailed sizes in log(1 + x)): rows, bytes and classification level of this access
 * (data accesses only), scopes gained so far (privilege changes only), and on every event: rows so far in the
 * task, events so far, failing calls in the last minute, distinct resources, hosts and tools so far, the event's
 * duration. Each feature's mean and deviation are over the events it applies to.
 */
import type { AgentEvent } from '../../../schemas/events.ts';
import { classificationRank, eventHost, resourceKey, toolName } from '../detect/signals.ts';
import type { Comparator, ComparatorThresholds, ComparatorVerdict, TaskInit } from './types.ts';
import { DEFAULT_COMPARATOR_THRESHOLDS, decideComparator } from './types.ts';

export const ZSCORE_FEATURES = [
  'rows_per_access',
  'bytes_per_access',
  'rows_per_task',
  'events_per_task',
  'errors_per_minute',
  'distinct_resources',
  'distinct_hosts',
  'distinct_tools',
  'scopes_gained',
  'classification',
  'duration',
] as const;

export interface ZScoreConfig extends ComparatorThresholds {
  /** Completed benign tasks before the detector scores anything (Tripline's `warmupTasks`). @default 20 */
  warmupTasks: number;
  /** The z at which the score reaches the alert threshold. @default 3 */
  alertZ: number;
  /** Smallest standard deviation used (feature units), so a feature that never varied does not divide by 0. @default 0.1 */
  minStdDev: number;
}

export const DEFAULT_ZSCORE_CONFIG: Readonly<ZScoreConfig> = Object.freeze({
  ...DEFAULT_COMPARATOR_THRESHOLDS,
  warmupTasks: 20,
  alertZ: 3,
  minStdDev: 0.1,
});

/** Welford accumulators per feature (each over the events the feature applies to). */
export interface ZScoreModel {
  tasks: number;
  n: number[];
  mean: number[];
  m2: number[];
}

export interface ZScoreState {
  endedMs: number | null;
  events: number;
  rows: number;
  resources: Set<string>;
  hosts: Set<string>;
  tools: Set<string>;
  scopesBefore: Set<string> | null;
  scopes: Set<string>;
  recentErrors: number[];
  /** Feature vectors of the task's events (undefined: the feature does not apply), learned when the task completes benign. */
  vectors: (number | undefined)[][];
}

const MINUTE_MS = 60_000;

function features(event: AgentEvent, state: ZScoreState): (number | undefined)[] {
  const data = event.kind === 'data_access' ? event.data : undefined;
  return [
    data?.rows === undefined ? undefined : Math.log1p(data.rows),
    data?.bytes === undefined ? undefined : Math.log1p(data.bytes),
    Math.log1p(state.rows),
    state.events,
    state.recentErrors.length,
    state.resources.size,
    state.hosts.size,
    state.tools.size,
    event.kind === 'privilege_change' ? state.scopes.size : undefined,
    data === undefined ? undefined : classificationRank(data.classification) + 1,
    Math.log1p(Math.max(0, event.endMs - event.startMs)),
  ];
}

export function createZScoreDetector(
  config: ZScoreConfig = DEFAULT_ZSCORE_CONFIG,
): Comparator<ZScoreState, ZScoreModel> {
  const perZ = config.alertThreshold / config.alertZ;
  return {
    name: 'global z-score',
    description: `one mean and standard deviation per feature over all events of all task types; score ${perZ.toFixed(1)} per z, so z ≥ ${config.alertZ} alerts`,
    newModel: () => ({
      tasks: 0,
      n: ZSCORE_FEATURES.map(() => 0),
      mean: ZSCORE_FEATURES.map(() => 0),
      m2: ZSCORE_FEATURES.map(() => 0),
    }),
    newTaskState: (_init: TaskInit): ZScoreState => ({
      endedMs: null,
      events: 0,
      rows: 0,
      resources: new Set(),
      hosts: new Set(),
      tools: new Set(),
      scopesBefore: null,
      scopes: new Set(),
      recentErrors: [],
      vectors: [],
    }),
    observe(state, event) {
      state.events++;
      if (event.kind === 'data_access') {
        state.rows += event.data?.rows ?? 0;
        state.resources.add(resourceKey(event.data?.resource ?? event.name));
      }
      if (event.kind === 'tool_call') state.tools.add(toolName(event));
      const host = eventHost(event);
      if (host !== undefined) state.hosts.add(host);
      if (event.kind === 'privilege_change' && event.privilege !== undefined) {
        state.scopesBefore ??= new Set(event.privilege.scopesBefore);
        const before = state.scopesBefore;
        for (const scope of event.privilege.scopesAfter) if (!before.has(scope)) state.scopes.add(scope);
      }
      if (event.error) state.recentErrors.push(event.startMs);
      while (state.recentErrors.length > 0 && (state.recentErrors[0] ?? 0) <= event.startMs - MINUTE_MS)
        state.recentErrors.shift();
      state.vectors.push(features(event, state));
      return state;
    },
    score(_event, state, model): ComparatorVerdict {
      if (model.tasks < config.warmupTasks) return { score: 0, decision: 'allow', reasons: [] };
      const x = state.vectors[state.vectors.length - 1] ?? [];
      let top = 0;
      let which = '';
      for (let i = 0; i < ZSCORE_FEATURES.length; i++) {
        const value = x[i];
        const n = model.n[i] ?? 0;
        if (value === undefined || n < 2) continue;
        const sd = Math.max(config.minStdDev, Math.sqrt((model.m2[i] ?? 0) / (n - 1)));
        const z = (value - (model.mean[i] ?? 0)) / sd;
        if (z > top) {
          top = z;
          which = ZSCORE_FEATURES[i] ?? '';
        }
      }
      const score = Math.min(100, Math.round(top * perZ * 10) / 10);
      return {
        score,
        decision: decideComparator(score, config),
        reasons: score > 0 ? [`${which} at z = ${top.toFixed(1)}`] : [],
      };
    },
    markEnded(state, endMs) {
      if (state.endedMs === null || endMs < state.endedMs) state.endedMs = endMs;
      return state;
    },
    learn(model, state) {
      model.tasks++;
      for (const x of state.vectors) {
        for (let i = 0; i < ZSCORE_FEATURES.length; i++) {
          const value = x[i];
          if (value === undefined) continue;
          const n = (model.n[i] ?? 0) + 1;
          model.n[i] = n;
          const mean = model.mean[i] ?? 0;
          const delta = value - mean;
          const next = mean + delta / n;
          model.mean[i] = next;
          model.m2[i] = (model.m2[i] ?? 0) + delta * (value - next);
        }
      }
      return model;
    },
  };
}
