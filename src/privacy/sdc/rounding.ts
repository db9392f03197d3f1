/**
 * Rounding of published counts, applied after suppression (OpenSAFELY: "You should first
 * redact counts <=7 and then round to the nearest 5", docs.opensafely.org/releasing-files/,
 * "Rounding counts").
 *
 * - `nearest5`: the nearest multiple of 5. Counts are integers, so there is never a tie.
 * - `midpoint6`: OpenSAFELY "midpoint 6" rounding (same page, "Midpoint 6 rounding"),
 *   defined there by the R function
 *       roundmid_any <- function(x, to=6) ceiling(x/to)*to - (floor(to/2)*(x!=0))
 *   i.e. 0 → 0, 1–6 → 3, 7–12 → 9, 13–18 → 15, ...: zero stays zero, a non-zero result r
 *   means a true value in r−2 … r+3, and the rounding is unbiased over each bin.
 *
 * Both are computed in integer arithmetic (`%`), not `x / 6` in floating point, so they
 * are exact for every safe integer. Only non-negative integer counts are accepted.
 */
import { SdcInputInvalid } from './errors.ts';
import type { Rounding } from './types.ts';

function assertCount(x: number): void {
  if (!Number.isSafeInteger(x) || x < 0) throw new SdcInputInvalid('only non-negative integer counts can be rounded');
}

export function roundNearest5(x: number): number {
  assertCount(x);
  const r = x % 5;
  return r <= 2 ? x - r : x - r + 5;
}

export function roundMidpoint6(x: number): number {
  assertCount(x);
  if (x === 0) return 0;
  const r = x % 6;
  const ceiling = r === 0 ? x : x - r + 6;
  return ceiling - 3;
}

export function roundCount(x: number, rounding: Rounding): number {
  switch (rounding) {
    case 'none': assertCount(x); return x;
    case 'nearest5': return roundNearest5(x);
    case 'midpoint6': return roundMidpoint6(x);
  }
}
