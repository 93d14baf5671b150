/**
 * Which revocations escalate, and how far. Pure: values in, a yes/no with its reason out.
 *
 * Counted toward escalating an agent — only what a person would stand behind:
 * - a person's kill (`manual`);
 * - a detector kill by a hard rule (never legitimate: credentials used after the task, a self-approved or unseen
 *   admin scope, restricted data then new egress), in any regime (`hard_rule`);
 * - a detector kill on a learned baseline whose score reaches the type's revoke threshold plus
 *   `CONFIDENCE_MARGIN` (capped at 100; 95 with the default threshold of 80) and that at least two independent
 *   pieces of evidence back: contributions of `STRONG_CONTRIBUTION` or more from different feature groups (the
 *   name before its first dot: `tool`, `data`, `egress`, `privilege`, …) (`confident_score`).
 * Not counted: a detector kill below that bar (`below_confidence`) or resting on one kind of evidence however
 * strong (`uncorroborated`: a single novelty, such as a payment to a new account, is what an ordinary task also
 * does at its type's rate), a warm-up kill (rules regime) without a hard rule (`warmup`), and a kill an escalation
 * made (`escalation`), whatever its message says, so a block never feeds the next one, nor a kill of a task because
 * its ancestor task was killed (`task_tree`: the ancestor's own kill is what counts). A restore takes its task's
 * revoke out of the window (killswitch/escalation.ts).
 *
 * Scope: each revocation carries the end user and the conversation its task's spans named. An escalation blocks
 * the narrowest scope every counted revocation shares (conversation and end user together when both are shared),
 * and the whole agent only when they share none. These values are the agent's own claims: they only ever
 * narrow a block (a task is in a scoped block only when its spans name that end user / conversation), never
 * widen one (no claim blocks another agent, or an agent beyond what its confident revocations justify) and never
 * lift one (no claim ends a block early or undoes a revocation; a whole-agent block ignores them).
 */
import type {
  AttributeValue,
  Contribution,
  EscalationBasis,
  EscalationBasisKind,
  Revocation,
  Verdict,
} from '../../schemas/events.ts';

/** The actor of revocations an escalation makes (they never count towards escalating again). */
export const ESCALATION_ACTOR = 'tripline/escalation';

/** Points above the type's revoke threshold a score needs for its revocation to count toward escalation. */
export const CONFIDENCE_MARGIN = 15;

/** A contribution at least this strong is a piece of evidence of its own (the default alert threshold). */
export const STRONG_CONTRIBUTION = 50;

/** Longest end user or conversation id kept (longer claims are cut). */
export const MAX_SCOPE_VALUE_LENGTH = 128;

/** Where the scope is read from, first found wins (the event's kept attributes: span over resource). */
export const END_USER_ATTRIBUTES: readonly string[] = ['enduser.id'];
export const CONVERSATION_ATTRIBUTES: readonly string[] = ['gen_ai.conversation.id', 'session.id'];

/** A part of an agent's work: `{}` is the whole agent; each field set narrows it. */
export interface EscalationScope {
  endUser?: string;
  conversation?: string;
}

/** The score a detector revocation needs to count (without a hard rule). */
export function confidenceBar(revokeThreshold: number): number {
  return Math.min(100, revokeThreshold + CONFIDENCE_MARGIN);
}

function basisWith(counts: boolean, basis: EscalationBasisKind, scope: EscalationScope): EscalationBasis {
  return { counts, basis, ...cleanScope(scope) };
}

/** How many feature groups (the name before its first dot) have a contribution of `STRONG_CONTRIBUTION` or more. */
export function strongGroups(contributions: readonly Pick<Contribution, 'feature' | 'score'>[]): number {
  const groups = new Set<string>();
  for (const contribution of contributions)
    if (contribution.score >= STRONG_CONTRIBUTION) groups.add(contribution.feature.split('.', 1)[0] ?? '');
  return groups.size;
}

/**
 * The detector's revocation: counts when a hard rule fired, or off warm-up at or above `confidenceBar` with at
 * least two strong feature groups behind it.
 */
export function detectorBasis(
  verdict: Pick<Verdict, 'score' | 'regime' | 'hardRule'> & {
    contributions: readonly Pick<Contribution, 'feature' | 'score'>[];
  },
  revokeThreshold: number,
  scope: EscalationScope,
): EscalationBasis {
  if (verdict.hardRule !== undefined) return basisWith(true, 'hard_rule', scope);
  if (verdict.regime === 'rules') return basisWith(false, 'warmup', scope);
  if (!(verdict.score >= confidenceBar(revokeThreshold))) return basisWith(false, 'below_confidence', scope);
  return strongGroups(verdict.contributions) >= 2
    ? basisWith(true, 'confident_score', scope)
    : basisWith(false, 'uncorroborated', scope);
}

/** A person's kill: always counts. */
export function manualBasis(scope: EscalationScope): EscalationBasis {
  return basisWith(true, 'manual', scope);
}

/** A kill an escalation made: never counts. */
export function escalationBasis(scope: EscalationScope): EscalationBasis {
  return basisWith(false, 'escalation', scope);
}

