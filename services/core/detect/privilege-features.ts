/**
 * Features of a privilege change: actions and scopes new to the type, administrative scopes and self-approval (hard
 * rules), unapproved gains, and how many scopes the task gained.
 */
import { add, hard, numeric, seen, novelty, type Ctx, type Seen } from './evidence.ts';
import { fmtNum } from './format.ts';
import { APPROVED_FACTOR } from './limits.ts';
import { isAdminScope } from './signals.ts';

/** Whether a change's grantor is the agent itself (`agent-7`, `agent:agent-7`, `Agent-7 `…). */
function isSelf(grantedBy: string, agentId: string): boolean {
  const who = grantedBy
    .trim()
    .toLowerCase()
    .replace(/^(agent|gen_ai\.agent|self)[:/]/, '');
  return who === 'self' || who === agentId.trim().toLowerCase();
}

export function privilege(ctx: Ctx): void {
  const { event, state } = ctx;
  const pc = event.privilege;
  const action = pc?.action ?? event.name;
  const p = ctx.primary;
  // An agent cannot approve its own privileges: `approved` on a change it granted itself is a claim, not an approval.
  const selfApproved = pc?.approved === true && pc.grantedBy !== undefined && isSelf(pc.grantedBy, state.agentId);
  const approved = pc?.approved === true && !selfApproved;
  // An approved change (by policy or a person) of an ordinary scope is weaker evidence than a self-granted one.
  const approval = approved ? APPROVED_FACTOR : 1;
  if (p !== undefined) {
    const f = novelty(seen(ctx, (b) => b.privilegeActions[action]));
    if (f > 0)
      add(
        ctx,
        'privilege',
        'privilege.action_unseen',
        55 * f * approval * (1 - p.derived.pNew.privilegeActions),
        `made a privilege change (${action}${approved ? ', approved' : ''}) that ${f === 1 ? ctx.who : `agent ${state.agentId}'s tasks`} never make`,
      );
  }
  if (pc !== undefined) {
    const before = new Set(pc.scopesBefore);
    const fresh = pc.scopesAfter.filter((s) => !before.has(s));
    const how = `${action}${pc.grantedBy !== undefined ? `, granted by ${pc.grantedBy}` : ''}${pc.approved === false ? ', not approved' : selfApproved ? ', approved by the agent itself' : approved ? ', approved' : ''}`;
    if (selfApproved && fresh.length > 0) {
      hard(
        ctx,
        'privilege_self_approved',
        'approval',
        'privilege.self_approved',
        `gained ${fmtNum(fresh.length)} scope${fresh.length === 1 ? '' : 's'} (${how}): an agent cannot approve its own privileges`,
      );
    }
    let unseenPlain = 0;
    let firstPlain = '';
    for (const scope of fresh) {
      const s: Seen =
        p !== undefined
          ? seen(ctx, (b) => b.scopes[scope])
          : { primary: ctx.type?.scopes[scope] ?? 0, type: ctx.type?.scopes[scope] ?? 0 };
      const f = novelty(s);
      if (f === 0) continue;
      if (isAdminScope(scope)) {
        if (f === 1 && (p !== undefined || !approved)) {
          hard(
            ctx,
            'privilege_admin_unseen',
            'privilege',
            'privilege.admin_scope',
            `gained administrative scope ${scope} (${how}), which ${p !== undefined ? ctx.who : `type ${state.taskType}`} never hold`,
          );
        } else {
          add(
            ctx,
            'privilege',
            'privilege.admin_scope',
            f === 1 ? 75 : 60,
            `gained administrative scope ${scope} (${how}), which ${f === 1 ? `type ${state.taskType} never held before` : `agent ${state.agentId} never held (other agents of the type do)`}`,
          );
        }
      } else if (p !== undefined) {
        unseenPlain++;
        if (firstPlain === '') firstPlain = scope;
      }
    }
    if (p !== undefined && unseenPlain > 0) {
      const s = Math.min(75, 50 + 10 * (unseenPlain - 1)) * approval * (1 - p.derived.pNew.scopes);
      add(
        ctx,
        'privilege',
        'privilege.scope_unseen',
        s,
        `gained scope ${firstPlain}${unseenPlain > 1 ? ` and ${fmtNum(unseenPlain - 1)} more` : ''} (${how}), which ${ctx.who} never hold`,
      );
    }
    if (pc.approved === false && fresh.length > 0)
      add(
        ctx,
        'approval',
        'privilege.unapproved',
        30,
        `gained ${fmtNum(fresh.length)} scope${fresh.length === 1 ? '' : 's'} without approval (${how})`,
      );
  }
  numeric(
    ctx,
    'privilege',
    'privilege.scope_growth',
    'scopesGained',
    state.gainedScopes.size,
    2,
    80,
    fmtNum,
    () => `holds ${fmtNum(state.gainedScopes.size)} scopes it did not hold at the start of the task`,
  );
  numeric(
    ctx,
    'privilege',
    'privilege.changes_per_task',
    'privilegeChanges',
    state.counts.privilege_change,
    2,
    70,
    fmtNum,
    () => `made ${fmtNum(state.counts.privilege_change)} privilege changes in this task`,
  );
}
