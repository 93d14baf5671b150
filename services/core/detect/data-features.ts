/**
 * Features of a data access: volume per access and per task (also per resource and of sensitive rows), resources
 * and namespaces new to the type (lateral movement), classification levels it never reaches, and restricted data
 * read after egress to a new host (one order of a hard rule; the other is in host-features.ts).
 */
import type { Baseline } from './baseline.ts';
import { add, hard, fenceUpper, numeric, rulesWho, keyedNumeric, seen, novelty, type Ctx } from './evidence.ts';
import { fmtBytes, fmtNum } from './format.ts';
import { K_RULES, RULES_WIDEN, PARTIAL_TYPE_WIDEN, MIN_KEYED_TASKS, RULES_SPECIFIC_CAP } from './limits.ts';
import { CLASSIFICATION_NAMES, classificationRank, namespaceOf, resourceKey } from './signals.ts';
import { excessScore } from './stats.ts';
import { nonNegative } from './state.ts';

export function data(ctx: Ctx): void {
  const { event, state } = ctx;
  const d = event.data;
  const resource = d?.resource ?? event.name;
  const key = state.lastDataEventId === event.id ? state.lastResourceKey : resourceKey(resource);
  const rows = nonNegative(d?.rows);
  const bytes = nonNegative(d?.bytes);
  const use = state.resources.get(key);

  numeric(
    ctx,
    'volume',
    'data.rows_per_access',
    'maxRowsPerAccess',
    rows,
    20,
    100,
    fmtNum,
    () => `read ${fmtNum(rows)} rows from ${resource} in one access`,
  );
  numeric(
    ctx,
    'volume',
    'data.bytes_per_access',
    'maxBytesPerAccess',
    bytes,
    256 * 1024,
    100,
    fmtBytes,
    () => `moved ${fmtBytes(bytes)} in one access to ${resource}`,
  );
  numeric(
    ctx,
    'volume',
    'data.rows_per_task',
    'rows',
    state.rows,
    20,
    100,
    fmtNum,
    () => `read ${fmtNum(state.rows)} rows in this task over ${fmtNum(state.counts.data_access)} accesses`,
  );
  numeric(
    ctx,
    'volume',
    'data.bytes_per_task',
    'bytes',
    state.bytes,
    256 * 1024,
    100,
    fmtBytes,
    () => `moved ${fmtBytes(state.bytes)} in this task over ${fmtNum(state.counts.data_access)} accesses`,
  );
  if (state.sensitiveRows > 0 && classificationRank(d?.classification) >= 2) {
    numeric(
      ctx,
      'volume',
      'data.sensitive_rows_per_task',
      'sensitiveRows',
      state.sensitiveRows,
      20,
      100,
      fmtNum,
      () => `read ${fmtNum(state.sensitiveRows)} rows of confidential or restricted data in this task`,
      RULES_SPECIFIC_CAP,
    );
  }
  numeric(
    ctx,
    'size',
    'data.accesses_per_task',
    'dataAccesses',
    state.counts.data_access,
    10,
    70,
    fmtNum,
    () => `made ${fmtNum(state.counts.data_access)} data accesses in this task`,
  );

  const p = ctx.primary;
  if (use === undefined) return;
  if (p === undefined) {
    // Rules regime: what the whole tenant reads from this very resource, widened; alert at most.
    const fr = ctx.fleet?.resources[key];
    if (fr?.rows && fr.tasks >= MIN_KEYED_TASKS) {
      const ownRows = ctx.type?.resources[key]?.rows;
      const upper = Math.max(
        fenceUpper(fr.rows.fence, 20) * RULES_WIDEN,
        ownRows ? fenceUpper(ownRows.fence, 20) * PARTIAL_TYPE_WIDEN : 0,
      );
      const s = excessScore(use.rows, upper, K_RULES);
      if (s > 0)
        add(
          ctx,
          'volume',
          'data.resource_rows_per_task',
          Math.min(RULES_SPECIFIC_CAP, s),
          `read ${fmtNum(use.rows)} rows from ${resource} in this task; ${rulesWho(ctx)}: p99 across the tenant's tasks that read it is ${fmtNum(fr.rows.fence.p99)}, limit ${fmtNum(upper)}`,
        );
    }
    return;
  }
  const rs = p.resources[key];
  if (rs !== undefined && rs.tasks >= MIN_KEYED_TASKS) {
    if (rs.rows)
      keyedNumeric(
        ctx,
        'volume',
        'data.resource_rows_per_task',
        rs.rows.fence,
        use.rows,
        20,
        100,
        fmtNum,
        () => `read ${fmtNum(use.rows)} rows from ${resource} in this task`,
      );
    if (rs.bytes)
      keyedNumeric(
        ctx,
        'volume',
        'data.resource_bytes_per_task',
        rs.bytes.fence,
        use.bytes,
        256 * 1024,
        100,
        fmtBytes,
        () => `moved ${fmtBytes(use.bytes)} from ${resource} in this task`,
      );
  }
  resourceNovelty(ctx, p, key, resource, use.classRank);
  numeric(
    ctx,
    'resource',
    'data.distinct_resources',
    'distinctResources',
    state.resources.size,
    3,
    70,
    fmtNum,
    () => `touched ${fmtNum(state.resources.size)} different resources in this task`,
  );
  classification(ctx, p, resource, classificationRank(d?.classification));
}

