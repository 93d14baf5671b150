/**
 * Model calls: which spans are calls to a model, and the tokens and model each used. Pure.
 *
 * A span that is none of the three event kinds is a model call when, first match wins:
 * 1. `gen_ai.operation.name` is a string: it is one of MODEL_OPERATIONS (`invoke_agent`, whose span carries the
 *    run's summed usage in pydantic-ai, is not, so tokens are never counted twice);
 * 2. `openinference.span.kind` is a string: `LLM` (chat) or `EMBEDDING` (embeddings), any case, unless the span's
 *    name ends with `._prepare_chat_with_tools` (LlamaIndex, below);
 * 3. `llm.request.type` is a string (OpenLLMetry): `chat`, `completion` or `embedding`;
 * 4. none of the three is a string, and the span has `gen_ai.usage.prompt_tokens` or
 *    `gen_ai.usage.completion_tokens` (the GenAI conventions before `gen_ai.operation.name`).
 * The gateway's byte router (services/otlp/route-classify.ts `isModelCall`) applies the same rule to the bytes.
 */
import { ATTR } from '../../schemas/conventions.ts';
import type { ModelUsage, TaskClaims } from '../../schemas/events.ts';
import { numberAttr, stringAttr } from './attribute-values.ts';
import type { Attributes } from './attribute-values.ts';

export const MODEL_OPERATIONS = ['chat', 'text_completion', 'generate_content', 'embeddings'] as const;
export type ModelOperation = (typeof MODEL_OPERATIONS)[number];

/**
 * The end of the name of an OpenInference `LLM` span that is no model call: OpenInference's LlamaIndex
 * instrumentation makes a span of every method LlamaIndex instruments on an LLM object and types them all `LLM`, so
 * each turn of a function-calling agent has `<LLM class>._prepare_chat_with_tools` (it only builds the request, and
 * carries no tokens) before the chat span that calls the model.
 */
export const NOT_A_MODEL_CALL_SUFFIX = '._prepare_chat_with_tools';

/** OpenLLMetry's `llm.request.type` values that are model calls, as GenAI operations. */
export const LLM_REQUEST_TYPES: Readonly<Record<string, ModelOperation>> = {
  chat: 'chat',
  completion: 'text_completion',
  embedding: 'embeddings',
};

/** OpenInference span kinds (upper-cased) that are model calls. */
export const OPENINFERENCE_MODEL_KINDS: Readonly<Record<string, ModelOperation>> = {
  LLM: 'chat',
  EMBEDDING: 'embeddings',
};

/** Tokens one call may claim (a hostile or broken count is capped, so sums stay finite). */
export const MAX_TOKENS_PER_CALL = 100_000_000;
/** Longest model or provider name kept. */
export const MAX_MODEL_NAME = 128;
export const UNKNOWN_MODEL = 'unknown';

/** The model operation of a span that is no event, or null when it is no model call (see the module's rule). */
export function modelOperation(attributes: Attributes, spanName: string): ModelOperation | null {
  const operation = attributes.get(ATTR.genAiOperation);
  if (typeof operation === 'string') {
    return (MODEL_OPERATIONS as readonly string[]).includes(operation) ? (operation as ModelOperation) : null;
  }
  const openInference = attributes.get(ATTR.openInferenceKind);
  if (typeof openInference === 'string') {
    if (spanName.endsWith(NOT_A_MODEL_CALL_SUFFIX)) return null;
    return OPENINFERENCE_MODEL_KINDS[openInference.toUpperCase()] ?? null;
  }
  const requestType = attributes.get(ATTR.llmRequestType);
  if (typeof requestType === 'string')
    return Object.hasOwn(LLM_REQUEST_TYPES, requestType) ? (LLM_REQUEST_TYPES[requestType] ?? null) : null;
  if (attributes.has(ATTR.genAiUsagePromptLegacy) || attributes.has(ATTR.genAiUsageCompletionLegacy)) return 'chat';
  return null;
}

function tokens(attributes: Attributes, keys: readonly string[]): number {
  for (const key of keys) {
    const value = numberAttr(attributes, key);
    if (value !== undefined) return Math.min(MAX_TOKENS_PER_CALL, Math.round(value));
  }
  return 0;
}

function firstString(attributes: Attributes, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = stringAttr(attributes, key);
    if (value !== undefined) return value.slice(0, MAX_MODEL_NAME);
  }
  return undefined;
}

const INPUT_KEYS = [ATTR.genAiUsageInput, ATTR.genAiUsagePromptLegacy, ATTR.llmTokenCountPrompt, ATTR.llmUsagePrompt];
const OUTPUT_KEYS = [
  ATTR.genAiUsageOutput,
  ATTR.genAiUsageCompletionLegacy,
  ATTR.llmTokenCountCompletion,
  ATTR.llmUsageCompletion,
];
const MODEL_KEYS = [ATTR.genAiResponseModel, ATTR.genAiRequestModel, ATTR.llmModelName];
const PROVIDER_KEYS = [ATTR.genAiProvider, ATTR.genAiSystem, ATTR.llmProvider];

/** Who and where a model call is, as classification resolved it for the span. */
export interface UsageSpan {
  tenant: string;
  taskId: string;
  taskType: string;
  agentId: string;
  claims: TaskClaims;
  traceId: string;
  spanId: string;
  startMs: number;
  endMs: number;
}

/** The usage record of a model-call span. */
export function modelUsage(operation: ModelOperation, attributes: Attributes, span: UsageSpan): ModelUsage {
  const usage: ModelUsage = {
    id: `${span.traceId}${span.spanId}`,
    ...span,
    operation,
    model: firstString(attributes, MODEL_KEYS) ?? UNKNOWN_MODEL,
    inputTokens: tokens(attributes, INPUT_KEYS),
    outputTokens: tokens(attributes, OUTPUT_KEYS),
  };
  const provider = firstString(attributes, PROVIDER_KEYS);
  if (provider !== undefined) usage.provider = provider;
  return usage;
}
