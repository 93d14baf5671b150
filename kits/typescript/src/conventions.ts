/**
 * The span attributes an agent writes under Tripline's conventions (the prose contract is
 * `schemas/conventions.md` in Tripline's repository): what this kit emits, and what an agent adds through a
 * call's `attributes`. OpenTelemetry semantic conventions where they exist (GenAI, database, URL, server, MCP),
 * the `tripline.` namespace for the rest.
 *
 * This file is the one definition: Tripline's server builds its own attribute table (`schemas/conventions.ts`)
 * on these names and adds the ones other instrumentations write, so what the kit emits and what the server reads
 * cannot drift apart. It imports nothing.
 */
export const AGENT_ATTR = {
  taskId: 'tripline.task.id',
  taskType: 'tripline.task.type',
  eventKind: 'tripline.event.kind',
  /** Set to true on the span that stands for the whole task (optional: a root span carrying the task id also counts). */
  taskRoot: 'tripline.task.root',
  /**
   * The task this task was started inside (a sub-agent's task names its orchestrator's): a claim used only to link
   * the two (schemas/conventions.md, "Task trees").
   */
  taskParentId: 'tripline.task.parent_id',
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
  /** The tool's result as the framework serialised it (GenAI conventions 1.37 and later; the Vercel AI SDK, pydantic-ai 3+). */
  toolCallResult: 'gen_ai.tool.call.result',
  toolType: 'gen_ai.tool.type',
  errorType: 'error.type',
  toolSideEffect: 'tripline.tool.side_effect',
  toolTarget: 'tripline.tool.target',

  // MCP
  mcpMethod: 'mcp.method.name',
  mcpToolName: 'mcp.tool.name',

  // Data access (OTel database, URL, file)
  dbSystem: 'db.system.name',
  dbNamespace: 'db.namespace',
  dbCollection: 'db.collection.name',
  dbOperation: 'db.operation.name',
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

/** The event the kit adds to a task's span when the guard refused one of its operations (the operation never ran). */
export const REFUSAL_EVENT = {
  name: 'tripline.operation_refused',
  operation: 'tripline.operation',
  revocationId: 'tripline.revocation.id',
  reason: 'tripline.revocation.reason',
} as const;

export const TOOL_SIDE_EFFECTS = ['read', 'write', 'destructive'] as const;
export type ToolSideEffect = (typeof TOOL_SIDE_EFFECTS)[number];

export const DATA_CLASSIFICATIONS = ['public', 'internal', 'confidential', 'restricted'] as const;
export type DataClassification = (typeof DATA_CLASSIFICATIONS)[number];

export const PRIVILEGE_ACTIONS = ['grant', 'revoke', 'elevate', 'assume_role', 'token_issue'] as const;
export type PrivilegeAction = (typeof PRIVILEGE_ACTIONS)[number];
