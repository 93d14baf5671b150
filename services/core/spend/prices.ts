/**
 * What a model call cost: tokens in and out times the model's price per million tokens, from a price table (the
 * shipped policies/model-prices.json, with an operator's file over it: TRIPLINE_MODEL_PRICES). Pure.
 *
 * A model is found by its exact name (lower-cased, a provider prefix such as `openai/` or `models/` dropped), else
 * by the longest table name it starts with followed by `-`, `@`, `:` or `.` (`gpt-4o-2024-08-06` is `gpt-4o`,
 * `claude-3-5-sonnet-20241022` is `claude-3-5-sonnet`). Any other model is priced at the table's `fallback` and
 * the cost says so (`priced: false`); its tokens count all the same.
 */

export interface ModelPrice {
  /** USD per million input tokens. */
  input: number;
  /** USD per million output tokens. */
  output: number;
}

export interface PriceTable {
  /** The day the prices were read from the providers (YYYY-MM-DD). */
  date: string;
  fallback: ModelPrice;
  /** By lower-case model name. */
  models: ReadonlyMap<string, ModelPrice>;
}

export interface Cost {
  usd: number;
  /** The table entry used ('' when the fallback priced it). */
  priced: boolean;
  entry: string;
}

/** Highest price per million tokens accepted (a typo of 1000× shows up as an error, not as a silent kill). */
export const MAX_PRICE_PER_MILLION = 10_000;
/** Most models a table may hold. */
export const MAX_MODELS = 5000;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function priceOf(value: unknown, where: string): ModelPrice | string {
  if (!isRecord(value)) return `${where} must be an object {"input": n, "output": n}`;
  for (const side of ['input', 'output'] as const) {
    const n = value[side];
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > MAX_PRICE_PER_MILLION)
      return `${where}.${side} must be a number of USD per million tokens from 0 to ${String(MAX_PRICE_PER_MILLION)}`;
  }
  return { input: value.input as number, output: value.output as number };
}

/**
 * Reads a price table document (the shape of policies/model-prices.json). With `base`, the document may leave out
 * `date` and `fallback` (the base's are kept) and its models replace or add to the base's. Returns the table, or
 * what is wrong with the document as a sentence.
 */
export function parsePriceTable(document: unknown, base?: PriceTable): PriceTable | string {
  if (!isRecord(document)) return 'the price table must be a JSON object';
  const unknown = Object.keys(document).find((key) => !TABLE_KEYS.has(key));
  if (unknown !== undefined) return `unknown key "${unknown}" (a price table has date, currency, fallback, models)`;
  if (document.currency !== undefined && document.currency !== 'USD') return '"currency" must be "USD"';
  const date = document.date ?? base?.date;
  if (typeof date !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(date)) return '"date" must be a date YYYY-MM-DD';
  let fallback = base?.fallback;
  if (document.fallback !== undefined || fallback === undefined) {
    const parsed = priceOf(document.fallback, '"fallback"');
    if (typeof parsed === 'string') return parsed;
    fallback = parsed;
  }
  const models = new Map(base?.models ?? []);
  const listed = document.models ?? {};
  if (!isRecord(listed)) return '"models" must be an object of model name to {"input": n, "output": n}';
  for (const [name, value] of Object.entries(listed)) {
    const parsed = priceOf(value, `"models"."${name}"`);
    if (typeof parsed === 'string') return parsed;
    if (name.trim() === '') return '"models" holds an empty model name';
    models.set(name.trim().toLowerCase(), parsed);
  }
  if (models.size > MAX_MODELS) return `"models" holds more than ${String(MAX_MODELS)} models`;
  return { date, fallback, models };
}

const TABLE_KEYS = new Set(['//', 'date', 'currency', 'fallback', 'models']);

const PREFIX = /^(?:[a-z0-9_.-]+[/:])+/;
const SEPARATORS = new Set(['-', '@', ':', '.']);

/** The table entry for a model name, or undefined when none matches. */
export function priceEntry(table: PriceTable, model: string): string | undefined {
  const lower = model.trim().toLowerCase();
  for (const name of lower === lower.replace(PREFIX, '') ? [lower] : [lower, lower.replace(PREFIX, '')]) {
    if (table.models.has(name)) return name;
    let best: string | undefined;
    for (const entry of table.models.keys()) {
      if (
        name.length > entry.length &&
        name.startsWith(entry) &&
        SEPARATORS.has(name.charAt(entry.length)) &&
        (best === undefined || entry.length > best.length)
      )
        best = entry;
    }
    if (best !== undefined) return best;
  }
  return undefined;
}

/** The cost of one call. */
export function costOf(table: PriceTable, model: string, inputTokens: number, outputTokens: number): Cost {
  const entry = priceEntry(table, model);
  const price = entry === undefined ? table.fallback : (table.models.get(entry) ?? table.fallback);
  const usd = (inputTokens * price.input + outputTokens * price.output) / 1_000_000;
  return { usd, priced: entry !== undefined, entry: entry ?? '' };
}
