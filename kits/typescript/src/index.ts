/**
 * Tripline's agent helpers: instrument an agent with OpenTelemetry in one call, emit the three kinds of spans
 * with Tripline's conventions, and stop the agent the moment Tripline revokes its task.
 *
 *   const telemetry = startTelemetry({
 *     endpoint: 'http://localhost:4318',      // OTLP/HTTP
 *     apiUrl: 'http://localhost:8080',        // Tripline's API: revocations are pushed to the guard
 *     credentials: true,                      // ask for a task token (POST /v1/tasks) at each task's start
 *     token: process.env.TRIPLINE_AGENT_TOKEN, // the agent token: OTLP export and the API
 *     agentId: 'support-bot-1',
 *   });
 *   await telemetry.task('summarize_ticket', async (task) => {
 *     const ticket = await task.toolCall('get_ticket', { sideEffect: 'read' }, () => api.getTicket(id, task.token));
 *     await task.dataAccess({ system: 'postgresql', namespace: 'helpdesk', collection: 'tickets', rows: 3 }, () => db.query(...));
 *   }, { tools: ['get_ticket'], resources: ['helpdesk.tickets'], scopes: ['tickets:read'] });
 *   await telemetry.shutdown();
 *
 * Once Tripline revokes the task, its next `toolCall` / `dataAccess` / `privilegeChange` throws
 * `TaskRevokedError` without running the work (the guard holds one server-sent-events connection; no request
 * per call), and the guard acknowledges the revocation so Tripline can verify the kill. A task the policy does
 * not allow throws `TaskDeniedError` before it starts. `guardMcpClient` (`@tripline/agent/mcp`, ./mcp.ts) does the
 * same for an MCP client.
 */
