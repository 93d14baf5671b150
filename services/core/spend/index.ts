/** Model spend: what model calls cost (prices.ts) and the budgets it is held to (budgets.ts). Pure. */
export * from './budgets.ts';
export * from './prices.ts';

import type { Budget } from './budgets.ts';
import type { PriceTable } from './prices.ts';

/** What the processor prices calls with and holds spend to (TRIPLINE_MODEL_PRICES, TRIPLINE_BUDGETS). */
export interface SpendSettings {
  prices: PriceTable;
  budgets: readonly Budget[];
}
export * from './spend-baseline.ts';
