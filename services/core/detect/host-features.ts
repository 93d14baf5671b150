/**
 * Features of an event that names a host: contact with and egress to hosts new to the type, egress after a secret
 * was read, and restricted data plus new egress (a hard rule; the other order is in data-features.ts).
 */
import type { Baseline } from './baseline.ts';
import { add, hard, numeric, seen, novelty, type Ctx } from './evidence.ts';
import { fmtDuration, fmtNum } from './format.ts';
import { hostFamily, isEgress, isGenericEgress } from './signals.ts';

/** Contact with hosts, egress, and the read-secret → send-out sequence. */
export function hosts(ctx: Ctx, host: string): void {
  const { event, state } = ctx;
  const egress = isEgress(event, host);
  const family = hostFamily(host);
  const p = ctx.primary;
  let hostNew: boolean;
  let familyNew: boolean;
  if (p !== undefined) {
    const f = novelty(seen(ctx, (b) => b.hosts[host]));
    hostNew = f === 1;
    familyNew = novelty(seen(ctx, (b) => b.hostFamilies[family])) === 1;
    if (f > 0) {
      const pNew = familyNew ? p.derived.pNew.hostFamilies : p.derived.pNew.hosts;
      // Data sent through a channel that takes any URL (an HTTP/upload tool, a remote write) to an organisation the
      // type never contacts is exfiltration's signature: it revokes on its own, unless the type often meets new hosts.
      const base = (egress ? (familyNew && isGenericEgress(event) ? 80 : 60) : 35) * (familyNew ? 1 : 0.6);
      const whoText = f === 1 ? ctx.who : `agent ${state.agentId}'s tasks (other agents of the type do)`;
      add(
        ctx,
        'host',
        'egress.host_unseen',
        base * f * (1 - pNew),
        `${egress ? 'sent data to' : 'contacted'} ${host}, a host ${whoText} have never contacted${familyNew ? ` (nor anything under ${family})` : ''}`,
      );
    }
    numeric(
      ctx,
      'host',
      'egress.distinct_hosts',
      'distinctHosts',
      state.hosts.size,
      2,
      60,
      fmtNum,
      () => `contacted ${fmtNum(state.hosts.size)} different hosts in this task`,
    );
  } else {
    const known = (b: Baseline | undefined, k: 'hosts' | 'hostFamilies', v: string): boolean =>
      b !== undefined && b[k][v] !== undefined;
    hostNew = !known(ctx.type, 'hosts', host) && !known(ctx.fleet, 'hosts', host);
    familyNew = !known(ctx.type, 'hostFamilies', family) && !known(ctx.fleet, 'hostFamilies', family);
  }
  if (!egress || !hostNew) return;

  // Read a secret, then send to a new host.
  if (state.secretReadMs !== null && state.secretReadMs <= event.startMs) {
    let s: number;
    if (p !== undefined) {
      s = (familyNew ? 92 : 72) * (1 - 0.4 * p.derived.pNew.hosts);
    } else if (isGenericEgress(event)) {
      // Rules regime: a general-purpose HTTP/upload channel to a destination the tenant has never used.
      const anyKnowledge = (ctx.type?.tasks ?? 0) > 0 || ctx.fleet !== undefined;
      s = familyNew ? (anyKnowledge ? 92 : 75) : 60;
    } else {
      // Rules regime, purpose-named integration (notify_slack, deploy…): a new type may legitimately call it.
      s = familyNew ? 45 : 30;
    }
    const whoText = p !== undefined ? ctx.who : `type ${state.taskType} and the tenant's other tasks`;
    add(
      ctx,
      'sequence',
      'sequence.secret_then_egress',
      s,
      `sent data to ${host} ${fmtDuration(event.startMs - state.secretReadMs)} after reading ${state.secretWhat}; ${whoText} never contacted that host`,
    );
  }
  // Hard rule: restricted data the type never reads, plus egress to a host it never contacts.
  if (p !== undefined && state.classRank === 3 && seen(ctx, (b) => b.classifications.restricted).type === 0) {
    hard(
      ctx,
      'restricted_with_new_egress',
      'sequence',
      'sequence.restricted_with_new_egress',
      `read restricted data, which ${ctx.who} never read, and sent data to ${host}, a host they never contact`,
    );
  }
}
