/**
 * How per-feature scores become one 0–100 score.
 *
 * Features are grouped in families of correlated evidence (all data-volume features are one family: an
 * exfiltration burst raises rows per access, rows per task and bytes together and must not count three times).
 * Within a family the strongest feature stands for it. Across families:
 *
 *     score = f1 + (100 − f1) · β · (1 − Π_{i ≥ 2, f_i ≥ floor} (1 − f_i / 100))
 *
 * f1 is the strongest family; the others add a bounded bonus: a noisy-OR of the independent corroborating
 * signals, scaled by β = 0.5, so corroboration can close at most half the gap to 100. One strong signal can
 * revoke alone; several weak ones cannot (three families at 40 give 40 + 60·0.5·0.64 = 59). The result is
 * in [0, 100], never below the strongest feature, and non-decreasing in every feature score.
 */

export const FAMILY_BONUS = 0.5;
/** Families below this score add nothing (noise from many mildly busy features must not add up). */
export const BONUS_FLOOR = 15;

/** Combine per-family maxima (any order). */
export function combineFamilies(familyScores: readonly number[]): number {
  let top = 0;
  for (const s of familyScores) if (s > top) top = s;
  if (top <= 0) return 0;
  let keep = 1;
  let skippedTop = false;
  for (const s of familyScores) {
    if (!skippedTop && s === top) {
      skippedTop = true;
      continue;
    }
    if (s >= BONUS_FLOOR) keep *= 1 - Math.min(100, s) / 100;
  }
  const combined = top + (100 - top) * FAMILY_BONUS * (1 - keep);
  return Math.min(100, Math.max(0, combined));
}

/** Combine features tagged with their family. */
export function combine(features: readonly { family: string; score: number }[]): number {
  const best = new Map<string, number>();
  for (const f of features) {
    const prev = best.get(f.family);
    if (prev === undefined || f.score > prev) best.set(f.family, f.score);
  }
  return combineFamilies([...best.values()]);
}
