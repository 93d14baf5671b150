/**
 * Features of a sink call (one that sends, pays, shares, posts or invites) by the counterparties it names:
 *
 * - `tool.counterparty_flow`: a counterparty new to the type (or agent) that first appeared in a tool's result in
 *   this task — content the agent read — now receives money, mail, a file or data. The signature of an injected
 *   instruction; scaled by how often the type's benign tasks do that legitimately (a reply to a new sender).
 * - `tool.new_counterparty`: a counterparty new to the type at a sink, named by the request or the agent itself;
 *   scaled by how often the type meets new ones. Alone it alerts at most.
 * - `tool.amount`: an amount far above the type's.
 *
 * Novelty is judged against the baselines' keyed hashes (type, agent, tenant-wide fleet). A new address at a domain
 * the tenant deals with counts less than one at a never-seen domain. Without recorded results (`resultRecorded`), no
 * flow can be seen. In warm-up (rules regime) only a flow to a counterparty neither the type's first tasks nor the
 * tenant ever dealt with is scored, and it alerts (see warmup.ts).
 */
import type { Counterparty } from '../../../schemas/events.ts';
import type { Baseline } from './baseline.ts';
import { READ_TASKS } from './counterparty-baseline.ts';
import { add, keyedNumeric, novelty, rulesWho, seen, type Ctx } from './evidence.ts';
import { fmtNum, fmtPercent } from './format.ts';
import { MIN_KEYED_TASKS } from './limits.ts';
import { CUE_WORDS } from '../instruction-cues.ts';
import { thresholdsFor } from './config.ts';
import { partyKey, partyKind, validAmount, validParties } from './parties.ts';
import type { PartyUse } from './parties.ts';
import { type SinkKind, sinkKind } from './signals.ts';

/** A flow from read content to a sink, to a counterparty new to the type and tenant: money / anything else. */
export const FLOW_MONEY = 98;
export const FLOW_OTHER = 95;
/** A new counterparty at a sink (no flow), before scaling by the type's rate of new ones; at most NEW_PARTY_CAP. */
export const NEW_PARTY = 85;
export const NEW_PARTY_CAP = 72;
/** How much the type's rate of new counterparties at sinks lowers `tool.new_counterparty`: × (1 − 3·rate). */
const NEW_RATE_WEIGHT = 3;
/** Known to other task types of the tenant (not to this one). */
const TENANT_KNOWN_FACTOR = 0.6;
/** A new mail address at a domain the tenant deals with in at least DAILY_DOMAIN_TASKS tasks / fewer. */
const KNOWN_DOMAIN_FACTOR = 0.45;
const RARE_DOMAIN_FACTOR = 0.7;
const DAILY_DOMAIN_TASKS = 5;
/** A familiar counterparty (named in results of READ_TASKS learned tasks: counterparty-baseline.ts) counts this much. */
const READ_FACTOR = 0.5;
/**
 * A flow whose source text carried no instruction cue scores at most this far under the type's revoke threshold:
 * it alerts. A legitimate first payment of a new biller's invoice, or a reply to a new customer, is the same flow
 * without the cue, and a person should look, not the kill switch act; corroborating evidence from other families
 * (an amount far above the type's) can still carry the task over the threshold.
 */
export const UNBACKED_MARGIN = 5;

/** Warm-up: a flow to a counterparty the tenant never dealt with alerts (never revokes: novelty). */
const WARMUP_FLOW = 60;

const VERB: Readonly<Record<SinkKind, string>> = {
  money: 'sent money to',
  mail: 'sent mail to',
  share: 'shared with',
  message: 'sent a message to',
  invite: 'invited',
  data: 'sent data to',
};
const NOUN: Readonly<Record<Counterparty['kind'], string>> = {
  email: 'an address',
  domain: 'a domain',
  account: 'an account',
  url_host: 'a web host',
  handle: 'a user or channel',
  phone: 'a phone number',
};

/** `; the result of read_file(x), which named it, is addressed to the assistant and overrides its instructions`. */
function instructedText(use: PartyUse): string {
  const instructed = use.instructed;
  if (instructed === undefined)
    return '; nothing it read in this task carried instructions to the assistant, so this alerts and does not revoke';
  const words = instructed.cues.map((cue) => CUE_WORDS[cue]);
  const listed = words.length > 1 ? `${words.slice(0, -1).join(', ')} and ${words.at(-1) ?? ''}` : (words[0] ?? '');
  const where =
    instructed.source === use.source ? 'that result' : `the result of ${instructed.source}, which also named it,`;
  return `; ${where} reads as an injected instruction: it ${listed}`;
}

interface Candidate {
  score: number;
  reason: string;
}

