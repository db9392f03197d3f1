/**
 * How private the *discrete* Gaussian really is, as μ-Gaussian DP plus a negligible additive δ,
 * so that the PLD accountant (src/privacy/accounting/pld.ts) can compose it as a Gaussian.
 *
 * The discrete Gaussian N_Z(0, σ²) on an integer query shifted by v has the exact privacy
 * profile (Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy",
 * NeurIPS 2020, Thm 7):
 *     δ_Z(ε) = P[Y > εσ²/v − v/2] − e^ε · P[Y > εσ²/v + v/2],   Y ~ N_Z(0, σ²).
 * It is a few per cent *above* the continuous Gaussian's δ(ε; v/σ) at some ε (the lattice),
 * so charging v/σ would under-count. We find the smallest μ ≥ v/σ with
 *     δ_Z(ε) ≤ δ_G(ε; μ) + η   for every ε ≥ 0     (η = ETA)
 * and charge μ. By Dong, Roth, Su, "Gaussian Differential Privacy" (JRSS-B 2022, Cor. 2.13 and
 * Thm 3.2) a mechanism whose profile lies below δ_G(·; μ) is μ-GDP and μ-GDP mechanisms compose
 * to √(Σμᵢ²)-GDP; the η part is paid as outright δ per release (Kairouz–Oh–Viswanath 2015,
 * Thm 2.5, union bound), scaled by 1/(1 − δ_G(0; μ)) to cover the mixture's weight.
 *
 * "Every ε" is checked on a grid: both profiles decrease in ε, so δ_Z(εₖ) ≤ δ_G(εₖ₊₁; μ) + η on
 * consecutive grid points implies the inequality between them. A shift v > 1 is a finer
 * lattice relative to the shift and is closer to the continuous case; discrete-gaussian-gdp.test.ts
 * checks that the factor for v = 1 covers v = 2, 3, 5.
 */
import { gaussianDelta } from './analytic-gaussian.ts';
import { discreteGaussianNormalizer } from './discrete-gaussian.ts';

/** Additive slack in δ per discrete Gaussian release; paid outright by the accountant. */
export const ETA = 1e-15;
const EPS_STEPS = 100;
const REFINE = 8;

/** P[Y > x] for Y ~ N_Z(0, σ²), x ≥ 0 real, from a precomputed upper-tail table. */
function tailTable(s2: number): (x: number) => number {
  const z = discreteGaussianNormalizer(s2);
  const sigma = Math.sqrt(s2);
  const n = Math.ceil(sigma * Math.sqrt(2 * Math.log(1e40))) + 2; // beyond n the tail is < 1e-40·Z
  const upper = new Float64Array(n + 2); // upper[k] = P[Y ≥ k]
  for (let k = n; k >= 0; k--) upper[k] = upper[k + 1]! + Math.exp(-(k * k) / (2 * s2)) / z;
  return (x: number): number => {
    const k = Math.floor(x) + 1;
    return k > n ? 0 : upper[k]!;
  };
}

/** The exact δ_Z(ε) of CKS 2020 Thm 7 for shift v (integer ≥ 1). */
export function discreteGaussianDelta(epsilon: number, sigma2: number, shift = 1): number {
  return profile(sigma2, shift)(epsilon);
}

function profile(s2: number, v: number): (eps: number) => number {
  const tail = tailTable(s2);
  // P[Y > x] for x < 0: 1 − P[Y ≤ x] = 1 − P[Y ≥ −x] = 1 − P[Y > ⌈−x⌉ − 1] by symmetry.
  const sym = (x: number): number => (x >= 0 ? tail(x) : 1 - tail(Math.ceil(-x) - 1));
  return (eps: number): number => Math.max(0, sym((eps * s2) / v - v / 2) - Math.exp(eps) * sym((eps * s2) / v + v / 2));
}

export interface DiscreteGaussianGdp {
  /** The μ to charge (≥ v/σ). */
  readonly mu: number;
  /** μ ÷ (v/σ). */
  readonly factor: number;
  /** δ to pay outright per release for the η slack. */
  readonly delta: number;
}

const cache = new Map<string, DiscreteGaussianGdp>();

/** The smallest μ (to 10⁻⁵ relative) with δ_Z ≤ δ_G(·; μ) + η everywhere on ε ≥ 0; cached per (σ², v). */
export function discreteGaussianGdp(sigma2: number, shift = 1): DiscreteGaussianGdp {
  const k = `${sigma2}/${shift}`;
  let r = cache.get(k);
  if (r === undefined) {
    r = computeGdp(sigma2, shift);
    if (cache.size >= 256) cache.delete(cache.keys().next().value!);
    cache.set(k, r);
  }
  return r;
}

function computeGdp(sigma2: number, shift: number): DiscreteGaussianGdp {
  const mu0 = shift / Math.sqrt(sigma2);
  const dz = profile(sigma2, shift);
  // ε beyond which δ_Z < η: δ_Z ≤ P[Y > εσ²/v − v/2] ≤ e^{−(εσ²/v − v/2)²/(2σ²)} (σ-subgaussian).
  const epsMax = ((shift / 2 + Math.sqrt(2 * sigma2 * Math.log(1 / ETA))) * shift) / sigma2;
  const grid = Array.from({ length: EPS_STEPS + 1 }, (_, i) => (epsMax * i) / EPS_STEPS);
  const dzs = grid.map(dz);
  // Bracket [a, b] holds if δ_Z(a) ≤ δ_G(b) + η; a failing bracket is split (up to 8² times) before giving up.
  const holds = (a: number, da: number, b: number, mu: number, depth: number): boolean => {
    if (da <= gaussianDelta(b, mu) + ETA) return true;
    if (depth === 0) return false;
    let x = a, dx = da;
    for (let j = 1; j <= REFINE; j++) {
      const y = a + ((b - a) * j) / REFINE;
      if (!holds(x, dx, y, mu, depth - 1)) return false;
      x = y; dx = dz(y);
    }
    return true;
  };
  const ok = (mu: number): boolean => {
    for (let i = 0; i < EPS_STEPS; i++) if (!holds(grid[i]!, dzs[i]!, grid[i + 1]!, mu, 2)) return false;
    return true;
  };
  let lo = mu0, hi = mu0 * 1.003;
  while (!ok(hi)) { lo = hi; hi = mu0 + (hi - mu0) * 2; }
  while ((hi - lo) / mu0 > 1e-4) { const mid = (lo + hi) / 2; if (ok(mid)) hi = mid; else lo = mid; }
  return { mu: hi, factor: hi / mu0, delta: ETA / (1 - gaussianDelta(0, hi)) };
}
