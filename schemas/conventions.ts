/**
 * Span conventions Tripline reads. OpenTelemetry semantic conventions are reused where they exist
 * (GenAI, database, URL, server); the `tripline.` namespace covers the rest.
 * The prose version of this contract is `schemas/conventions.md`; keep the two in step.
 */

/** The three kinds of events Tripline scores. */
export const EVENT_KINDS = ['tool_call', 'data_access', 'privilege_change'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export function isEventKind(value: unknown): value is EventKind {
  return typeof value === 'string' && (EVENT_KINDS as readonly string[]).includes(value);
}

/** Identity and task context, on the span, its resource, or propagated as baggage. */
export const ATTR = {
  taskId: 'tripline.task.id',
  taskType: 'tripline.task.type',
  eventKind: 'tripline.event.kind',
  /** Set to true on the span that stands for the whole task (optional: a root span carrying the task id also counts). */
  taskRoot: 'tripline.task.root',
  agentId: 'gen_ai.agent.id',
  agentName: 'gen_ai.agent.name',
  endUserId: 'enduser.id',
  serviceName: 'service.name',

  // Tool calls (OTel GenAI)
  genAiOperation: 'gen_ai.operation.name',
  toolName: 'gen_ai.tool.name',
  toolCallId: 'gen_ai.tool.call.id',
  /** The tool's arguments as JSON text (GenAI conventions 1.37 and later). */
  toolCallArguments: 'gen_ai.tool.call.arguments',
  /** The same, as pydantic-ai / Logfire recorded it before the GenAI attribute existed. */
  toolArgumentsLegacy: 'tool_arguments',
  /** The tool's result as the framework serialised it (GenAI conventions 1.37 and later; the Vercel AI SDK, pydantic-ai 3+). */
  toolCallResult: 'gen_ai.tool.call.result',
  /** The same, as pydantic-ai recorded it with its instrumentation version 2 (`tool_arguments` beside it). */
  toolResponseLegacy: 'tool_response',
  /** Where a GenAI `retrieval` reads from (a vector store, an index). */
  genAiDataSource: 'gen_ai.data_source.id',
  toolType: 'gen_ai.tool.type',
  errorType: 'error.type',
  toolSideEffect: 'tripline.tool.side_effect',
  toolTarget: 'tripline.tool.target',

  // MCP
  mcpMethod: 'mcp.method.name',
  /** Older MCP instrumentations put the method on `rpc.method`. */
  rpcMethod: 'rpc.method',
  mcpToolName: 'mcp.tool.name',
  /** The resource of an MCP `resources/read`. */
  mcpResourceUri: 'mcp.resource.uri',

  // OpenInference
  openInferenceKind: 'openinference.span.kind',
  openInferenceToolName: 'tool.name',
  /** The span's input (a TOOL span's arguments, as JSON text when the tool took structured input). */
  openInferenceInput: 'input.value',
  /** The span's output (a TOOL span's result). */
  openInferenceOutput: 'output.value',

  // OpenLLMetry (Traceloop)
  traceloopKind: 'traceloop.span.kind',
  traceloopEntityName: 'traceloop.entity.name',
  traceloopEntityInput: 'traceloop.entity.input',
  traceloopEntityOutput: 'traceloop.entity.output',

  // Data access (OTel database, URL, file)
  dbSystem: 'db.system.name',
  /** Deprecated name still emitted by many instrumentations. */
  dbSystemLegacy: 'db.system',
  dbNamespace: 'db.namespace',
  dbCollection: 'db.collection.name',
  dbOperation: 'db.operation.name',
  dbQuerySummary: 'db.query.summary',
  dbQueryText: 'db.query.text',
  /** Older database conventions: the statement, the database name, the table and the operation. */
  dbStatementLegacy: 'db.statement',
  dbNameLegacy: 'db.name',
  dbTableLegacy: 'db.sql.table',
  dbOperationLegacy: 'db.operation',
  dbMongoCollectionLegacy: 'db.mongodb.collection',
  dbReturnedRows: 'db.response.returned_rows',
  serverAddress: 'server.address',
  urlFull: 'url.full',
  filePath: 'file.path',
  dataBytes: 'tripline.data.bytes',
  dataClassification: 'tripline.data.classification',
  dataResource: 'tripline.data.resource',

  // Privilege changes (Tripline's own; OpenTelemetry has no convention)
  privilegeAction: 'tripline.privilege.action',
  privilegeScopesBefore: 'tripline.privilege.scopes_before',
  privilegeScopesAfter: 'tripline.privilege.scopes_after',
  privilegeResource: 'tripline.privilege.resource',
  privilegeGrantedBy: 'tripline.privilege.granted_by',
  privilegeApproved: 'tripline.privilege.approved',
} as const;

/** Where frameworks record a tool call's arguments, in the order classification prefers them. */
export const TOOL_ARGUMENT_ATTRIBUTES = [
  ATTR.toolCallArguments,
  ATTR.toolArgumentsLegacy,
  ATTR.openInferenceInput,
  ATTR.traceloopEntityInput,
] as const;

/** Where frameworks record a tool call's result, in the order classification prefers them. */
export const TOOL_RESULT_ATTRIBUTES = [
  ATTR.toolCallResult,
  ATTR.toolResponseLegacy,
  ATTR.openInferenceOutput,
  ATTR.traceloopEntityOutput,
] as const;

export const TOOL_SIDE_EFFECTS = ['read', 'write', 'destructive'] as const;
export type ToolSideEffect = (typeof TOOL_SIDE_EFFECTS)[number];

export const DATA_CLASSIFICATIONS = ['public', 'internal', 'confidential', 'restricted'] as const;
export type DataClassification = (typeof DATA_CLASSIFICATIONS)[number];

export const PRIVILEGE_ACTIONS = ['grant', 'revoke', 'elevate', 'assume_role', 'token_issue'] as const;
export type PrivilegeAction = (typeof PRIVILEGE_ACTIONS)[number];

/** Kafka topics, one per kind (names configurable; these are the defaults). */
export const DEFAULT_TOPICS = {
  tool_call: 'tripline.tool_calls',
  data_access: 'tripline.data_access',
  privilege_change: 'tripline.privilege_changes',
  alerts: 'tripline.alerts',
  revocations: 'tripline.revocations',
  deadLetter: 'tripline.dead_letter',
} as const;

/** The version of opentelemetry-proto whose field numbers `schemas/otlp/*.proto` follow. */
export const OTLP_PROTO_VERSION = 'v1.11.0';