import { randomUUID } from 'node:crypto';
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import type { SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import { AGENT_ATTR as ATTR, REFUSAL_EVENT } from './conventions.ts';
import type { DataClassification, PrivilegeAction, ToolSideEffect } from './conventions.ts';
import { TaskDeniedError, TaskRevokedError, TriplineUnavailableError } from './errors.ts';
import { startGuard } from './guard.ts';
import type { Guard, GuardOptions } from './guard.ts';
import { KIT_VERSION, USER_AGENT } from './version.ts';

export { TaskDeniedError, TaskRevokedError, TriplineUnavailableError } from './errors.ts';
export type { RevocationNotice } from './errors.ts';
export type { Guard, GuardOptions, GuardScope } from './guard.ts';
export { CONTRACT_VERSION, KIT_VERSION } from './version.ts';
export type { DataClassification, PrivilegeAction, ToolSideEffect } from './conventions.ts';

export interface TelemetryOptions {
  /** Tripline's (or a collector's) OTLP/HTTP base URL, e.g. `http://localhost:4318`. */
  endpoint: string;
  agentId: string;
  agentName?: string;
  serviceName?: string;
  /**
   * Tripline's agent token (`Authorization: Bearer`), sent with every OTLP export and API request; the tenant
   * of the spans comes from it. Unset: the headers must carry one (Tripline answers 401 without).
   */
  token?: string;
  /** Extra OTLP headers. */
  headers?: Record<string, string>;
  /** How long the batch processor waits before exporting (ms). */
  exportDelayMs?: number;
  /** Export spans with this exporter instead of OTLP/HTTP to `endpoint` (a collector's, a test's). */
  exporter?: SpanExporter;
  /**
   * Tripline's API base URL, e.g. `http://localhost:8080`. Set: the guard subscribes to the agent's revocations
   * (server-sent events) and refuses the next operation of a revoked task.
   */
  apiUrl?: string;
  /** Extra headers for API requests. */
  apiHeaders?: Record<string, string>;
  /** The guard (needs `apiUrl`): false turns it off. @default true when apiUrl is set */
  guard?:
    boolean | (Pick<GuardOptions, 'whileDisconnected' | 'onError' | 'onRevocation'> & { readyTimeoutMs?: number });
  /** Ask Tripline for a task token (POST /v1/tasks, after its policy check) at the start of each task (needs `apiUrl`). @default false */
  credentials?: boolean;
}

/** What a task asks for when `credentials` is on (the policy decides; the token carries them). */
export interface TaskRequest {
  tools?: string[];
  resources?: string[];
  scopes?: string[];
  ttlSeconds?: number;
}

export interface SecretLease {
  leaseId: string;
  secret: string;
  value: string;
  expiresAt: string;
}

export interface ToolCallOptions {
  sideEffect?: ToolSideEffect;
  target?: string;
  type?: string;
  attributes?: Attributes;
}

export interface DataAccessOptions {
  system?: string;
  namespace?: string;
  collection?: string;
  operation?: string;
  /** For data outside a database. */
  url?: string;
  file?: string;
  rows?: number;
  bytes?: number;
  classification?: DataClassification;
  serverAddress?: string;
  attributes?: Attributes;
}

export interface PrivilegeChangeOptions {
  action: PrivilegeAction | (string & {});
  scopesBefore?: string[];
  scopesAfter: string[];
  resource?: string;
  grantedBy?: string;
  approved?: boolean;
  attributes?: Attributes;
}

/** Timing for simulated agents: explicit start and end times instead of the wall clock. */
export interface SpanTiming {
  startTime?: number;
  endTime?: number;
}

export interface TaskHandle {
  readonly taskId: string;
  readonly taskType: string;
  /** The task's bearer token (with `credentials`), for the tools and services the task calls. */
  readonly token: string | undefined;
  /** True once Tripline revoked the task (the next operation throws TaskRevokedError). */
  revoked(): boolean;
  /** Lease a named secret for this task's lifetime (needs the task token). */
  lease(secret: string, ttlSeconds?: number): Promise<SecretLease>;
  toolCall<T>(name: string, options: ToolCallOptions, work: () => Promise<T> | T, timing?: SpanTiming): Promise<T>;
  dataAccess<T>(options: DataAccessOptions, work: () => Promise<T> | T, timing?: SpanTiming): Promise<T>;
  privilegeChange<T>(options: PrivilegeChangeOptions, work: () => Promise<T> | T, timing?: SpanTiming): Promise<T>;
}

export interface Telemetry {
  readonly agentId: string;
  /** The revocation guard (when `apiUrl` is set and the guard is on). */
  readonly guard: Guard | undefined;
  /**
   * Run `work` as one task: a task span carrying `tripline.task.id` that ends when `work` settles. With
   * `credentials`, a token is asked for first; a denial throws TaskDeniedError and nothing runs.
   */
  task<T>(
    taskType: string,
    work: (task: TaskHandle) => Promise<T>,
    options?: { taskId?: string; timing?: SpanTiming } & TaskRequest,
  ): Promise<T>;
  /** A handle for a task whose span has already ended or is owned elsewhere (its events still carry the task id). */
  detachedTask(taskType: string, taskId: string, token?: string): TaskHandle;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

interface ApiClient {
  base: string;
  headers: Record<string, string>;
}

export function startTelemetry(options: TelemetryOptions): Telemetry {
  const authorization: Record<string, string> =
    options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
  const exporter =
    options.exporter ??
    new OTLPTraceExporter({
      url: `${options.endpoint.replace(/\/$/, '')}/v1/traces`,
      headers: { ...authorization, ...options.headers },
    });
  const processor = new BatchSpanProcessor({
    exporter,
    scheduledDelayMillis: options.exportDelayMs ?? 200,
    maxQueueSize: 8192,
  });
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR.serviceName]: options.serviceName ?? options.agentId,
      [ATTR.agentId]: options.agentId,
      [ATTR.agentName]: options.agentName ?? options.agentId,
    }),
    spanProcessors: [processor],
    instrumentations: [],
  });
  sdk.start();
  // This SDK's own provider, not the global one: several agents in one process (tests, a multi-agent host)
  // each export with their own resource. The global provider is the fallback.
  const own = (sdk as unknown as { _tracerProvider?: TracerProvider })._tracerProvider;
  const tracer = own?.getTracer('tripline-agent', KIT_VERSION) ?? trace.getTracer('tripline-agent', KIT_VERSION);
  const api: ApiClient | undefined =
    options.apiUrl === undefined
      ? undefined
      : {
          base: options.apiUrl.replace(/\/$/, ''),
          headers: { 'user-agent': USER_AGENT, ...authorization, ...options.apiHeaders },
        };
  const guardSettings = typeof options.guard === 'object' ? options.guard : {};
  const guard =
    api === undefined || options.guard === false
      ? undefined
      : startGuard({ apiUrl: api.base, agentId: options.agentId, headers: api.headers, ...guardSettings });
  let guardReady: Promise<boolean> | undefined;

  return {
    agentId: options.agentId,
    guard,
    async task(taskType, work, taskOptions = {}) {
      if (guard !== undefined) {
        // The first task waits (bounded) for the stream's snapshot, so no revocation can slip past the guard.
        guardReady ??= guard.ready(guardSettings.readyTimeoutMs ?? 3000);
        await guardReady;
      }
      let taskId = taskOptions.taskId ?? randomUUID();
      let token: string | undefined;
      if (options.credentials === true) {
        if (api === undefined) throw new TypeError('credentials: true needs apiUrl');
        // Without an id of its own the task gets one from Tripline (an id Tripline made up has no history to look up).
        ({ token, taskId } = await requestToken(api, options.agentId, taskType, taskOptions.taskId, taskOptions));
      }
      guard?.track(taskId);
      const span = tracer.startSpan(`task ${taskType}`, {
        root: true,
        attributes: {
          [ATTR.taskId]: taskId,
          [ATTR.taskType]: taskType,
          [ATTR.taskRoot]: true,
          [ATTR.agentId]: options.agentId,
        },
        ...(taskOptions.timing?.startTime === undefined ? {} : { startTime: taskOptions.timing.startTime }),
      });
      const handle = taskHandle(tracer, trace.setSpan(context.active(), span), taskType, taskId, options.agentId, {
        guard,
        api,
        token,
      });
      try {
        const result = await work(handle);
        span.setStatus({ code: SpanStatusCode.OK });
        return result;
      } catch (error) {
        markError(span, error);
        throw error;
      } finally {
        span.end(taskOptions.timing?.endTime);
      }
    },
    detachedTask(taskType, taskId, token) {
      guard?.track(taskId);
      return taskHandle(tracer, context.active(), taskType, taskId, options.agentId, { guard, api, token });
    },
    forceFlush: () => processor.forceFlush(),
    async shutdown() {
      guard?.close();
      await sdk.shutdown();
    },
  };
}

