/**
 * The spend settings (docs/budgets.md): the shipped price table (policies/model-prices.json) with the operator's
 * file over it (TRIPLINE_MODEL_PRICES), and the budgets file (TRIPLINE_BUDGETS, default policies/budgets.json).
 * Read and validated once at start-up; a bad file names its variable.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseBudgets, parsePriceTable } from '../core/spend/index.ts';
import type { Budget, PriceTable, SpendSettings } from '../core/spend/index.ts';
import { invalid, readOptionalString } from '../shared/env.ts';
import type { Env } from '../shared/env.ts';

export const DEFAULT_PRICES_FILE = fileURLToPath(new URL('../../policies/model-prices.json', import.meta.url));
export const DEFAULT_BUDGETS_FILE = fileURLToPath(new URL('../../policies/budgets.json', import.meta.url));

function readJsonFile(name: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw invalid(name, path, `a readable file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid(name, path, 'a file of JSON');
  }
}

export function readSpendConfig(env: Env): SpendSettings {
  const shipped = parsePriceTable(readJsonFile('TRIPLINE_MODEL_PRICES', DEFAULT_PRICES_FILE));
  if (typeof shipped === 'string') throw invalid('TRIPLINE_MODEL_PRICES', DEFAULT_PRICES_FILE, shipped);
  let prices: PriceTable = shipped;
  const override = readOptionalString(env, 'TRIPLINE_MODEL_PRICES');
  if (override !== undefined) {
    const parsed = parsePriceTable(readJsonFile('TRIPLINE_MODEL_PRICES', override), shipped);
    if (typeof parsed === 'string') throw invalid('TRIPLINE_MODEL_PRICES', override, `a price table: ${parsed}`);
    prices = parsed;
  }
  const budgetsFile = readOptionalString(env, 'TRIPLINE_BUDGETS') ?? DEFAULT_BUDGETS_FILE;
  const budgets: Budget[] | string = parseBudgets(readJsonFile('TRIPLINE_BUDGETS', budgetsFile));
  if (typeof budgets === 'string') throw invalid('TRIPLINE_BUDGETS', budgetsFile, `a budgets file: ${budgets}`);
  return Object.freeze({ prices, budgets: Object.freeze(budgets) });
}
