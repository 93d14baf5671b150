/**
 * Tripline's agent helpers: instrument an agent with OpenTelemetry in one call and emit the three kinds of
 * spans with Tripline's conventions.
 *
 *   const telemetry = startTelemetry({ endpoint: 'http://localhost:4318', agentId: 'support-bot-1' });
 *   await telemetry.task('summarize_ticket', async (task) => {
 *     const ticket = await task.toolCall('get_ticket', { sideEffect: 'read' }, () => api.getTicket(id));
 *     await task.dataAccess({ system: 'postgresql', namespace: 'helpdesk', collection: 'tickets', rows: 3 }, () => db.query(...));
 *   });
 *   await telemetry.shutdown();
 */
import { randomUUID } from 'node:crypto';
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Context, Span, Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { ATTR } from '../../schemas/conventions.ts';
import type { DataClassification, PrivilegeAction, ToolSideEffect } from '../../schemas/conventions.ts';

export interface TelemetryOptions {
  /** Tripline's (or a collector's) OTLP/HTTP base URL, e.g. `http://localhost:4318`. */
  endpoint: string;
  agentId: string;
  agentName?: string;
  serviceName?: string;
  /** Extra OTLP headers, e.g. `{ authorization: 'Bearer …' }`. */
  headers?: Record<string, string>;
  /** How long the batch processor waits before exporting (ms). */
  exportDelayMs?: number;
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
  toolCall<T>(name: string, options: ToolCallOptions, work: () => Promise<T> | T, timing?: SpanTiming): Promise<T>;
  dataAccess<T>(options: DataAccessOptions, work: () => Promise<T> | T, timing?: SpanTiming): Promise<T>;
  privilegeChange<T>(options: PrivilegeChangeOptions, work: () => Promise<T> | T, timing?: SpanTiming): Promise<T>;
}

export interface Telemetry {
  readonly agentId: string;
  /** Run `work` as one task: a task span carrying `tripline.task.id` that ends when `work` settles. */
  task<T>(taskType: string, work: (task: TaskHandle) => Promise<T>, options?: { taskId?: string; timing?: SpanTiming }): Promise<T>;
  /** A handle for a task whose span has already ended or is owned elsewhere (its events still carry the task id). */
  detachedTask(taskType: string, taskId: string): TaskHandle;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export function startTelemetry(options: TelemetryOptions): Telemetry {
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/$/, '')}/v1/traces`, headers: options.headers ?? {} });
  const processor = new BatchSpanProcessor({ exporter, scheduledDelayMillis: options.exportDelayMs ?? 200, maxQueueSize: 8192 });
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
  const tracer = trace.getTracer('tripline-agent', '0.1.0');

  return {
    agentId: options.agentId,
    async task(taskType, work, taskOptions = {}) {
      const taskId = taskOptions.taskId ?? randomUUID();
      const span = tracer.startSpan(`task ${taskType}`, {
        root: true,
        attributes: { [ATTR.taskId]: taskId, [ATTR.taskType]: taskType, [ATTR.taskRoot]: true, [ATTR.agentId]: options.agentId },
        ...(taskOptions.timing?.startTime === undefined ? {} : { startTime: taskOptions.timing.startTime }),
      });
      const handle = taskHandle(tracer, trace.setSpan(context.active(), span), taskType, taskId, options.agentId);
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
    detachedTask(taskType, taskId) {
      return taskHandle(tracer, context.active(), taskType, taskId, options.agentId);
    },
    forceFlush: () => processor.forceFlush(),
    shutdown: () => sdk.shutdown(),
  };
}

function taskHandle(tracer: Tracer, parent: Context, taskType: string, taskId: string, agentId: string): TaskHandle {
  const common: Attributes = { [ATTR.taskId]: taskId, [ATTR.taskType]: taskType, [ATTR.agentId]: agentId };

  async function inSpan<T>(name: string, attributes: Attributes, work: () => Promise<T> | T, timing: SpanTiming | undefined): Promise<T> {
    const span = tracer.startSpan(name, { attributes: { ...common, ...attributes }, ...(timing?.startTime === undefined ? {} : { startTime: timing.startTime }) }, parent);
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
          [ATTR.dbSystem]: options.system ?? (options.url !== undefined || options.file !== undefined ? undefined : 'other_sql'),
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
