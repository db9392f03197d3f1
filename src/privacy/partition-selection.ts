/**
 * The partition-selection threshold τ (Desfontaines, Voss, Gipson, Mandayam, "Differentially
 * private partition selection", PoPETs 2022): a group is released only if its noisy count of
 * distinct units reaches τ, where τ is the smallest integer with P(1 + X ≥ τ) ≤ target for
 * the count's noise X — so a group created by one unit almost never appears.
 *
 * Computed in closed form, not by summing the pmf: the previous walk summed ~40σ terms for
 * each candidate τ, O(σ²) on the event loop (ε = 0.03 stalled the process for a minute).
 *
 * - Discrete Laplace with scale t: P(X ≥ h) = e^{−h/t} / (1 + e^{−1/t}) exactly (h ≥ 1).
 * - Discrete Gaussian N_Z(0, σ²): the terms after k = h shrink by at least the factor
 *   r = e^{−(2h+1)/(2σ²)} each step, so P(X ≥ h) ≤ e^{−h²/(2σ²)} / (Z·(1 − r)) with Z the
 *   normaliser (Canonne, Kamath, Steinke 2020). The bound is tight for h ≫ σ (the Mills
 *   ratio) and never below the true tail, so τ is never smaller than the exact one: the
 *   guarantee holds, at most one unit more conservative.
 * Both tails decrease in h; τ is found by bisection in O(log σ) evaluations.
 */
import { discreteGaussianNormalizer } from './mechanisms/discrete-gaussian.ts';
import type { NoiseMechanism } from './mechanisms/index.ts';
import { toNumber, toRational } from './mechanisms/rational.ts';

/** P(X ≥ h) for the discrete Laplace with scale t (h ≥ 1); 1 for h ≤ 0. */
export function laplaceUpperTail(h: number, t: number): number {
  if (h <= 0) return 1;
  return Math.exp(-h / t) / (1 + Math.exp(-1 / t));
}

/** An upper bound of P(X ≥ h) for N_Z(0, σ²) (h ≥ 1); 1 for h ≤ 0. */
export function gaussianUpperTail(h: number, sigma2: number, normaliser = discreteGaussianNormalizer(sigma2)): number {
  if (h <= 0) return 1;
  const r = Math.exp(-(2 * h + 1) / (2 * sigma2));
  return Math.min(1, Math.exp(-(h * h) / (2 * sigma2)) / (normaliser * (1 - r)));
}

/** Smallest integer h ≥ 0 with tail(h) ≤ target, for a tail that decreases in h. */
function smallestBelow(tail: (h: number) => number, target: number, scale: number): number {
  let lo = 0, hi = Math.max(1, Math.ceil(scale));
  while (tail(hi) > target) { lo = hi; hi *= 2; }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (tail(mid) > target) lo = mid; else hi = mid;
  }
  return tail(lo) <= target ? lo : hi;
}

/** Smallest τ with P(1 + X ≥ τ) ≤ target: a group of one unit is released with probability at most target. */
export function selectionThreshold(mechanism: NoiseMechanism, target: number): number {
  if (!(target > 0 && target < 1)) throw new RangeError('the selection target must be a probability strictly between 0 and 1');
  if (mechanism.kind === 'laplace') {
    const t = toNumber(toRational(mechanism.scale, 'scale'));
    return 1 + smallestBelow((h) => laplaceUpperTail(h, t), target, t);
  }
  const s2 = toNumber(toRational(mechanism.sigma2, 'sigma2'));
  const z = discreteGaussianNormalizer(s2);
  return 1 + smallestBelow((h) => gaussianUpperTail(h, s2, z), target, Math.sqrt(s2));
}
