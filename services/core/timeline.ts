/**
 * A task's timeline: everything that happened to one task, in order, as typed entries a person reads. Each source
 * (the task record, its events, alerts, policy decisions, credentials, leases, revocations, verifications, the
 * audit trail, …) is read on its own and turned into entries elsewhere; `mergeTimeline` merges the per-source lists
 * into one ordered, paged, capped list. A new source (approvals, model spend) is one more list: nothing here changes.
 *
 * Pure: takes values, returns values.
 */

/** What an entry says happened. Kinds are open (a new source brings its own); these are the ones Tripline ships. */
export const TIMELINE_KINDS = [
  'task_started',
  'parent',
  'credential_issued',
  'lease_issued',
  'policy_decision',
  'approval',
  'tool_call',
  'same_tool_call',
  'data_access',
  'privilege_change',
  'model_call',
  'alert',
  'revocation',
  'escalation',
  'credential_revoked',
  'lease_ended',
  'acknowledged',
  'verification',
  'restore',
  'audit',
  'child_started',
  'task_ended',
] as const;
export type TimelineKind = (typeof TIMELINE_KINDS)[number];

export interface TimelineEntry {
  /** When it happened (epoch ms). */
  timeMs: number;
  /** A TimelineKind, or a kind a later source brings. */
  kind: string;
  /** The source it was read from (`events`, `alerts`, `revocations`, …). */
  source: string;
  /** Unique within its source (for a stable order and the cursor). */
  id: string;
  /** One sentence a person reads. */
  summary: string;
  /** The record behind it (JSON values only). */
  detail: Record<string, unknown>;
}

/** One source's entries, and whether the source had more than it was allowed to give. */
export interface TimelineSource {
  source: string;
  entries: TimelineEntry[];
  truncated: boolean;
}

/** Where a page ends: the sort key of its last entry. */
export interface TimelinePosition {
  timeMs: number;
  rank: number;
  id: string;
}

export interface TimelinePage {
  items: TimelineEntry[];
  /** Where the next page starts; absent on the last page. */
  next?: TimelinePosition;
  /** True when a source had more entries than its cap: the timeline is incomplete. */
  truncated: boolean;
  /** The sources that were cut at their cap. */
  truncatedSources: string[];
  /** Entries per source (after each source's cap). */
  counts: Record<string, number>;
}

/**
 * Within one millisecond, cause before effect: a task starts, its credentials are issued, it acts, the detector
 * alerts and revokes, the credentials die, the helper acknowledges, the kill is verified. Unknown kinds sort
 * after the known ones of the same millisecond.
 */
export function kindRank(kind: string): number {
  const index = (TIMELINE_KINDS as readonly string[]).indexOf(kind);
  return index === -1 ? TIMELINE_KINDS.length : index;
}

export function positionOf(entry: TimelineEntry): TimelinePosition {
  return { timeMs: entry.timeMs, rank: kindRank(entry.kind), id: `${entry.source}/${entry.id}` };
}

function compare(a: TimelinePosition, b: TimelinePosition): number {
  if (a.timeMs !== b.timeMs) return a.timeMs - b.timeMs;
  if (a.rank !== b.rank) return a.rank - b.rank;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The order of a timeline: by time, then kind (cause before effect), then source and id. */
export function compareEntries(a: TimelineEntry, b: TimelineEntry): number {
  return compare(positionOf(a), positionOf(b));
}

/**
 * Merges the sources into one list in time order and returns the page after `after` (from the start without it),
 * at most `limit` entries. Entries with a time that is not a finite number are dropped (a bad row never breaks
 * the timeline).
 */
export function mergeTimeline(
  sources: readonly TimelineSource[],
  options: { limit: number; after?: TimelinePosition },
): TimelinePage {
  const counts: Record<string, number> = {};
  const truncatedSources: string[] = [];
  const all: { entry: TimelineEntry; position: TimelinePosition }[] = [];
  for (const source of sources) {
    counts[source.source] = (counts[source.source] ?? 0) + source.entries.length;
    if (source.truncated && !truncatedSources.includes(source.source)) truncatedSources.push(source.source);
    for (const entry of source.entries) {
      if (!Number.isFinite(entry.timeMs)) continue;
      all.push({ entry, position: positionOf(entry) });
    }
  }
  all.sort((a, b) => compare(a.position, b.position));
  const after = options.after;
  const start = after === undefined ? 0 : all.findIndex((item) => compare(item.position, after) > 0);
  const rest = start === -1 ? [] : all.slice(start);
  const page = rest.slice(0, Math.max(0, options.limit));
  const last = page.at(-1);
  return {
    items: page.map((item) => item.entry),
    ...(rest.length > page.length && last !== undefined ? { next: last.position } : {}),
    truncated: truncatedSources.length > 0,
    truncatedSources,
    counts,
  };
}

/** Keeps the first `cap` entries of a source (in time order) and says whether any were cut. */
export function capSource(source: string, entries: readonly TimelineEntry[], cap: number): TimelineSource {
  const sorted = [...entries].sort(compareEntries);
  return { source, entries: sorted.slice(0, cap), truncated: sorted.length > cap };
}
