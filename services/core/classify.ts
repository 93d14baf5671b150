/**
 * Classification: which of the three kinds a span is, and the event Tripline scores from it.
 * Pure: takes a decoded OTLP request, returns values.
 *
 * Precedence, first match wins:
 * 1. an explicit `tripline.event.kind` attribute;
 * 2. privilege change: a `tripline.privilege.action` attribute;
 * 3. tool call: OTel GenAI `execute_tool`, MCP `tools/call`, OpenInference `TOOL`, OpenLLMetry `tool`; not Google
 *    ADK's summary of parallel calls (`execute_tool (merged)`, `gen_ai.tool.name` `(merged tools)`), whose calls
 *    have spans of their own;
 * 4. data access: database client spans (current and older conventions), MCP `resources/read`, GenAI
 *    `retrieval`, OpenInference `RETRIEVER`, or `tripline.data.*`;
 * otherwise the span is not an event. A span that is not an event may be a model call (services/core/model-usage.ts):
 * its tokens and model travel as a model usage. A span that is no event but is its trace's root (no parent, a remote
 * parent, or flagged `tripline.task.root`) marks the end of the trace's task; one that declares a task id or
 * type on its own attributes names the trace's task (`taskMark`). Both travel as task boundaries.
 */
import {
  ATTR,
  DATA_CLASSIFICATIONS,
  MERGED_TOOL_CALLS_NAME,
  MERGED_TOOL_CALLS_SPAN,
  isEventKind,
} from '../../schemas/conventions.ts';
import type { DataClassification, EventKind } from '../../schemas/conventions.ts';
import type {
  AgentEvent,
  AttributeValue,
  DataAccessDetail,
  ModelUsage,
  PrivilegeDetail,
  TaskBoundary,
  TaskClaims,
} from '../../schemas/events.ts';
import type { AgentBinding } from './agent-binding.ts';
import { collectionFromQuery } from './arguments.ts';
import { LayeredAttributes, hostOf, isOneOf, numberAttr, stringAttr, stringListAttr } from './attribute-values.ts';
import type { Attributes } from './attribute-values.ts';
import { DEFAULT_COUNTERPARTY_KEY } from './counterparties.ts';
import { modelOperation, modelUsage } from './model-usage.ts';
import type { CounterpartyHashing } from './counterparties.ts';
import { sha256Hex } from './sha256.ts';
import { keepOutsideContent, keptAttributes, recordedToolContent, toolDetail } from './tool-detail.ts';
import type { OtlpAnyValue, OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';

export type { Attributes } from './attribute-values.ts';

export const UNKNOWN_TASK_TYPE = 'unknown';

export interface ClassifyOptions {
  /**
   * The secret of the counterparties' keyed hashes (TRIPLINE_COUNTERPARTY_KEY; services/core/counterparties.ts).
   * @default DEFAULT_COUNTERPARTY_KEY
   */
  counterpartyKey?: string;
  /**
   * Keep tool calls' arguments and results (cut at 512 characters) in the stored event's attributes
   * (TRIPLINE_STORE_TOOL_CONTENT); otherwise each is replaced by `[not stored: N chars]`. @default false
   */
  storeToolContent?: boolean;
}

interface SpanContext {
  tenant: string;
  hashing: CounterpartyHashing;
  storeToolContent: boolean;
  declaredTraces: Set<string>;
}

export interface ClassifiedBatch {
  events: AgentEvent[];
  boundaries: TaskBoundary[];
  /**
   * Model calls (services/core/model-usage.ts): spans of none of the three kinds that used a model. Not events; a
   * model-call span that is also a task boundary is both.
   */
  usages: ModelUsage[];
  /** Model calls that are no task boundary (so events + boundaries + usageOnly + dropped is every span). */
  usageOnly: number;
  /** Spans that are none of the three kinds, no task boundary and no model call: counted, not stored. */
  dropped: number;
  /**
   * The agent binding its events were held to (services/core/agent-binding.ts), set by the gateway: the span
   * records carry it to the processors, which classify the spans again.
   */
  agents?: AgentBinding;
}

/** What becomes of a span: an event, a task boundary (it ends or names its trace's task), or nothing. */
export type TaskMark = 'event' | 'boundary' | 'drop';

/**
 * The one rule for what a span is, shared with the gateway's byte router (services/otlp/route.ts).
 * `root`: the span is its trace's root here (no parent, a remote parent, or flagged `tripline.task.root`);
 * `declares`: its own attributes (not its resource's, which every span of the resource carries) hold a task id
 * or type.
 */
export function taskMark(isEvent: boolean, root: boolean, declares: boolean): TaskMark {
  if (isEvent) return 'event';
  return root || declares ? 'boundary' : 'drop';
}

/**
 * Which boundaries of one request go on: a root always (if it names a task: a task id, or a trace id); a span that
 * only declares, once per trace and request (agent kits stamp the task id on every span; one declaration says it).
 */
export function keepBoundary(root: boolean, traceId: string, hasTaskId: boolean, declaredTraces: Set<string>): boolean {
  if (traceId === '' && !hasTaskId) return false;
  if (root) return true;
  if (declaredTraces.has(traceId)) return false;
  declaredTraces.add(traceId);
  return true;
}

/** OTLP span flags: bit 8 says whether the parent's remoteness is known, bit 9 that the parent is remote. */
export const SPAN_FLAGS_PARENT_IS_REMOTE = 0x300;

/** Whether a span is its trace's root as far as this agent is concerned (see `taskMark`). */
export function isRootSpan(parentSpanId: string, flags: number | undefined, taskRootFlag: unknown): boolean {
  if (taskRootFlag === true || taskRootFlag === 'true') return true;
  return parentSpanId === '' || ((flags ?? 0) & SPAN_FLAGS_PARENT_IS_REMOTE) === SPAN_FLAGS_PARENT_IS_REMOTE;
}

export function classifyRequest(
  request: OtlpTraceRequest,
  tenant: string,
  options: ClassifyOptions = {},
): ClassifiedBatch {
  const batch: ClassifiedBatch = { events: [], boundaries: [], usages: [], usageOnly: 0, dropped: 0 };
  const context: SpanContext = {
    tenant,
    hashing: { secret: options.counterpartyKey ?? DEFAULT_COUNTERPARTY_KEY, tenant },
    storeToolContent: options.storeToolContent ?? false,
    declaredTraces: new Set<string>(),
  };
  for (const resourceSpans of request.resourceSpans) {
    const resourceAttributes = toMap(resourceSpans.resource?.attributes ?? []);
    for (const scopeSpans of resourceSpans.scopeSpans) {
      for (const span of scopeSpans.spans) {
        classifySpanInto(batch, span, resourceAttributes, context);
      }
    }
  }
  return batch;
}

/** The kind of one span, or null when it is none of the three. */
export function kindOf(span: Pick<OtlpSpan, 'name'>, attributes: Attributes): EventKind | null {
  const explicit = attributes.get(ATTR.eventKind);
  if (isEventKind(explicit)) return explicit;
  if (attributes.has(ATTR.privilegeAction)) return 'privilege_change';
  if (isToolSpan(span.name, attributes)) return 'tool_call';
  if (isDataSpan(span.name, attributes)) return 'data_access';
  return null;
}

function classifySpanInto(
  batch: ClassifiedBatch,
  span: OtlpSpan,
  resource: ReadonlyMap<string, AttributeValue | readonly AttributeValue[]>,
  spanContext: SpanContext,
): void {
  const { tenant, declaredTraces } = spanContext;
  const attributes = mergeAttributes(resource, span.attributes);
  const kind = kindOf(span, attributes);
  const context = taskContext(span, attributes);
  const root = isRootSpan(span.parentSpanId, span.flags, attributes.get(ATTR.taskRoot));
  const mark = taskMark(kind !== null, root, declaresTask(span.attributes));
  const operation = kind === null ? modelOperation(attributes, span.name) : null;
  if (operation !== null) {
    batch.usages.push(
      modelUsage(operation, attributes, {
        tenant,
        ...context.ids,
        claims: context.claims,
        traceId: span.traceId,
        spanId: span.spanId,
        startMs: nanosToMs(span.startTimeUnixNano),
        endMs: nanosToMs(span.endTimeUnixNano),
      }),
    );
  }
  if (
    mark === 'drop' ||
    (mark === 'boundary' && !keepBoundary(root, span.traceId, context.claims.taskId !== undefined, declaredTraces))
  ) {
    if (operation === null) batch.dropped += 1;
    else batch.usageOnly += 1;
  } else if (kind === null) {
    batch.boundaries.push({
      tenant,
      ...context.ids,
      claims: context.claims,
      ends: root,
      traceId: span.traceId,
      spanId: span.spanId,
      startMs: nanosToMs(span.startTimeUnixNano),
      endMs: nanosToMs(span.endTimeUnixNano),
      error: span.status?.code === 2,
    });
  } else {
    batch.events.push(toEvent(kind, span, attributes, spanContext, context));
  }
}

/**
 * Whether the span's own attributes (not its resource's) declare a task id or type. A repeated key counts with
 * its last value that classification reads at all (`toMap` keeps the previous one over a map or bytes value).
 */
function declaresTask(own: readonly OtlpKeyValue[]): boolean {
  let id: OtlpAnyValue | undefined;
  let type: OtlpAnyValue | undefined;
  for (const { key, value } of own) {
    if ((key !== ATTR.taskId && key !== ATTR.taskType) || value === undefined || scalarOrList(value) === undefined)
      continue;
    if (key === ATTR.taskId) id = value;
    else type = value;
  }
  return holdsScalar(id) || holdsScalar(type);
}

function holdsScalar(value: OtlpAnyValue | undefined): boolean {
  const scalar = value === undefined ? undefined : scalarOf(value);
  return scalar !== undefined && scalar !== '';
}

interface TaskIds {
  taskId: string;
  taskType: string;
  agentId: string;
}

/** The longest task id the API's routes take as a path parameter. */
export const MAX_TASK_ID_LENGTH = 256;

/**
 * A task id every route can address. Ids longer than MAX_TASK_ID_LENGTH, the empty id, and `.` / `..` (dot
 * segments, which clients and routers resolve away, even percent-encoded) become `tid-` and 32 hex digits of
 * their SHA-256: no agent can choose a task id that an operator cannot kill by hand.
 */
export function addressableTaskId(taskId: string): string {
  if (taskId.length >= 1 && taskId.length <= MAX_TASK_ID_LENGTH && taskId !== '.' && taskId !== '..') return taskId;
  return `tid-${sha256Hex(taskId).slice(0, 32)}`;
}

/** The longest agent id or task type kept as a span says it (they key baselines, escalations, trace memory). */
export const MAX_NAME_LENGTH = 256;

/**
 * An agent id or task type as a key: one longer than MAX_NAME_LENGTH keeps its first 200 characters, then `~` and
 * 32 hex digits of its SHA-256 (distinct long names stay distinct; no name costs more than 233 characters).
 */
export function boundedName(name: string): string {
  return name.length <= MAX_NAME_LENGTH ? name : `${name.slice(0, 200)}~${sha256Hex(name).slice(0, 32)}`;
}

function boundedAttr(attributes: Attributes, key: string): string | undefined {
  const value = stringAttr(attributes, key);
  return value === undefined ? undefined : boundedName(value);
}

function taskContext(span: OtlpSpan, attributes: Attributes): { ids: TaskIds; claims: TaskClaims } {
  const taskId = stringAttr(attributes, ATTR.taskId);
  const taskType = boundedAttr(attributes, ATTR.taskType);
  const agent = boundedAttr(attributes, ATTR.agentId) ?? boundedAttr(attributes, ATTR.agentName);
  const claims: TaskClaims = {};
  if (taskId !== undefined) claims.taskId = addressableTaskId(taskId);
  if (taskType !== undefined) claims.taskType = taskType;
  if (agent !== undefined) claims.agentId = agent;
  const parent = stringAttr(attributes, ATTR.taskParentId);
  if (parent !== undefined) claims.parentTaskId = addressableTaskId(parent);
  return {
    claims,
    ids: {
      // Without an explicit task id, a trace is the best available stand-in for a task.
      taskId: claims.taskId ?? span.traceId,
      taskType: taskType ?? UNKNOWN_TASK_TYPE,
      agentId: agent ?? boundedAttr(attributes, ATTR.serviceName) ?? 'unknown',
    },
  };
}

function isToolSpan(name: string, attributes: Attributes): boolean {
  if (name === MERGED_TOOL_CALLS_SPAN && attributes.get(ATTR.toolName) === MERGED_TOOL_CALLS_NAME) return false;
  if (attributes.get(ATTR.genAiOperation) === 'execute_tool') return true;
  const mcpMethod = attributes.get(ATTR.mcpMethod) ?? attributes.get(ATTR.rpcMethod);
  if (mcpMethod === 'tools/call') return true;
  const openInference = attributes.get(ATTR.openInferenceKind);
  if (typeof openInference === 'string' && openInference.toUpperCase() === 'TOOL') return true;
  const traceloop = attributes.get(ATTR.traceloopKind);
  if (typeof traceloop === 'string' && traceloop.toLowerCase() === 'tool') return true;
  return name.startsWith('execute_tool ') || name.startsWith('tools/call ');
}

/** GenAI operations that read data: a retrieval from a vector store or an index. */
const DATA_OPERATIONS = new Set(['retrieval']);

function isDataSpan(name: string, attributes: Attributes): boolean {
  if (
    attributes.has(ATTR.dbSystem) ||
    attributes.has(ATTR.dbSystemLegacy) ||
    attributes.has(ATTR.dbCollection) ||
    attributes.has(ATTR.dataResource) ||
    attributes.has(ATTR.dataBytes)
  ) {
    return true;
  }
  const operation = attributes.get(ATTR.genAiOperation);
  if (typeof operation === 'string' && DATA_OPERATIONS.has(operation)) return true;
  const mcpMethod = attributes.get(ATTR.mcpMethod) ?? attributes.get(ATTR.rpcMethod);
  if (mcpMethod === 'resources/read') return true;
  const openInference = attributes.get(ATTR.openInferenceKind);
  if (typeof openInference === 'string' && openInference.toUpperCase() === 'RETRIEVER') return true;
  return name.startsWith('resources/read ');
}

function toEvent(
  kind: EventKind,
  span: OtlpSpan,
  attributes: Attributes,
  { tenant, hashing, storeToolContent }: SpanContext,
  { ids, claims }: { ids: TaskIds; claims: TaskClaims },
): AgentEvent {
  const error = span.status?.code === 2 || attributes.has(ATTR.errorType);
  const event: AgentEvent = {
    id: `${span.traceId}${span.spanId}`,
    tenant,
    kind,
    ...ids,
    claims,
    traceId: span.traceId,
    spanId: span.spanId,
    parentSpanId: span.parentSpanId,
    name: span.name,
    startMs: nanosToMs(span.startTimeUnixNano),
    endMs: nanosToMs(span.endTimeUnixNano),
    error,
    attributes: keptAttributes(attributes, storeToolContent),
  };
  const errorType = stringAttr(attributes, ATTR.errorType);
  if (errorType !== undefined) event.errorType = errorType;
  if (kind === 'tool_call') {
    const content = recordedToolContent(attributes, span.events);
    event.tool = toolDetail(span.name, attributes, hashing, content);
    keepOutsideContent(event.attributes, content.outside, storeToolContent);
  } else if (kind === 'data_access') event.data = dataDetail(span.name, attributes);
  else event.privilege = privilegeDetail(attributes);
  return event;
}

function dataDetail(spanName: string, attributes: Attributes): DataAccessDetail {
  const url = stringAttr(attributes, ATTR.urlFull) ?? stringAttr(attributes, ATTR.mcpResourceUri);
  const host = stringAttr(attributes, ATTR.serverAddress) ?? hostOf(url);
  const detail: DataAccessDetail = { resource: dataResource(spanName, attributes, url) };
  const system = stringAttr(attributes, ATTR.dbSystem) ?? stringAttr(attributes, ATTR.dbSystemLegacy);
  if (system !== undefined) detail.system = system;
  const operation =
    stringAttr(attributes, ATTR.dbOperation) ??
    stringAttr(attributes, ATTR.dbOperationLegacy) ??
    queryOperation(queryText(attributes));
  if (operation !== undefined) detail.operation = operation;
  const rows = numberAttr(attributes, ATTR.dbReturnedRows);
  if (rows !== undefined) detail.rows = rows;
  const bytes = numberAttr(attributes, ATTR.dataBytes);
  if (bytes !== undefined) detail.bytes = bytes;
  const classification = stringAttr(attributes, ATTR.dataClassification);
  if (isOneOf<DataClassification>(classification, DATA_CLASSIFICATIONS)) detail.classification = classification;
  if (host !== undefined) detail.host = host;
  return detail;
}

function queryText(attributes: Attributes): string | undefined {
  return stringAttr(attributes, ATTR.dbQueryText) ?? stringAttr(attributes, ATTR.dbStatementLegacy);
}

/** The statement's first keyword (`SELECT`, `INSERT`…), as older instrumentations leave the operation out. */
function queryOperation(query: string | undefined): string | undefined {
  const match = query === undefined ? null : /^\s*([a-z]+)/i.exec(query);
  return match?.[1]?.toUpperCase();
}

function dataResource(spanName: string, attributes: Attributes, url: string | undefined): string {
  const explicit = stringAttr(attributes, ATTR.dataResource);
  if (explicit !== undefined) return explicit;
  const namespace = stringAttr(attributes, ATTR.dbNamespace) ?? stringAttr(attributes, ATTR.dbNameLegacy);
  const collection =
    stringAttr(attributes, ATTR.dbCollection) ??
    stringAttr(attributes, ATTR.dbTableLegacy) ??
    stringAttr(attributes, ATTR.dbMongoCollectionLegacy) ??
    collectionFromQuery(queryText(attributes));
  if (collection !== undefined) return namespace === undefined ? collection : `${namespace}.${collection}`;
  if (url !== undefined) return stripQuery(url);
  const file = stringAttr(attributes, ATTR.filePath);
  if (file !== undefined) return file;
  const source = stringAttr(attributes, ATTR.genAiDataSource);
  if (source !== undefined) return source;
  return (
    namespace ??
    stringAttr(attributes, ATTR.dbQuerySummary) ??
    (attributes.has(ATTR.openInferenceKind) ? spanName : 'unknown')
  );
}

function privilegeDetail(attributes: Attributes): PrivilegeDetail {
  const detail: PrivilegeDetail = {
    action: stringAttr(attributes, ATTR.privilegeAction) ?? 'unknown',
    scopesBefore: stringListAttr(attributes, ATTR.privilegeScopesBefore),
    scopesAfter: stringListAttr(attributes, ATTR.privilegeScopesAfter),
  };
  const resource = stringAttr(attributes, ATTR.privilegeResource);
  if (resource !== undefined) detail.resource = resource;
  const grantedBy = stringAttr(attributes, ATTR.privilegeGrantedBy);
  if (grantedBy !== undefined) detail.grantedBy = grantedBy;
  const approved = attributes.get(ATTR.privilegeApproved);
  if (typeof approved === 'boolean') detail.approved = approved;
  else if (approved === 'true' || approved === 'false') detail.approved = approved === 'true';
  return detail;
}

export function toMap(keyValues: readonly OtlpKeyValue[]): Map<string, AttributeValue | AttributeValue[]> {
  const map = new Map<string, AttributeValue | AttributeValue[]>();
  for (const { key, value } of keyValues) {
    const converted = value === undefined ? undefined : scalarOrList(value);
    if (converted !== undefined) map.set(key, converted);
  }
  return map;
}

/** The span's attributes over its resource's (LayeredAttributes), without copying either. */
function mergeAttributes(
  resource: ReadonlyMap<string, AttributeValue | readonly AttributeValue[]>,
  own: readonly OtlpKeyValue[],
): Attributes {
  if (own.length === 0) return resource;
  const span = toMap(own);
  if (resource.size === 0) return span;
  return new LayeredAttributes(resource, span);
}

function scalarOrList(value: OtlpAnyValue): AttributeValue | AttributeValue[] | undefined {
  const scalar = scalarOf(value);
  if (scalar !== undefined) return scalar;
  if (value.arrayValue !== undefined) {
    const list: AttributeValue[] = [];
    for (const item of value.arrayValue.values) {
      const itemScalar = scalarOf(item);
      if (itemScalar !== undefined) list.push(itemScalar);
    }
    return list;
  }
  return undefined;
}

function scalarOf(value: OtlpAnyValue): AttributeValue | undefined {
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return typeof value.intValue === 'number' ? value.intValue : Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  return undefined;
}

function stripQuery(url: string): string {
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : url.slice(0, cut);
}

/** Nanoseconds since the epoch (decimal string) to milliseconds, keeping microseconds. */
export function nanosToMs(nanos: string): number {
  if (nanos.length <= 6) return Number(nanos) / 1e6;
  // Plain digits read by hand (no substring to parse): exact, as Number's reading is, while the microseconds stay
  // within 2^53 (today's are about 2^51). Anything else (longer, or not plain digits) takes Number's reading.
  const digits = nanos.length - 3;
  if (digits <= 16) {
    let micros = 0;
    for (let i = 0; i < digits; i += 1) {
      const digit = nanos.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) return Number(nanos.slice(0, -3)) / 1000;
      micros = micros * 10 + digit;
    }
    if (micros <= Number.MAX_SAFE_INTEGER) return micros / 1000;
  }
  return Number(nanos.slice(0, -3)) / 1000;
}
