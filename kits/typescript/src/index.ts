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
import { TaskRefusedError, TaskRevokedError } from './errors.ts';
import { startGuard } from './guard.ts';
import { requestLease, requestToken } from './api.ts';
import { checkCall } from './approvals.ts';
import type { CallCheckOptions, CallCheckResult } from './approvals.ts';
import type { ApiClient, SecretLease, TaskRequest } from './api.ts';
import type { Guard, GuardOptions } from './guard.ts';
import { KIT_VERSION, USER_AGENT } from './version.ts';
import { currentTaskId, outgoingHeaders, parentTaskOf, withTask } from './task-context.ts';
import type { IncomingHeaders } from './task-context.ts';

export {
  ApprovalDeniedError,
  ApprovalError,
  ApprovalExpiredError,
  ApprovalPendingError,
  ApprovalTimeoutError,
  CallDeniedError,
  TaskDeniedError,
  TaskRefusedError,
  TaskRevokedError,
  TriplineUnavailableError,
} from './errors.ts';
export type { CallCheckOptions, CallCheckResult } from './approvals.ts';
export type { RevocationNotice } from './errors.ts';
export type { Guard, GuardOptions, GuardScope } from './guard.ts';
export { CONTRACT_VERSION, KIT_VERSION } from './version.ts';
export type { SecretLease, TaskRequest } from './api.ts';
export type { DataClassification, PrivilegeAction, ToolSideEffect } from './conventions.ts';
export type { IncomingHeaders } from './task-context.ts';

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

export interface ToolCallOptions {
  sideEffect?: ToolSideEffect;
  target?: string;
  type?: string;
  attributes?: Attributes;
  /**
   * Ask Tripline (`POST /v1/check`, needs `apiUrl`) before the call runs, with its arguments: a denial throws
   * CallDeniedError, an approval point waits for a person or fails fast (docs/approvals.md). Off by default.
   */
  check?: CallCheckOptions;
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

/** Where a task comes from in a tree of tasks (schemas/conventions.md, "Task trees"). */
export interface TaskParentOptions {
  /**
   * The task this one works for. Default: the task current where `task()` is called (one started by this kit in
   * this process), else the task id in the baggage of `incomingHeaders` or of the active context (a caller's
   * task, propagated over HTTP). `null`: none.
   */
  parentTaskId?: string | null;
  /** The headers of the request that started this task (a sub-agent's server): their W3C baggage names the parent. */
  incomingHeaders?: IncomingHeaders;
}

export interface TaskHandle {
  readonly taskId: string;
  readonly taskType: string;
  /** The task this one was started inside, when there is one (`tripline.task.parent_id` on its spans). */
  readonly parentTaskId: string | undefined;
  /**
   * W3C `traceparent` and `baggage` headers for a request this task makes to another agent, carrying this task's
   * id: a task that agent starts with the kit (either language) becomes this task's child. Merge them into the
   * request's headers.
   */
  propagationHeaders(): Record<string, string>;
  /** The task's bearer token (with `credentials`), for the tools and services the task calls. */
  readonly token: string | undefined;
  /** True once Tripline revoked the task (the next operation throws TaskRevokedError). */
  revoked(): boolean;
  /** Lease a named secret for this task's lifetime (needs the task token). */
  lease(secret: string, ttlSeconds?: number): Promise<SecretLease>;
  /**
   * Ask Tripline whether this task may make a call now (`POST /v1/check`); resolves when it may, throws
   * CallDeniedError, TaskRevokedError or an ApprovalError (pending with `onPending: 'fail'`, denied, expired,
   * timed out) when it may not. Waiting for an approval needs the task token (`credentials: true`).
   */
  check(tool: string, options?: CallCheckOptions): Promise<CallCheckResult>;
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
    options?: { taskId?: string; timing?: SpanTiming } & TaskRequest & TaskParentOptions,
  ): Promise<T>;
  /** A handle for a task whose span has already ended or is owned elsewhere (its events still carry the task id). */
  detachedTask(taskType: string, taskId: string, token?: string): TaskHandle;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
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
      const parentTaskId = parentTaskOf(taskId, taskOptions, context.active());
      const span = tracer.startSpan(`task ${taskType}`, {
        root: true,
        attributes: {
          [ATTR.taskId]: taskId,
          [ATTR.taskType]: taskType,
          [ATTR.taskRoot]: true,
          [ATTR.agentId]: options.agentId,
          ...(parentTaskId === undefined ? {} : { [ATTR.taskParentId]: parentTaskId }),
        },
        ...(taskOptions.timing?.startTime === undefined ? {} : { startTime: taskOptions.timing.startTime }),
      });
      // The task is current while `work` runs: a task started inside it is its child, and requests carry it.
      const taskContext = withTask(trace.setSpan(context.active(), span), { taskId, taskType, parentTaskId });
      const handle = taskHandle(tracer, taskContext, taskType, taskId, options.agentId, {
        guard,
        api,
        token,
        parentTaskId,
      });
      try {
        const result = await context.with(taskContext, () => work(handle));
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
      return taskHandle(tracer, context.active(), taskType, taskId, options.agentId, {
        guard,
        api,
        token,
        parentTaskId: undefined,
      });
    },
    forceFlush: () => processor.forceFlush(),
    async shutdown() {
      guard?.close();
      await sdk.shutdown();
    },
  };
}

