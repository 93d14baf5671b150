/**
 * Tool content as some instrumentations record it: the arguments or the result inside an envelope of the
 * framework's own call, not as the model gave them. Pure and bounded: only text that looks like an envelope is
 * parsed, and none longer than classification reads anyway (MAX_ARGUMENTS_LENGTH, MAX_RESULT_LENGTH).
 *
 * - OpenInference's smolagents instrumentation records `Tool.__call__`'s bound arguments:
 *   `{"args": [], "sanitize_inputs_outputs": true, "kwargs": {"url": "…"}}`;
 * - OpenInference's LlamaIndex instrumentation records `FunctionTool.acall`'s: `{"kwargs": {"url": "…"}}`, and as the
 *   result the whole `ToolOutput`: `{"blocks": […], "tool_name": "…", "raw_input": {…}, "raw_output": …,
 *   "is_error": false}`, whose `raw_input` repeats the arguments;
 * - OpenInference's LangChain.js instrumentation records as a tool's result the `ToolMessage` LangChain made of it,
 *   serialized: `{"output": {"lc": 1, "type": "constructor", "id": ["langchain_core", "messages", "ToolMessage"],
 *   "kwargs": {"content": "…", "tool_call_id": "…", "name": "…", "metadata": {"versions": {"@langchain/core":
 *   "1.5.0"}}, …}}}` (a per-call id, and a package name that reads as a handle).
 *
 * - OpenInference's AutoGen AgentChat instrumentation records as a tool's result the text AutoGen made of the
 *   returned value: `str(value)`, so a dict or a list is Python's repr (`{'to': 'a@b.example', 'sent': True}`), not
 *   JSON (services/core/python-literal.ts).
 *
 * The arguments are the keyword arguments (or the one positional argument when there are none); the result is
 * `raw_output`, or the `ToolMessage`'s `content`, or the Python literal's value. Unwrapped content is JSON again (a
 * string stays bare, as OpenInference records a one-string input). Anything else comes back unchanged.
 */
import { MAX_ARGUMENTS_LENGTH } from './arguments.ts';
import { MAX_RESULT_LENGTH } from './counterparties.ts';
import { parsePythonLiteral } from './python-literal.ts';

/** The keys of a bound-arguments envelope: `kwargs` with, at most, these beside it. */
const CALL_KEYS = new Set(['args', 'kwargs', 'sanitize_inputs_outputs']);
/** The keys of LlamaIndex's `ToolOutput`; `raw_output` and `tool_name` must be there. */
const TOOL_OUTPUT_KEYS = new Set(['blocks', 'content', 'tool_name', 'raw_input', 'raw_output', 'is_error']);

/** The arguments inside a framework's call envelope, or `text` when it is none. */
export function unwrapToolArguments(text: string): string {
  if (text.length > MAX_ARGUMENTS_LENGTH || !/^\s*\{\s*"(args|kwargs)"\s*:/.test(text)) return text;
  const parsed = parseObject(text);
  if (parsed === undefined || !Object.keys(parsed).every((key) => CALL_KEYS.has(key))) return text;
  const { args, kwargs } = parsed;
  if (!isPlainObject(kwargs)) return text;
  const positional = args === undefined ? [] : args;
  if (!Array.isArray(positional)) return text;
  if (positional.length === 0) return JSON.stringify(kwargs);
  if (positional.length === 1 && Object.keys(kwargs).length === 0) return asText(positional[0]);
  return text;
}

/** The result inside a framework's tool-output envelope, or `text` when it is none. */
export function unwrapToolResult(text: string): string {
  if (text.length > MAX_RESULT_LENGTH) return text;
  if (text.includes('"ToolMessage"')) return toolMessageContent(text) ?? text;
  if (!text.includes('"raw_output"') || !text.includes('"tool_name"')) return pythonLiteralAsJson(text) ?? text;
  const parsed = parseObject(text);
  if (parsed === undefined || !Object.keys(parsed).every((key) => TOOL_OUTPUT_KEYS.has(key))) return text;
  if (!('raw_output' in parsed) || typeof parsed.tool_name !== 'string') return text;
  return asText(parsed.raw_output);
}

/**
 * The content of a serialized LangChain `ToolMessage` (`{"lc": 1, "type": "constructor", "id": [..., "ToolMessage"],
 * "kwargs": {"content": …}}`), bare or as a run's `{"output": …}`, or undefined when `text` is none.
 */
function toolMessageContent(text: string): string | undefined {
  const parsed = parseObject(text);
  if (parsed === undefined) return undefined;
  const keys = Object.keys(parsed);
  const message = keys.length === 1 && keys[0] === 'output' ? parsed.output : parsed;
  if (!isPlainObject(message) || message.lc !== 1 || message.type !== 'constructor') return undefined;
  const { id, kwargs } = message;
  if (!Array.isArray(id) || id.at(-1) !== 'ToolMessage' || !isPlainObject(kwargs) || !('content' in kwargs))
    return undefined;
  return asText(kwargs.content);
}

/** A Python dict or list literal (a repr, no JSON) as JSON, or undefined when `text` is none. */
function pythonLiteralAsJson(text: string): string | undefined {
  // Python's repr quotes strings with ' (JSON never does outside a string); JSON stays as it is.
  if (!text.includes("'") && !/\b(?:True|False|None)\b/.test(text)) return undefined;
  if (!/^\s*[[{]/.test(text) || parseJson(text) !== undefined) return undefined;
  const value = parsePythonLiteral(text);
  return value === undefined ? undefined : JSON.stringify(value);
}

function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return isPlainObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asText(value: unknown): string {
  // Parsed JSON: never undefined, so JSON.stringify gives text.
  return typeof value === 'string' ? value : JSON.stringify(value);
}