/** Tasks of the tenant (or type) that dealt with `key`: the most any of the baselines at hand counts. */
function tasksWith(ctx: Ctx, key: string): number {
  let n = 0;
  for (const b of [ctx.primary, ctx.type, ctx.fleet])
    if (b !== undefined) n = Math.max(n, b.counterparties.known[key] ?? 0);
  return n;
}

/** Learned tasks of the tenant that read about `key` (0 without a warmed-up fleet). */
function fleetRead(ctx: Ctx, key: string): number {
  return ctx.fleet?.counterparties.read[key] ?? 0;
}

/**
 * How an address compares with its organisation: undefined when the party is not an address, or when a domain on
 * the call is new (the address is then as new as its organisation); else the factor and the words for it. A domain
 * the tenant's tasks only read about (mail from it, in READ_TASKS tasks or more) counts as rarely dealt with.
 */
function knownDomain(ctx: Ctx, c: Counterparty, domains: readonly string[]): Candidate | undefined {
  if (c.kind !== 'email' || domains.length === 0) return undefined;
  let least = Number.POSITIVE_INFINITY;
  let leastRead = Number.POSITIVE_INFINITY;
  for (const d of domains) {
    least = Math.min(least, tasksWith(ctx, d));
    leastRead = Math.min(leastRead, Math.max(seen(ctx, (b) => b.counterparties.read[d]).type, fleetRead(ctx, d)));
  }
  if (least > 0)
    return {
      score: least >= DAILY_DOMAIN_TASKS ? KNOWN_DOMAIN_FACTOR : RARE_DOMAIN_FACTOR,
      reason: `, at a domain the tenant dealt with in ${fmtNum(least)} tasks`,
    };
  if (leastRead >= READ_TASKS)
    return {
      score: RARE_DOMAIN_FACTOR,
      reason: `, at a domain their tasks read mail from in ${fmtNum(leastRead)} tasks`,
    };
  return undefined;
}

export function counterparties(ctx: Ctx): void {
  const tool = ctx.event.tool;
  if (tool === undefined || (tool.counterparties === undefined && tool.amount === undefined)) return;
  const sink = sinkKind(tool);
  if (sink === undefined) return;
  const amount = validAmount(tool.amount);
  const parties = validParties(tool.counterparties);
  if (parties.length > 0) {
    if (ctx.primary !== undefined) judge(ctx, ctx.primary, sink, parties, amount);
    else warmupFlow(ctx, sink, parties);
  }
  const p = ctx.primary;
  if (amount !== undefined && p !== undefined && p.counterparties.amounts.fence.n >= MIN_KEYED_TASKS) {
    keyedNumeric(
      ctx,
      'amount',
      'tool.amount',
      p.counterparties.amounts.fence,
      amount,
      1,
      75,
      fmtNum,
      () => `${VERB[sink]} an amount of ${fmtNum(amount)} with ${tool.name}`,
    );
  }
}

/**
 * The type's (or agent's) rates of a new recipient per task, leaving out the recipients the tenant's other task types
 * deal with: how often its tasks hand something to someone new to the whole tenant, the surprise an attacker is.
 */
function strangerRates(ctx: Ctx, p: Baseline): { any: number; org: number } {
  const stats = p.counterparties;
  let any = stats.newRecipients;
  let org = stats.newOrgRecipients;
  const fleet = ctx.fleet;
  const own = (ctx.type ?? p).counterparties.known;
  if (fleet !== undefined) {
    for (const k of stats.singletons) {
      if ((fleet.counterparties.known[k] ?? 0) <= (own[k] ?? 0)) continue;
      any--;
      if (partyKind(k) !== 'email') org--;
    }
  }
  const rate = (n: number): number => Math.min(1, (Math.max(0, n) + 0.5) / (p.tasks + 1));
  return { any: rate(any), org: rate(org) };
}