async function requestToken(
  api: ApiClient,
  agentId: string,
  taskType: string,
  taskId: string | undefined,
  request: TaskRequest,
): Promise<{ token: string; taskId: string }> {
  let response: Response;
  try {
    response = await fetch(`${api.base}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...api.headers },
      body: JSON.stringify({
        agentId,
        taskType,
        ...(taskId === undefined ? {} : { taskId }),
        ...(request.tools === undefined ? {} : { tools: request.tools }),
        ...(request.resources === undefined ? {} : { resources: request.resources }),
        ...(request.scopes === undefined ? {} : { scopes: request.scopes }),
        ...(request.ttlSeconds === undefined ? {} : { ttlSeconds: request.ttlSeconds }),
      }),
    });
  } catch (error) {
    throw new TriplineUnavailableError(
      `Tripline's API at ${api.base} cannot be reached to start the task: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const body = (await response.json().catch(() => ({}))) as {
    token?: string;
    taskId?: string;
    error?: { code?: string; message?: string; details?: { policies?: string[]; decisionId?: string } };
  };
  if (response.status === 201 && typeof body.token === 'string' && typeof body.taskId === 'string')
    return { token: body.token, taskId: body.taskId };
  if (response.status === 403 || response.status === 409) {
    throw new TaskDeniedError({
      code: body.error?.code ?? 'POLICY_DENIED',
      message: body.error?.message ?? `Tripline refused to start the ${taskType} task`,
      taskType,
      ...(body.error?.details?.policies === undefined ? {} : { policies: body.error.details.policies }),
      ...(body.error?.details?.decisionId === undefined ? {} : { decisionId: body.error.details.decisionId }),
    });
  }
  throw new TriplineUnavailableError(`POST /v1/tasks answered HTTP ${response.status}: ${body.error?.message ?? ''}`);
}

interface HandleDeps {
  guard: Guard | undefined;
  api: ApiClient | undefined;
  token: string | undefined;
}

function taskHandle(
  tracer: Tracer,
  parent: Context,
  taskType: string,
  taskId: string,
  agentId: string,
  deps: HandleDeps,
): TaskHandle {
  const common: Attributes = { [ATTR.taskId]: taskId, [ATTR.taskType]: taskType, [ATTR.agentId]: agentId };
  const { guard, api, token } = deps;

  async function inSpan<T>(
    name: string,
    attributes: Attributes,
    work: () => Promise<T> | T,
    timing: SpanTiming | undefined,
  ): Promise<T> {
    if (guard !== undefined) {
      try {
        const tool = attributes[ATTR.toolName];
        await guard.enforce(taskId, name, typeof tool === 'string' ? tool : name);
      } catch (error) {
        if (error instanceof TaskRevokedError) {
          // The refused operation never ran: no span for it, an event on the task span instead.
          trace.getSpan(parent)?.addEvent(REFUSAL_EVENT.name, {
            [REFUSAL_EVENT.operation]: name,
            [REFUSAL_EVENT.revocationId]: error.revocationId,
            [REFUSAL_EVENT.reason]: error.reason,
          });
        }
        throw error;
      }
    }
    const span = tracer.startSpan(
      name,
      {
        attributes: { ...common, ...attributes },
        ...(timing?.startTime === undefined ? {} : { startTime: timing.startTime }),
      },
      parent,
    );
    try {
      return await context.with(trace.setSpan(parent, span), work);
    } catch (error) {
      markError(span, error);
      throw error;
    } finally {
      span.end(timing?.endTime);
    }
  }

  return {
    taskId,
    taskType,
    token,
    revoked: () => guard?.revocation(taskId) !== undefined,
    async lease(secret, ttlSeconds) {
      if (api === undefined || token === undefined)
        throw new TypeError('lease() needs apiUrl and credentials: true (the task token)');
      guard?.check(taskId, `lease ${secret}`);
      return requestLease(api, token, guard, taskId, taskType, secret, ttlSeconds);
    },
    toolCall(name, options, work, timing) {
      return inSpan(
        `execute_tool ${name}`,
        compact({
          [ATTR.genAiOperation]: 'execute_tool',
          [ATTR.toolName]: name,
          [ATTR.toolType]: options.type ?? 'function',
          [ATTR.toolSideEffect]: options.sideEffect,
          [ATTR.toolTarget]: options.target,
          [ATTR.toolCallId]: randomUUID(),
          ...options.attributes,
        }),
        work,
        timing,
      );
    },
    dataAccess(options, work, timing) {
      const target = options.collection ?? options.url ?? options.file ?? options.namespace ?? 'data';
      return inSpan(
        `${options.operation ?? 'read'} ${target}`,
        compact({
          [ATTR.dbSystem]:
            options.system ?? (options.url !== undefined || options.file !== undefined ? undefined : 'other_sql'),
          [ATTR.dbNamespace]: options.namespace,
          [ATTR.dbCollection]: options.collection,
          [ATTR.dbOperation]: options.operation,
          [ATTR.dbReturnedRows]: options.rows,
          [ATTR.urlFull]: options.url,
          [ATTR.filePath]: options.file,
          [ATTR.serverAddress]: options.serverAddress,
          [ATTR.dataBytes]: options.bytes,
          [ATTR.dataClassification]: options.classification,
          [ATTR.eventKind]: 'data_access',
          ...options.attributes,
        }),
        work,
        timing,
      );
    },
    privilegeChange(options, work, timing) {
      return inSpan(
        `privilege ${options.action}`,
        compact({
          [ATTR.privilegeAction]: options.action,
          [ATTR.privilegeScopesBefore]: options.scopesBefore ?? [],
          [ATTR.privilegeScopesAfter]: options.scopesAfter,
          [ATTR.privilegeResource]: options.resource,
          [ATTR.privilegeGrantedBy]: options.grantedBy,
          [ATTR.privilegeApproved]: options.approved,
          ...options.attributes,
        }),
        work,
        timing,
      );
    },
  };
}

/** `POST /v1/leases` with the task token; Tripline's refusals become TaskRevokedError / TaskDeniedError. */
async function requestLease(
  api: ApiClient,
  token: string,
  guard: Guard | undefined,
  taskId: string,
  taskType: string,
  secret: string,
  ttlSeconds: number | undefined,
): Promise<SecretLease> {
  const response = await fetch(`${api.base}/v1/leases`, {
    method: 'POST',
    // The task token, not the agent token: a lease belongs to the task.
    headers: { 'content-type': 'application/json', ...api.headers, authorization: `Bearer ${token}` },
    body: JSON.stringify({ secret, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) }),
  });
  const body = (await response.json().catch(() => ({}))) as {
    leaseId?: string;
    value?: string;
    expiresAt?: string;
    error?: { code?: string; message?: string };
  };
  if (response.status === 201 && typeof body.value === 'string' && typeof body.leaseId === 'string') {
    return { leaseId: body.leaseId, secret, value: body.value, expiresAt: body.expiresAt ?? '' };
  }
  if (body.error?.code === 'TASK_REVOKED') {
    throw new TaskRevokedError({
      taskId,
      revocationId: guard?.revocation(taskId)?.id ?? '',
      reason: body.error.message ?? 'revoked',
      operation: `lease ${secret}`,
      revokedAtMs: Date.now(),
    });
  }
  if (response.status === 403)
    throw new TaskDeniedError({
      code: body.error?.code ?? 'POLICY_DENIED',
      message: body.error?.message ?? `lease of ${secret} denied`,
      taskType,
    });
  throw new TriplineUnavailableError(`POST /v1/leases answered HTTP ${response.status}: ${body.error?.message ?? ''}`);
}

function markError(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.setAttribute(ATTR.errorType, error instanceof Error ? error.name : 'error');
}

function compact(attributes: Record<string, Attributes[string]>): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}
