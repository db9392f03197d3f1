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
import { analyticGaussianMu, analyticGaussianSigma } from './mechanisms/analytic-gaussian.ts';
import { normalCdf } from './mechanisms/normal.ts';
import { discreteGaussianNormalizer } from './mechanisms/discrete-gaussian.ts';
import { friendlySigma2 } from './mechanisms/friendly-variance.ts';
import { selectionThreshold } from './partition-selection.ts';

export type SelectionStrategy = 'optimal' | 'optimal-gdp' | 'laplace-threshold' | 'gaussian-threshold';

/** π₀..π_max of the optimal mechanism for L = 1 (DVGM 2022, Thm 1). */
export function optimalKeepProbabilities(epsilon: number, delta: number, max: number): Float64Array {
  const pi = new Float64Array(max + 1);
  const e = Math.exp(epsilon), ie = Math.exp(-epsilon);
  for (let n = 1; n <= max; n++) pi[n] = Math.min(e * pi[n - 1]! + delta, 1 + ie * (pi[n - 1]! + delta - 1), 1);
  return pi;
}

/**
 * π₀..π_max of the optimal selection for a Gaussian query's charge (L = 1): the largest keep
 * probabilities for which each neighbouring pair Bernoulli(πₙ), Bernoulli(πₙ₊₁) is dominated by
 * "δ: reveal, else μ-GDP" — exactly what the accountant charges the Gaussian unit count plus
 * selection's δ (pld.ts), so it costs nothing more than thresholding that count.
 * The pair's trade-off is the polyline through the corner (πₙ, 1 − πₙ₊₁); that mixture's is
 * f(α) = (1 − δ)·G_μ(α/(1 − δ)) with G_μ(x) = 1 − Φ(Φ⁻¹(x) + μ) (Dong, Roth, Su, "Gaussian
 * differential privacy", JRSS-B 2022, §2). f is convex and symmetric, so the corner above f is
 * enough, in both directions:
 *     πₙ₊₁ = δ + (1 − δ)·Φ(Φ⁻¹(πₙ/(1 − δ)) + μ),  and 1 once πₙ ≥ 1 − δ,
 * the analogue of DVGM 2022, Thm 1 for μ-GDP. Each value is rounded down by 10⁻¹² relative so
 * double rounding never raises it.
 */
export function optimalGdpKeepProbabilities(mu: number, delta: number, max: number): Float64Array {
  const pi = new Float64Array(max + 1);
  for (let n = 1; n <= max; n++) {
    const prev = pi[n - 1]!;
    if (prev >= 1 - delta) { pi[n] = 1; continue; }
    const next = prev === 0 ? delta : delta + (1 - delta) * normalCdf(normalQuantile(prev / (1 - delta)) + mu);
    pi[n] = Math.min(1, next * (1 - 1e-12));
  }
  return pi;
}

/** Φ⁻¹(p) for 0 < p < 1: Acklam's rational approximation, then two Halley steps on normalCdf. */
export function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p > 1 - 0.02425) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else {
    const q = p - 0.5, r = q * q;
    x = (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  }
  for (let i = 0; i < 2; i++) {
    const e = normalCdf(x) - p;
    const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
    x -= u / (1 + (x * u) / 2);
  }
  return x;
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
  if (strategy === 'optimal' || strategy === 'optimal-gdp') {
    if (groupsPerUnit !== 1) throw new RangeError('the optimal partition selection is for one group per unit');
    return strategy === 'optimal' ? optimalKeepProbabilities(epsilon, delta, max) : optimalGdpKeepProbabilities(analyticGaussianMu(epsilon, delta), delta, max);
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
