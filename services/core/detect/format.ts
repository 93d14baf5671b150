/** Number formatting for reasons people read. Deterministic (no locale lookups). */

function group(digits: string): string {
  if (digits.length <= 3) return digits;
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += ',' + digits.slice(i, i + 3);
  return out;
}

/** `5000` → `5,000`; `0.1234` → `0.12`; `12.5` → `12.5`. */
export function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 100 || Number.isInteger(n)) return (n < 0 ? '-' : '') + group(String(Math.round(abs)));
  if (abs >= 1) return String(Math.round(n * 10) / 10);
  return String(Math.round(n * 100) / 100);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** `1536` → `1.5 KiB`. */
export function fmtBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const unit = UNITS[u] ?? 'B';
  return u === 0
    ? `${fmtNum(v)} ${unit}`
    : `${v >= 100 ? String(Math.round(v)) : (Math.round(v * 10) / 10).toString()} ${unit}`;
}

/** `850` → `850 ms`; `12000` → `12 s`; `270000` → `4.5 min`; `7560000` → `2.1 h`. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 6000) / 10} min`;
  return `${Math.round(ms / 360_000) / 10} h`;
}

/** `0.0004` → `0.04%`. */
export function fmtPercent(p: number): string {
  const v = p * 100;
  return `${v >= 10 ? Math.round(v) : v >= 1 ? Math.round(v * 10) / 10 : Math.round(v * 100) / 100}%`;
}
