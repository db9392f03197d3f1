/**
 * Rounds a discrete Gaussian variance σ² *up* to a rational a/b that keeps the exact sampler
 * (discrete-gaussian.ts, Canonne–Kamath–Steinke 2020, Alg. 3) on its double-precision path.
 *
 * Why: the sampler's acceptance test compares (|Y|·b·t − a)² with 2·a·b·t² (t = ⌊σ⌋ + 1). Both
 * fit in a double only if b is small; σ² written with nine significant decimals has b = 10⁷ or
 * more and sends every draw down the BigInt path (1.1–1.2 M samples/s instead of > 4 M/s).
 * A power-of-two denominator just large enough that rounding up changes σ² by at most one part
 * in 10⁶ keeps the numbers small. Rounding *up* only adds noise: the guarantee is never weaker.
 */
import { MechanismParameterInvalid } from './errors.ts';

/** 2^53 − 1: the discrete Gaussian's fast path needs 2·a·b·t² below this. */
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Largest relative increase of σ² the rounding may make. */
export const MAX_VARIANCE_ROUNDING = 1e-6;

/** σ² rounded up to "a/b" with b a power of two (b = 1 for large σ²). */
export function friendlySigma2(sigma2: number): string {
  if (!(sigma2 > 0) || !Number.isFinite(sigma2)) throw new MechanismParameterInvalid('sigma2 must be a finite number > 0');
  const t = Math.floor(Math.sqrt(sigma2)) + 1;
  let b = 1;
  // Finer grid while the rounding could exceed the tolerance and the numbers still fit.
  while (1 / (b * sigma2) > MAX_VARIANCE_ROUNDING && 2 * Math.ceil(sigma2 * b * 2) * (b * 2) * t * t < MAX_SAFE / 4) b *= 2;
  const a = Math.ceil(sigma2 * b);
  if (!Number.isSafeInteger(a)) throw new MechanismParameterInvalid('sigma2 is too large to sample');
  // Reduce a/b: b is a power of two.
  let n = a, d = b;
  while (d > 1 && n % 2 === 0) { n /= 2; d /= 2; }
  return d === 1 ? String(n) : `${n}/${d}`;
}
