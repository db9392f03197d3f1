/**
 * Printing a noisy (differentially private) value to the precision its interval supports.
 *
 * A value released with a 95 % interval of ±88 has no meaningful digit below the units, and
 * printing 16 significant digits suggests an accuracy the mechanism never had. The rule is
 * the one metrologists use for a measurement and its uncertainty (JCGM 100:2008, GUM §7.2.6):
 * keep two significant digits of the uncertainty and round the value to the same decimal
 * place. The machine-readable output (--json) keeps the released value unrounded.
 */

/** The decimal place (a power of ten) that two significant digits of `halfWidth` reach. */
export function resolutionOf(halfWidth: number): number {
  if (!Number.isFinite(halfWidth) || halfWidth <= 0) return 0;
  return 10 ** (Math.floor(Math.log10(halfWidth)) - 1);
}

/** `value` as text, rounded to the resolution its interval [lo, hi] supports. */
export function formatNoisy(value: number, interval: readonly [number, number]): string {
  const half = Math.max(Math.abs(value - interval[0]), Math.abs(interval[1] - value));
  const step = resolutionOf(half);
  if (step === 0) return String(value);
  const decimals = Math.max(0, -Math.round(Math.log10(step)));
  const rounded = Math.round(value / step) * step;
  return rounded.toFixed(decimals);
}