/** A task revoked because an ancestor task was (services/core/task-tree.ts): never counts, the ancestor's kill does. */
export function taskTreeBasis(scope: EscalationScope): EscalationBasis {
  return basisWith(false, 'task_tree', scope);
}

/**
 * Whether a revoke counts toward escalating its agent. A revocation without a basis (published or stored by an
 * older version) counts when a person made it; a detector one does not, since nothing says it was confident.
 */
export function countsTowardEscalation(revocation: Revocation): boolean {
  if (revocation.action !== 'revoke' || revocation.actor === ESCALATION_ACTOR) return false;
  if (revocation.escalation !== undefined) return revocation.escalation.counts;
  return revocation.source === 'manual';
}

/** The scope a revocation's task named (`{}`: none, or an older revocation). */
export function scopeOfRevocation(revocation: Revocation): EscalationScope {
  return cleanScope(revocation.escalation ?? {});
}

function claim(value: unknown): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const text = String(value).trim();
  return text === '' ? undefined : text.slice(0, MAX_SCOPE_VALUE_LENGTH);
}

function firstClaim(attributes: Readonly<Record<string, AttributeValue>>, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = Object.hasOwn(attributes, key) ? claim(attributes[key]) : undefined;
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * Folds one event's claims into a task's scope: a field already known is kept (the first claim wins, so a later
 * span cannot move its task out of a block). Mutates and returns `scope`. Never throws.
 */
export function noteScope(
  scope: EscalationScope,
  attributes: Readonly<Record<string, AttributeValue>> | undefined,
): EscalationScope {
  // Events decoded from elsewhere (a store row, a replay) are not trusted to match their type.
  const given: unknown = attributes;
  if (given === null || typeof given !== 'object') return scope;
  if (scope.endUser === undefined) {
    const endUser = firstClaim(given as Record<string, AttributeValue>, END_USER_ATTRIBUTES);
    if (endUser !== undefined) scope.endUser = endUser;
  }
  if (scope.conversation === undefined) {
    const conversation = firstClaim(given as Record<string, AttributeValue>, CONVERSATION_ATTRIBUTES);
    if (conversation !== undefined) scope.conversation = conversation;
  }
  return scope;
}

/** A scope with only valid, bounded fields (from a message, a request, or a task). */
export function cleanScope(value: unknown): EscalationScope {
  if (value === null || typeof value !== 'object') return {};
  const record = value as Record<string, unknown>;
  const scope: EscalationScope = {};
  const endUser = typeof record.endUser === 'string' ? claim(record.endUser) : undefined;
  const conversation = typeof record.conversation === 'string' ? claim(record.conversation) : undefined;
  if (endUser !== undefined) scope.endUser = endUser;
  if (conversation !== undefined) scope.conversation = conversation;
  return scope;
}

/** The basis of a message read from elsewhere (Kafka, the store); undefined when it is not one. Never throws. */
export function parseEscalationBasis(value: unknown): EscalationBasis | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.counts !== 'boolean' || !isBasisKind(record.basis)) return undefined;
  return basisWith(record.counts, record.basis, cleanScope(record));
}

const BASIS_KINDS: readonly EscalationBasisKind[] = [
  'manual',
  'hard_rule',
  'confident_score',
  'below_confidence',
  'uncorroborated',
  'warmup',
  'escalation',
  'task_tree',
];

function isBasisKind(value: unknown): value is EscalationBasisKind {
  return (BASIS_KINDS as readonly unknown[]).includes(value);
}

/** The fields every scope shares with the same value: the narrowest scope that explains them all. */
export function sharedScope(scopes: readonly EscalationScope[]): EscalationScope {
  const [first, ...rest] = scopes;
  if (first === undefined) return {};
  const shared: EscalationScope = {};
  if (first.endUser !== undefined && rest.every((scope) => scope.endUser === first.endUser))
    shared.endUser = first.endUser;
  if (first.conversation !== undefined && rest.every((scope) => scope.conversation === first.conversation))
    shared.conversation = first.conversation;
  return shared;
}

export function isWholeAgent(scope: EscalationScope | undefined): boolean {
  return scope === undefined || (scope.endUser === undefined && scope.conversation === undefined);
}

/**
 * Whether a block of scope `block` reaches work of scope `work` (a task, or another block): every field the
 * block sets, the work names with the same value. A task that names no end user is outside an end-user block.
 */
export function covers(block: EscalationScope | undefined, work: EscalationScope): boolean {
  if (block === undefined) return true;
  if (block.endUser !== undefined && work.endUser !== block.endUser) return false;
  if (block.conversation !== undefined && work.conversation !== block.conversation) return false;
  return true;
}

/** A scope as people read it: "end user u-1, conversation c-9", or "the whole agent". */
export function describeScope(scope: EscalationScope | undefined): string {
  if (scope === undefined || isWholeAgent(scope)) return 'the whole agent';
  const parts: string[] = [];
  if (scope.endUser !== undefined) parts.push(`end user ${scope.endUser}`);
  if (scope.conversation !== undefined) parts.push(`conversation ${scope.conversation}`);
  return parts.join(', ');
}
