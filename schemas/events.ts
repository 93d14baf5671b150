/**
 * The values that flow between Tripline's parts: classified events, verdicts, alerts, revocations.
 * These are plain data (no classes) so they cross the in-process bus, Kafka (as JSON) and ClickHouse alike.
 * JSON Schemas for the documents published on Kafka live beside this file (`alert.schema.json`,
 * `revocation.schema.json`).
 */
import type { DataClassification, EventKind, ToolSideEffect } from './conventions.ts';

export type AttributeValue = string | number | boolean;

/** What kind of party a counterparty is (see schemas/conventions.md#counterparties). */
export type CounterpartyKind = 'email' | 'domain' | 'account' | 'url_host' | 'handle' | 'phone';

/**
 * What marks text a tool returned as instructions meant for the agent, not its reader (services/core/instruction-cues.ts):
 * it overrides the agent's instructions, addresses the model, asks it to keep a step from its user, claims an
 * authority approved the step, or forges prompt markup.
 */
export const INSTRUCTION_CUES = [
  'overrides_instructions',
  'addresses_the_assistant',
  'hides_from_user',
  'claims_authority',
  'role_markup',
] as const;
export type InstructionCue = (typeof INSTRUCTION_CUES)[number];

/**
 * Someone or something a tool call deals with, named in its arguments or its result: a mail address (and its
 * domain), a bank account or IBAN, a URL's host, a user or channel handle, a phone number. Kept as a keyed hash
 * of the normalised value (`key`: 16 hex digits), never the raw value.
 */
export interface Counterparty {
  kind: CounterpartyKind;
  key: string;
}

export interface ToolCallDetail {
  name: string;
  type?: string;
  sideEffect?: ToolSideEffect;
  /** Host, URL or resource the tool acts on, when known. */
  target?: string;
  callId?: string;
  /** Counterparties named in the call's arguments (bounded; absent when none or no arguments were recorded). */
  counterparties?: Counterparty[];
  /** Counterparties named in the call's recorded result (absent when none or no result was recorded). */
  resultCounterparties?: Counterparty[];
  /** Whether the framework recorded the call's result at all (a flow from a result can only be seen then). */
  resultRecorded?: boolean;
  /** Instruction cues in the recorded result (absent when none): the result reads like an injected instruction. */
  resultInstructions?: InstructionCue[];
  /** The largest amount-like argument (`amount`, `value`, `sum`, `price`, `total`…), when one is a number. */
  amount?: number;
  /** The argument keys the call was made with (top level, sorted, bounded). */
  argumentKeys?: string[];
  /**
   * Keyed hash of the recorded arguments (16 hex digits, as counterparties' keys; never the arguments): equal
   * arguments of one tenant hash equal (services/core/loops.ts counts exact repeats by it).
   */
  argumentsHash?: string;
  /** Keyed hash of the recorded result (as `argumentsHash`): the same result again is no progress. */
  resultHash?: string;
  /**
   * Set by the processor on another instrumentation's span of a call already counted (the span's direct parent or
   * child in the task records the same call: services/core/detect/same-call.ts): the id of the event that counted
   * the call. Such an event is no second call; what it carries (arguments, counterparties, result) is the call's.
   */
  sameCallOf?: string;
}

export interface DataAccessDetail {
  /** What was read or written: `namespace.collection` for databases, `host/path` for URLs, the path for files. */
  resource: string;
  system?: string;
  operation?: string;
  rows?: number;
  bytes?: number;
  classification?: DataClassification;
  /** Host the data came from or went to (server.address or the URL's host). */
  host?: string;
}

export interface PrivilegeDetail {
  action: string;
  scopesBefore: string[];
  scopesAfter: string[];
  resource?: string;
  grantedBy?: string;
  approved?: boolean;
}

/**
 * What one span says about its task itself (its own attributes, its resource's, or baggage copied onto it), as
 * opposed to the stand-ins classification falls back on (the trace id for the task, `unknown` for the type,
 * `service.name` for the agent). The processor resolves a span's task from these and from the rest of its trace.
 */
export interface TaskClaims {
  /** `tripline.task.id` (made addressable). */
  taskId?: string;
  /** `tripline.task.type`. */
  taskType?: string;
  /** `gen_ai.agent.id`, else `gen_ai.agent.name`. */
  agentId?: string;
  /** `tripline.task.parent_id` (made addressable): the task this one was started inside; a link, never authority. */
  parentTaskId?: string;
  /**
   * The agent the span claimed when its agent token may not speak for it (services/core/agent-binding.ts): the
   * event was put under the token's identity instead, and its task alerts (`identity.agent_refused`).
   */
  refusedAgentId?: string;
}

/** One classified span. `id` is deterministic (trace id + span id), so replays deduplicate. */
export interface AgentEvent {
  id: string;
  tenant: string;
  kind: EventKind;
  /** The task: as classified, the span's own task id or its trace id; the processor rewrites it to the trace's task. */
  taskId: string;
  taskType: string;
  agentId: string;
  /** What the span itself said (absent on events read back from the store). */
  claims?: TaskClaims;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** Unix epoch milliseconds (fractional part keeps microseconds). */
  startMs: number;
  endMs: number;
  error: boolean;
  errorType?: string;
  tool?: ToolCallDetail;
  data?: DataAccessDetail;
  privilege?: PrivilegeDetail;
  /** Key attributes kept verbatim for the store and for people reading an event. */
  attributes: Record<string, AttributeValue>;
}

