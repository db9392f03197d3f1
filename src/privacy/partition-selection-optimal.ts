/**
 * Partition selection strategies compared by how many groups they keep at the same (ε, δ).
 *
 * - Optimal for one group per unit (L = 1): Desfontaines, Voss, Gipson, Mandayam,
 *   "Differentially private partition selection", PoPETs 2022, Thm 1: a group of n units is
 *   kept with probability πₙ, π₀ = 0,
 *       πₙ = min(e^ε·πₙ₋₁ + δ,  1 + e^{−ε}·(πₙ₋₁ + δ − 1),  1),
 *   the largest keep probabilities any (ε, δ)-DP mechanism can have.
 * - Laplace thresholding (the paper's §4 baseline; Google's library default): keep when
 *   n + Lap_Z(L/ε) ≥ τ with P(1 + X ≥ τ) ≤ δ/L.
 * - Gaussian thresholding: keep when n + N_Z(0, σ²) ≥ τ, σ from the analytic Gaussian at (ε, δ) with
 *   L2 sensitivity √L and τ with P(1 + X ≥ τ) ≤ δ/L (partition-selection.ts).
 *
 * `chooseSelection` picks, for the group sizes the caller expects, the strategy with the largest
 * expected kept fraction; expected kept fractions are reported by --estimate.
 */
import { analyticGaussianSigma } from './mechanisms/analytic-gaussian.ts';
import { discreteGaussianNormalizer } from './mechanisms/discrete-gaussian.ts';
import { friendlySigma2 } from './mechanisms/friendly-variance.ts';
import { selectionThreshold } from './partition-selection.ts';

export type SelectionStrategy = 'optimal' | 'laplace-threshold' | 'gaussian-threshold';

/** π₀..π_max of the optimal mechanism for L = 1 (DVGM 2022, Thm 1). */
export function optimalKeepProbabilities(epsilon: number, delta: number, max: number): Float64Array {
  const pi = new Float64Array(max + 1);
  const e = Math.exp(epsilon), ie = Math.exp(-epsilon);
  for (let n = 1; n <= max; n++) pi[n] = Math.min(e * pi[n - 1]! + delta, 1 + ie * (pi[n - 1]! + delta - 1), 1);
  return pi;
}

/** P(n + X ≥ τ) for the discrete Laplace with scale t: X ≥ τ − n. */
function laplaceAtLeast(h: number, t: number): number {
  const r = Math.exp(-1 / t);
  if (h <= 0) return 1 - (Math.exp(-(-h + 1) / t)) / (1 + r); // 1 − P(X ≤ h − 1) = 1 − P(X ≥ 1 − h)
  return Math.exp(-h / t) / (1 + r);
}

/** P(n + X ≥ τ) for N_Z(0, σ²), summed (σ is small for selection). */
function gaussianAtLeast(h: number, s2: number): number {
  const z = discreteGaussianNormalizer(s2);
  const lim = Math.ceil(Math.sqrt(s2) * 40) + 1;
  let s = 0;
  for (let x = Math.max(h, -lim); x <= lim; x++) s += Math.exp(-(x * x) / (2 * s2));
  return Math.min(1, s / z);
}

/** Probability that a group of n units is kept, for each n in 0..max. */
export function keepProbabilities(strategy: SelectionStrategy, epsilon: number, delta: number, groupsPerUnit: number, max: number): Float64Array {
  if (strategy === 'optimal') {
    if (groupsPerUnit !== 1) throw new RangeError('the optimal partition selection is for one group per unit');
    return optimalKeepProbabilities(epsilon, delta, max);
  }
  const out = new Float64Array(max + 1);
  if (strategy === 'laplace-threshold') {
    const t = groupsPerUnit / epsilon;
    const tau = selectionThreshold({ kind: 'laplace', scale: String(t) }, delta / groupsPerUnit);
    for (let n = 1; n <= max; n++) out[n] = laplaceAtLeast(tau - n, t);
    return out;
  }
  const s2str = friendlySigma2(analyticGaussianSigma(epsilon, delta, Math.sqrt(groupsPerUnit)) ** 2);
  const [a, b] = s2str.split('/');
  const s2 = Number(a) / Number(b ?? 1);
  const tau = selectionThreshold({ kind: 'gaussian', sigma2: s2str }, delta / groupsPerUnit);
  for (let n = 1; n <= max; n++) out[n] = gaussianAtLeast(tau - n, s2);
  return out;
}

/** Expected number of groups kept among groups of the given unit counts. */
export function expectedKept(strategy: SelectionStrategy, epsilon: number, delta: number, groupsPerUnit: number, unitCounts: readonly number[]): number {
  const max = Math.max(1, ...unitCounts);
  const p = keepProbabilities(strategy, epsilon, delta, groupsPerUnit, max);
  let s = 0;
  for (const n of unitCounts) s += p[Math.max(0, Math.min(max, n))]!;
  return s;
}

/** The strategy keeping the most groups of these sizes at (ε, δ); the optimal one only for L = 1. */
export function chooseSelection(epsilon: number, delta: number, groupsPerUnit: number, unitCounts: readonly number[]): { strategy: SelectionStrategy; expectedKeptFraction: number } {
  const candidates: SelectionStrategy[] = groupsPerUnit === 1 ? ['optimal', 'laplace-threshold', 'gaussian-threshold'] : ['laplace-threshold', 'gaussian-threshold'];
  let best = { strategy: candidates[0]!, expectedKeptFraction: -1 };
  for (const s of candidates) {
    const f = expectedKept(s, epsilon, delta, groupsPerUnit, unitCounts) / Math.max(1, unitCounts.length);
    if (f > best.expectedKeptFraction) best = { strategy: s, expectedKeptFraction: f };
  }
  return best;
}
