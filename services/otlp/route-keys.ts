/**
 * The attributes the gateway's byte router reads to classify a span (services/otlp/route.ts), as the bytes
 * their keys and the values it compares are encoded to, and the value types classification distinguishes.
 */
import { ATTR, EVENT_KINDS, MERGED_TOOL_CALLS_NAME, MERGED_TOOL_CALLS_SPAN } from '../../schemas/conventions.ts';
import { LLM_REQUEST_TYPES, MODEL_OPERATIONS, NOT_A_MODEL_CALL_SUFFIX } from '../core/model-usage.ts';

const KEYS = [
  ATTR.eventKind, // 0
  ATTR.privilegeAction, // 1
  ATTR.genAiOperation, // 2
  ATTR.mcpMethod, // 3
  ATTR.rpcMethod, // 4
  ATTR.openInferenceKind, // 5
  ATTR.traceloopKind, // 6
  ATTR.dbSystem, // 7
  ATTR.dbSystemLegacy, // 8
  ATTR.dbCollection, // 9
  ATTR.dataResource, // 10
  ATTR.dataBytes, // 11
  ATTR.taskId, // 12
  ATTR.taskRoot, // 13
  ATTR.taskType, // 14
  ATTR.llmRequestType, // 15
  ATTR.genAiUsagePromptLegacy, // 16
  ATTR.genAiUsageCompletionLegacy, // 17
  ATTR.toolName, // 18
] as const;
export const K_EVENT_KIND = 0;
export const K_PRIVILEGE = 1;
export const K_GENAI_OPERATION = 2;
export const K_MCP_METHOD = 3;
export const K_RPC_METHOD = 4;
export const K_OPENINFERENCE = 5;
export const K_TRACELOOP = 6;
export const K_DATA_FIRST = 7;
export const K_DATA_LAST = 11;
export const K_TASK_ID = 12;
export const K_TASK_ROOT = 13;
export const K_TASK_TYPE = 14;
export const K_LLM_REQUEST_TYPE = 15;
export const K_USAGE_LEGACY_FIRST = 16;
export const K_USAGE_LEGACY_LAST = 17;
export const K_TOOL_NAME = 18;
export const KEY_COUNT = KEYS.length;

const encoder = new TextEncoder();
const KEY_BYTES = KEYS.map((key) => encoder.encode(key));
/** Keys by byte length: [id, bytes] pairs. */
const KEYS_BY_LENGTH: [number, Uint8Array][][] = [];
KEY_BYTES.forEach((bytes, id) => {
  (KEYS_BY_LENGTH[bytes.length] ??= []).push([id, bytes]);
});
const MAX_KEY_LENGTH = KEYS_BY_LENGTH.length - 1;

const ascii = (text: string): Uint8Array => encoder.encode(text);
export const EXECUTE_TOOL = ascii('execute_tool');
export const TOOLS_CALL = ascii('tools/call');
export const TRUE = ascii('true');
export const EXECUTE_TOOL_PREFIX = ascii('execute_tool ');
export const TOOLS_CALL_PREFIX = ascii('tools/call ');
export const RESOURCES_READ = ascii('resources/read');
export const RESOURCES_READ_PREFIX = ascii('resources/read ');
export const RETRIEVAL = ascii('retrieval');
export const MERGED_TOOL_CALLS = ascii(MERGED_TOOL_CALLS_NAME);
export const MERGED_TOOL_CALLS_SPAN_NAME = ascii(MERGED_TOOL_CALLS_SPAN);
export const KIND_BYTES = EVENT_KINDS.map((kind) => ascii(kind));
export const MODEL_OPERATION_BYTES = MODEL_OPERATIONS.map((operation) => ascii(operation));
export const LLM_REQUEST_TYPE_BYTES = Object.keys(LLM_REQUEST_TYPES).map((type) => ascii(type));
export const NOT_A_MODEL_CALL_SUFFIX_BYTES = ascii(NOT_A_MODEL_CALL_SUFFIX);

/** Value types as classification sees them (services/core/classify.ts `scalarOrList`). */
export const T_NONE = 0;
export const T_STRING = 1;
export const T_BOOL = 2;
export const T_INT = 3;
export const T_DOUBLE = 4;
export const T_LIST = 5;

/** Which classification key bytes[start, end) is, or -1. */
export function keyId(bytes: Uint8Array, start: number, end: number): number {
  const length = end - start;
  if (length > MAX_KEY_LENGTH) return -1;
  const candidates = KEYS_BY_LENGTH[length];
  if (candidates === undefined) return -1;
  for (const [id, expected] of candidates) {
    let i = 0;
    while (i < length && bytes[start + i] === expected[i]) i++;
    if (i === length) return id;
  }
  return -1;
}