/**
 * A span that is no event but says something about its trace's task: the trace's root (no parent, a remote
 * parent, or flagged `tripline.task.root`) ended, so the task is complete at `endMs` (`ends`); or a span that
 * declares the task's id or type (a wrapper around an agent run that is not the trace's root).
 */
export interface TaskBoundary {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  claims?: TaskClaims;
  /** The span ends its trace's task (else it only declares who the task is). */
  ends: boolean;
  traceId: string;
  spanId: string;
  startMs: number;
  endMs: number;
  error: boolean;
}

/**
 * One model call (a GenAI `chat` / `text_completion` / `generate_content` / `embeddings` span, or its OpenLLMetry
 * or OpenInference equivalent): the tokens it used and the model. Not an event: it is folded into its task's spend
 * (services/core/spend/), which budgets are checked against. `id` is the trace id + span id, like an event's.
 */
export interface ModelUsage {
  id: string;
  tenant: string;
  /** As classified (the span's own task id or its trace id); the processor rewrites it to the trace's task. */
  taskId: string;
  taskType: string;
  agentId: string;
  claims?: TaskClaims;
  traceId: string;
  spanId: string;
  startMs: number;
  endMs: number;
  /** `chat`, `text_completion`, `generate_content`, `embeddings` (OpenLLMetry / OpenInference kinds mapped). */
  operation: string;
  /** `gen_ai.response.model`, else `gen_ai.request.model`, else `llm.model_name`; `unknown` when none. */
  model: string;
  provider?: string;
  inputTokens: number;
  outputTokens: number;
}

export const DECISIONS = ['allow', 'alert', 'revoke'] as const;
export type Decision = (typeof DECISIONS)[number];

/**
 * Which knowledge a verdict rests on: `rules` while a task type warms up (fleet-wide priors and hard rules),
 * `type_baseline` once the type has enough completed tasks, `agent_baseline` when one agent of the type has
 * enough of its own.
 */
export const REGIMES = ['rules', 'type_baseline', 'agent_baseline'] as const;
export type Regime = (typeof REGIMES)[number];

export interface Contribution {
  /** Stable feature name, e.g. `data.rows_per_task`, `tool.unseen`. */
  feature: string;
  /** 0–100, this feature's own score. */
  score: number;
  /** A sentence a person reads. */
  reason: string;
}

export interface Verdict {
  score: number;
  decision: Decision;
  regime: Regime;
  /** Contributions with a non-zero score, highest first. */
  contributions: Contribution[];
  /** Set when a hard rule decided on its own. */
  hardRule?: string;
  /** Shadow mode: the decision was recorded but not acted on. */
  shadow: boolean;
}

export const TASK_STATUSES = ['active', 'completed', 'revoked'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export interface Alert {
  id: string;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  eventId: string;
  timeMs: number;
  score: number;
  decision: Decision;
  regime: Regime;
  reasons: string[];
  shadow: boolean;
  /**
   * A loop or rate limit's `refuse` step (services/core/loops.ts): the task's calls are refused until then (POST
   * /v1/check denies them; the agent helpers' guards refuse them). Absent on other alerts.
   */
  refuseUntilMs?: number;
}

export const REVOCATION_ACTIONS = ['revoke', 'restore'] as const;
export type RevocationAction = (typeof REVOCATION_ACTIONS)[number];

export interface Revocation {
  id: string;
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  action: RevocationAction;
  /** `detector` for automatic kills; `manual` for people through the API. */
  source: 'detector' | 'manual';
  actor: string;
  reason: string;
  reasons: string[];
  score: number;
  /** The event that triggered an automatic revocation ('' for manual ones). */
  eventId: string;
  timeMs: number;
  /** Whether it counts toward escalating its agent, and the task's scope (absent on older revocations). */
  escalation?: EscalationBasis;
  /**
   * The task's parent task (`tripline.task.parent_id`), when it declared one: the processor holding the parent
   * raises the parent's score on a child's kill (services/core/task-tree.ts). Carried on the kill switch and
   * `tripline.revocations`, not stored.
   */
  parentTaskId?: string;
}

/** Why a revocation counts toward escalation or not (services/core/escalation-policy.ts). */
export type EscalationBasisKind =
  | 'manual'
  | 'hard_rule'
  | 'confident_score'
  | 'below_confidence'
  | 'uncorroborated'
  | 'warmup'
  | 'escalation'
  | 'task_tree';

/**
 * Whether a revocation counts toward escalating its agent, and the scope its task named: the end user
 * (`enduser.id`) and the conversation (`gen_ai.conversation.id`, else `session.id`) as the task's spans claimed
 * them (each at most 128 characters). Claims only ever narrow an escalation (see docs/kill-switch.md).
 */
export interface EscalationBasis {
  counts: boolean;
  basis: EscalationBasisKind;
  endUser?: string;
  conversation?: string;
}
