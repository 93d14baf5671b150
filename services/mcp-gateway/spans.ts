/**
 * The spans the gateway writes for what passes through it, under the conventions Tripline reads
 * (schemas/conventions.ts): a `tools/call` is a tool call (OTel GenAI `execute_tool` and MCP attributes, the
 * arguments and result recorded as GenAI's `gen_ai.tool.call.arguments` / `.result`, so counterparties and
 * flows are read from them), a `resources/read` is a data access, and the end of a bound client's session ends
 * its task (a root span). Each carries the task's identity from the credential. Pure: values in, spans out.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ATTR } from '../../schemas/conventions.ts';
import type { OtlpKeyValue, OtlpSpan, OtlpTraceRequest } from '../../schemas/otlp.ts';
import type { TaskIdentity } from './authority.ts';
import type { CallOutcome, GuardedCall } from './messages.ts';

export const GATEWAY_SERVICE_NAME = 'tripline-mcp-gateway';
/** Which upstream served the call (the gateway's own attribute). */
export const MCP_SERVER_ATTR = 'tripline.mcp.server';
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_INTERNAL = 1;
/** OTLP span flags: the parent's remoteness is known (bit 8) and it is remote (bit 9). */
const PARENT_IS_REMOTE = 0x300;

export interface CallRecord {
  identity: TaskIdentity;
  upstream: string;
  call: GuardedCall;
  outcome: CallOutcome | undefined;
  sideEffect: string | undefined;
  sessionId: string | undefined;
  protocolVersion: string | undefined;
  startMs: number;
  endMs: number;
}

/** A tool call or data access span for one guarded call that went to the upstream. */
export function callSpan(record: CallRecord): OtlpSpan {
  const { identity, call, outcome } = record;
  const attributes: [string, string | number | boolean | undefined][] = [
    ...identityAttributes(identity),
    [ATTR.mcpMethod, call.method],
    [MCP_SERVER_ATTR, record.upstream],
    ['mcp.session.id', record.sessionId],
    ['mcp.protocol.version', record.protocolVersion],
    ['jsonrpc.request.id', String(call.id)],
  ];
  if (call.method === 'tools/call') {
    attributes.push(
      [ATTR.genAiOperation, 'execute_tool'],
      [ATTR.toolName, call.name],
      [ATTR.mcpToolName, call.name],
      [ATTR.toolType, 'extension'],
      [ATTR.toolCallId, String(call.id)],
      [ATTR.toolSideEffect, record.sideEffect],
      [ATTR.toolCallArguments, call.arguments === undefined ? undefined : JSON.stringify(call.arguments)],
      [ATTR.toolCallResult, outcome?.result],
    );
  } else {
    attributes.push(['mcp.resource.uri', call.name], [ATTR.dataBytes, outcome?.result?.length]);
  }
  const errorType = outcome === undefined ? 'no_response' : outcome.errorType;
  attributes.push([ATTR.errorType, errorType]);
  const parent = call.traceparent;
  return {
    traceId: parent?.traceId ?? taskTraceId(identity),
    spanId: spanId(),
    parentSpanId: parent?.spanId ?? '',
    ...(parent === undefined ? {} : { flags: PARENT_IS_REMOTE | (parent.sampled ? 1 : 0) }),
    name: `${call.method} ${call.name}`,
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: msToNanos(record.startMs),
    endTimeUnixNano: msToNanos(record.endMs),
    attributes: keyValues(attributes),
    events: [],
    links: [],
    status: errorType === undefined ? { code: 0 } : { code: 2, message: errorType },
  };
}

/** The root span that ends a bound client's task when its session ends. */
export function taskEndSpan(identity: TaskIdentity, upstream: string, startMs: number, endMs: number): OtlpSpan {
  return {
    traceId: taskTraceId(identity),
    spanId: spanId(),
    parentSpanId: '',
    name: `mcp session ${upstream}`,
    kind: SPAN_KIND_INTERNAL,
    startTimeUnixNano: msToNanos(startMs),
    endTimeUnixNano: msToNanos(endMs),
    attributes: keyValues([...identityAttributes(identity), [ATTR.taskRoot, true], [MCP_SERVER_ATTR, upstream]]),
    events: [],
    links: [],
    status: { code: 0 },
  };
}

/** One OTLP request holding spans (all of one tenant: the caller groups them). */
export function traceRequest(spans: OtlpSpan[]): OtlpTraceRequest {
  return {
    resourceSpans: [
      {
        resource: { attributes: keyValues([[ATTR.serviceName, GATEWAY_SERVICE_NAME]]) },
        scopeSpans: [{ scope: { name: GATEWAY_SERVICE_NAME, attributes: [] }, spans }],
      },
    ],
  };
}

function identityAttributes(identity: TaskIdentity): [string, string][] {
  return [
    [ATTR.taskId, identity.taskId],
    [ATTR.taskType, identity.taskType],
    [ATTR.agentId, identity.agentId],
  ];
}

/** Without a client's trace context, a task's spans share one trace made from its id. */
export function taskTraceId(identity: Pick<TaskIdentity, 'tenant' | 'taskId'>): string {
  return createHash('sha256').update(`${identity.tenant}\u0000${identity.taskId}`).digest('hex').slice(0, 32);
}

function spanId(): string {
  return randomBytes(8).toString('hex');
}

function msToNanos(ms: number): string {
  return (BigInt(Math.round(ms * 1000)) * 1000n).toString();
}

function keyValues(entries: readonly [string, string | number | boolean | undefined][]): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  for (const [key, value] of entries) {
    if (value === undefined) continue;
    if (typeof value === 'string') out.push({ key, value: { stringValue: value } });
    else if (typeof value === 'boolean') out.push({ key, value: { boolValue: value } });
    else if (Number.isInteger(value)) out.push({ key, value: { intValue: value } });
    else out.push({ key, value: { doubleValue: value } });
  }
  return out;
}