function judge(
  ctx: Ctx,
  p: Baseline,
  sink: SinkKind,
  parties: readonly Counterparty[],
  amount: number | undefined,
): void {
  const stats = p.counterparties;
  const domains = parties.filter((c) => c.kind === 'domain').map(partyKey);
  // An address carries its domain's evidence (knownDomain); a domain is judged alone only when no address names it.
  const judged = parties.some((c) => c.kind === 'email') ? parties.filter((c) => c.kind !== 'domain') : parties;
  let rates: { any: number; org: number } | undefined;
  const verb = sink === 'money' && amount !== undefined ? `sent ${fmtNum(amount)} to` : VERB[sink];
  let flow: Candidate | undefined;
  let fresh: Candidate | undefined;
  for (const c of judged) {
    const k = partyKey(c);
    const f = novelty(seen(ctx, (b) => b.counterparties.known[k]));
    if (f === 0) continue;
    rates ??= strangerRates(ctx, p);
    const tenantKnown = f === 1 && ctx.fleet !== undefined && ctx.fleet.counterparties.known[k] !== undefined;
    const tenantText =
      ctx.fleet === undefined
        ? ''
        : tenantKnown
          ? ' (other task types of this tenant have)'
          : ' (nor has any task of this tenant)';
    const whoText = f === 1 ? ctx.who : `agent ${ctx.state.agentId}'s tasks of type ${ctx.state.taskType}`;
    const domain = knownDomain(ctx, c, domains);
    const orgLevel = domain === undefined;
    const readIn = seen(ctx, (b) => b.counterparties.read[k]).type;
    const familiar = readIn >= READ_TASKS;
    const factor = f * (tenantKnown ? TENANT_KNOWN_FACTOR : 1) * (domain?.score ?? 1) * (familiar ? READ_FACTOR : 1);
    const r = orgLevel ? rates.org : rates.any;
    const readText = familiar ? `; their tasks read about it in ${fmtNum(readIn)} tasks` : '';
    const others = f === 1 ? tenantText : ' (other agents of the type have)';
    const what = `${verb} ${NOUN[c.kind]} ${whoText} never dealt with${others}${domain?.reason ?? ''}${readText}`;
    const rateText = `${fmtPercent(r)} of their tasks hand something to a new ${orgLevel ? 'organisation, account or handle' : 'address'} the tenant does not know`;
    const use = ctx.state.parties.get(k);
    if (use?.fromResult === true) {
      const top = sink === 'money' ? FLOW_MONEY : FLOW_OTHER;
      // The type's rate of flows to strangers, and an address's known organisation, measure how often such a flow is
      // legitimate; legitimate flows carry no instruction to the assistant, so neither discounts an instructed one.
      const s =
        use.instructed !== undefined
          ? top * f * (tenantKnown ? TENANT_KNOWN_FACTOR : 1) * (familiar ? READ_FACTOR : 1)
          : Math.min(top * factor * (1 - r), thresholdsFor(ctx.state.taskType, ctx.config).revoke - UNBACKED_MARGIN);
      if (flow === undefined || s > flow.score)
        flow = {
          score: s,
          reason: `${what}; it first appeared in the result of ${use.source} in this task${instructedText(use)} (${rateText}; ${fmtPercent(stats.flows / Math.max(1, p.tasks))} pass a counterparty from a result to such a call)`,
        };
    } else {
      // Alone a new recipient alerts, never revokes: the processor does not learn tasks that alerted, so the rate of
      // new recipients a type learns leaves out exactly those; a type that "never meets new ones" may just be one whose
      // new ones all alerted. A person's false-positive mark teaches it (feedback.ts).
      const s = Math.min(NEW_PARTY_CAP, NEW_PARTY * factor * Math.max(0, 1 - NEW_RATE_WEIGHT * r));
      if (fresh === undefined || s > fresh.score) {
        const unrecorded =
          ctx.state.resultsRecorded === 0
            ? "; no result of this task's calls was recorded, so whether it came from content the agent read cannot be seen"
            : '';
        fresh = { score: s, reason: `${what} (${rateText})${unrecorded}` };
      }
    }
  }
  if (flow !== undefined) add(ctx, 'counterparty', 'tool.counterparty_flow', flow.score, flow.reason);
  if (fresh !== undefined) add(ctx, 'counterparty', 'tool.new_counterparty', fresh.score, fresh.reason);
}

/**
 * Warm-up: the type's few tasks cannot tell its ordinary counterparties from an attacker's, so only a flow from
 * read content to a counterparty neither they nor any task of the (warmed-up) tenant dealt with — nor, for an
 * address, any domain on the call — is scored, once the type has half its warm-up, and it alerts.
 */
function warmupFlow(ctx: Ctx, sink: SinkKind, parties: readonly Counterparty[]): void {
  // The type's very first tasks meet all their counterparties for the first time: scored from half the warm-up on.
  if (ctx.fleet === undefined || (ctx.type?.tasks ?? 0) < ctx.config.warmupTasks / 2) return;
  const known = (k: string): boolean => tasksWith(ctx, k) > 0;
  const domainsKnown = parties.some((c) => c.kind === 'domain' && known(partyKey(c)));
  for (const c of parties) {
    const k = partyKey(c);
    const use = ctx.state.parties.get(k);
    if (use?.fromResult !== true || known(k) || (c.kind === 'email' && domainsKnown)) continue;
    if ((ctx.type?.counterparties.read[k] ?? 0) >= READ_TASKS) continue;
    add(
      ctx,
      'counterparty',
      'tool.counterparty_flow',
      WARMUP_FLOW,
      `${VERB[sink]} ${NOUN[c.kind]} that no task of this tenant dealt with; it first appeared in the result of ${use.source} in this task; ${rulesWho(ctx)}: alert only`,
    );
    return;
  }
}