interface HandleDeps {
  guard: Guard | undefined;
  api: ApiClient | undefined;
  token: string | undefined;
  parentTaskId: string | undefined;
}

function taskHandle(
  tracer: Tracer,
  parent: Context,
  taskType: string,
  taskId: string,
  agentId: string,
  deps: HandleDeps,
): TaskHandle {
  const { guard, api, token, parentTaskId } = deps;
  const common: Attributes = {
    [ATTR.taskId]: taskId,
    [ATTR.taskType]: taskType,
    [ATTR.agentId]: agentId,
    ...(parentTaskId === undefined ? {} : { [ATTR.taskParentId]: parentTaskId }),
  };

  async function inSpan<T>(
    name: string,
    attributes: Attributes,
    work: () => Promise<T> | T,
    timing: SpanTiming | undefined,
    check?: { tool: string; options: CallCheckOptions },
  ): Promise<T> {
    if (guard !== undefined) {
      try {
        const tool = attributes[ATTR.toolName];
        await guard.enforce(taskId, name, typeof tool === 'string' ? tool : name);
      } catch (error) {
        if (error instanceof TaskRevokedError || error instanceof TaskRefusedError) {
          // The refused operation never ran: no span for it, an event on the task span instead.
          trace.getSpan(parent)?.addEvent(REFUSAL_EVENT.name, {
            [REFUSAL_EVENT.operation]: name,
            [REFUSAL_EVENT.revocationId]: error instanceof TaskRevokedError ? error.revocationId : '',
            [REFUSAL_EVENT.reason]: error.reason,
          });
        }
        throw error;
      }
    }
    // The request-time check (and the wait for a person, at an approval point) before the call's span starts.
    if (check !== undefined) {
      if (api === undefined) throw new TypeError('check needs apiUrl');
      await checkCall(api, { taskId, token }, check.tool, check.options);
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
    parentTaskId,
    propagationHeaders: () =>
      // Made inside the task (a tool call's span current): that span is the request's parent span.
      outgoingHeaders(
        currentTaskId(context.active()) === taskId
          ? context.active()
          : withTask(parent, { taskId, taskType, parentTaskId }),
      ),
    revoked: () => guard?.revocation(taskId) !== undefined,
    check(tool, checkOptions) {
      if (api === undefined) throw new TypeError('check() needs apiUrl');
      return checkCall(api, { taskId, token }, tool, checkOptions);
    },
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
        options.check === undefined
          ? undefined
          : {
              tool: name,
              options: {
                ...(options.sideEffect === undefined ? {} : { sideEffect: options.sideEffect }),
                ...options.check,
              },
            },
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

function markError(span: Span, error: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.setAttribute(ATTR.errorType, error instanceof Error ? error.name : 'error');
}

function compact(attributes: Record<string, Attributes[string]>): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}
