/**
 * Span conventions Tripline reads. OpenTelemetry semantic conventions are reused where they exist
 * (GenAI, database, URL, server); the `tripline.` namespace covers the rest.
 * The prose version of this contract is `schemas/conventions.md`; keep the two in step.
 */

import { AGENT_ATTR } from '../kits/typescript/src/conventions.ts';

export { DATA_CLASSIFICATIONS, PRIVILEGE_ACTIONS, TOOL_SIDE_EFFECTS } from '../kits/typescript/src/conventions.ts';
export type { DataClassification, PrivilegeAction, ToolSideEffect } from '../kits/typescript/src/conventions.ts';

/** The three kinds of events Tripline scores. */
export const EVENT_KINDS = ['tool_call', 'data_access', 'privilege_change'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export function isEventKind(value: unknown): value is EventKind {
  return typeof value === 'string' && (EVENT_KINDS as readonly string[]).includes(value);
}

/**
 * Every attribute name Tripline reads. The names an agent writes (identity and task context, on the span, its
 * resource, or propagated as baggage; tool calls, data access, privilege changes) are the agent kit's
 * (`kits/typescript/src/conventions.ts`, published as `@tripline/agent/conventions`), so the kit and the server
 * share one definition; the rest are what other instrumentations write.
 */
export const ATTR = {
  ...AGENT_ATTR,

  /** The same as `toolCallArguments`, as pydantic-ai / Logfire recorded it before the GenAI attribute existed. */
  toolArgumentsLegacy: 'tool_arguments',
  /** The same as `toolCallResult`, as pydantic-ai recorded it with its instrumentation version 2 (`tool_arguments` beside it). */
  toolResponseLegacy: 'tool_response',
  /** The same as `toolCallArguments` (JSON text), as Google ADK records it under its legacy span schema. */
  adkToolCallArgs: 'gcp.vertex.agent.tool_call_args',
  /** The same as `toolCallResult` (JSON text), as Google ADK records it under its legacy span schema. */
  adkToolResponse: 'gcp.vertex.agent.tool_response',
  /** Where a GenAI `retrieval` reads from (a vector store, an index). */
  genAiDataSource: 'gen_ai.data_source.id',
  /**
   * GenAI structured message lists (JSON `[{role, parts}]`), as span attributes or span-event attributes: a tool
   * span's `tool_call` part holds its arguments, its `tool_call_response` part its result
   * (services/core/tool-event-content.ts).
   */
  genAiInputMessages: 'gen_ai.input.messages',
  genAiOutputMessages: 'gen_ai.output.messages',

  // MCP
  /** Older MCP instrumentations put the method on `rpc.method`. */
  rpcMethod: 'rpc.method',
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

  // Model calls (services/core/model-usage.ts): GenAI current and older names, OpenLLMetry, OpenInference
  genAiUsageInput: 'gen_ai.usage.input_tokens',
  genAiUsageOutput: 'gen_ai.usage.output_tokens',
  /** Older GenAI conventions (and OpenLLMetry before 0.40). */
  genAiUsagePromptLegacy: 'gen_ai.usage.prompt_tokens',
  genAiUsageCompletionLegacy: 'gen_ai.usage.completion_tokens',
  genAiRequestModel: 'gen_ai.request.model',
  genAiResponseModel: 'gen_ai.response.model',
  genAiProvider: 'gen_ai.provider.name',
  /** Older name of `gen_ai.provider.name`. */
  genAiSystem: 'gen_ai.system',
  /** OpenLLMetry: `chat`, `completion`, `embedding`, `rerank`. */
  llmRequestType: 'llm.request.type',
  llmUsagePrompt: 'llm.usage.prompt_tokens',
  llmUsageCompletion: 'llm.usage.completion_tokens',
  /** OpenInference. */
  llmTokenCountPrompt: 'llm.token_count.prompt',
  llmTokenCountCompletion: 'llm.token_count.completion',
  llmModelName: 'llm.model_name',
  llmProvider: 'llm.provider',

  // Data access: other names for the database attributes
  /** Deprecated name still emitted by many instrumentations. */
  dbSystemLegacy: 'db.system',
  dbQuerySummary: 'db.query.summary',
  dbQueryText: 'db.query.text',
  /** Older database conventions: the statement, the database name, the table and the operation. */
  dbStatementLegacy: 'db.statement',
  dbNameLegacy: 'db.name',
  dbTableLegacy: 'db.sql.table',
  dbOperationLegacy: 'db.operation',
  dbMongoCollectionLegacy: 'db.mongodb.collection',
} as const;

/** Where frameworks record a tool call's arguments, in the order classification prefers them. */
export const TOOL_ARGUMENT_ATTRIBUTES = [
  ATTR.toolCallArguments,
  ATTR.toolArgumentsLegacy,
  ATTR.openInferenceInput,
  ATTR.traceloopEntityInput,
  ATTR.adkToolCallArgs,
] as const;

/** Where frameworks record a tool call's result, in the order classification prefers them. */
export const TOOL_RESULT_ATTRIBUTES = [
  ATTR.toolCallResult,
  ATTR.toolResponseLegacy,
  ATTR.openInferenceOutput,
  ATTR.traceloopEntityOutput,
  ATTR.adkToolResponse,
] as const;

/**
 * Google ADK's summary of parallel function calls (one model turn asking for several): a span of this name and
 * `gen_ai.tool.name`, added after the calls' own `execute_tool <tool>` spans, beside them. It is no tool call. Both
 * are needed: a call of a tool the model named `(merged tools)` is a span `execute_tool (merged tools)` (ADK names
 * each call's span after its tool), and stays a tool call.
 */
export const MERGED_TOOL_CALLS_SPAN = 'execute_tool (merged)';
export const MERGED_TOOL_CALLS_NAME = '(merged tools)';

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

/**
 * The span events of the older GenAI event conventions that hold a tool span's content (Strands Agents records
 * them by default), read when the span's attributes hold none (services/core/tool-event-content.ts): the event, its
 * attribute, and the key a stored event keeps the content under (the marker `[not stored: N chars]` unless tool
 * content is stored).
 */
export const TOOL_CONTENT_EVENTS = {
  arguments: { event: 'gen_ai.tool.message', attribute: 'content', key: 'gen_ai.tool.message.content' },
  result: { event: 'gen_ai.choice', attribute: 'message', key: 'gen_ai.choice.message' },
} as const;