/** Lateral movement: resources (and whole namespaces) the type never touches, more of them scoring higher. */
function resourceNovelty(ctx: Ctx, p: Baseline, key: string, resource: string, classRank: number): void {
  const f = novelty(seen(ctx, (b) => b.resources[key]?.tasks));
  if (f === 0) return;
  const ns = namespaceOf(key);
  const nsNew = novelty(seen(ctx, (b) => b.namespaces[ns])) > 0;
  let unseen = 0;
  let checked = 0;
  for (const k of ctx.state.resources.keys()) {
    if (++checked > 256) break;
    if (novelty(seen(ctx, (b) => b.resources[k]?.tasks)) > 0) unseen++;
  }
  const pNew = nsNew ? p.derived.pNew.namespaces : p.derived.pNew.resources;
  const base = (nsNew ? 60 : 40) + 15 * Math.max(0, unseen - 1) + (classRank >= 2 ? 10 : 0);
  const whoText = f === 1 ? ctx.who : `agent ${ctx.state.agentId}'s tasks (other agents of the type do)`;
  add(
    ctx,
    'resource',
    'data.resource_unseen',
    Math.min(95, base) * f * (1 - pNew),
    `accessed ${resource}, ${nsNew ? `in namespace ${ns}, which` : 'a resource'} ${whoText} have never touched; ${fmtNum(unseen)} new resource${unseen === 1 ? '' : 's'} in this task`,
  );
}

function classification(ctx: Ctx, p: Baseline, resource: string, rank: number): void {
  if (rank < 2) return;
  const level = CLASSIFICATION_NAMES[rank] ?? 'restricted';
  const s = seen(ctx, (b) => b.classifications[level]);
  const f = novelty(s);
  const maxSeen = CLASSIFICATION_NAMES[p.derived.maxClassRank] ?? 'unclassified';
  if (f > 0) {
    add(
      ctx,
      'classification',
      'data.classification',
      (rank === 3 ? 65 : 45) * f,
      `read ${level} data (${resource}); ${ctx.who} never reached above ${maxSeen}`,
    );
  } else if (s.type <= 2 && p.tasks >= 50 * s.type) {
    add(
      ctx,
      'classification',
      'data.classification',
      (rank === 3 ? 65 : 45) * 0.3,
      `read ${level} data (${resource}); only ${fmtNum(s.type)} of ${fmtNum(p.tasks)} ${ctx.who} did`,
    );
  }
}

/** Restricted data read now, egress to a new host earlier in the task (the other order of the hard rule). */
export function restrictedAfterEgress(ctx: Ctx, p: Baseline, rank: number): void {
  if (rank !== 3 || seen(ctx, (b) => b.classifications.restricted).type > 0) return;
  for (const h of ctx.state.egressHosts) {
    if (seen(ctx, (b) => b.hosts[h]).type === 0) {
      hard(
        ctx,
        'restricted_with_new_egress',
        'sequence',
        'sequence.restricted_with_new_egress',
        `read restricted data, which ${ctx.who} never read (${fmtNum(p.tasks)} tasks), after sending data to ${h}, a host they never contact`,
      );
      return;
    }
  }
}
