/**
 * The analytic Gaussian mechanism: the smallest σ for which adding N(0, σ²) to a query of L2
 * sensitivity Δ is (ε, δ)-DP, from the *exact* privacy profile of the Gaussian rather than a
 * tail bound. Source: B. Balle, Y.-X. Wang, "Improving the Gaussian Mechanism for Differential
 * Privacy: Analytical Calibration and Optimal Denoising", ICML 2018 (arXiv:1805.06530),
 * Theorem 8 and Algorithm 1:
 *
 *     δ(ε; μ) = Φ(−ε/μ + μ/2) − e^ε · Φ(−ε/μ − μ/2),   μ = Δ/σ,
 *
 * which is also the trade-off of μ-Gaussian DP (Dong, Roth, Su 2022, Cor. 2.13). δ is
 * strictly increasing in μ, so the largest μ with δ(ε; μ) ≤ δ is found by bisection (the
 * paper's Alg. 1 does the same search in a reparametrisation); every returned σ has been
 * checked to meet δ, so imprecision only costs utility, never privacy.
 *
 * Composition of Gaussian mechanisms is again Gaussian with μ² = Σ μᵢ² (Dong–Roth–Su Cor. 3.3),
 * so the same profile is the exact (PLD) accountant for a sequence of Gaussian releases
 * (src/privacy/accounting/pld.ts).
 */
import { normalCdf } from './normal.ts';
import { MechanismParameterInvalid } from './errors.ts';

/** δ(ε) of the Gaussian mechanism with μ = Δ/σ (Balle & Wang 2018, Thm 8). 0 when μ = 0. */
export function gaussianDelta(epsilon: number, mu: number): number {
  if (!(mu >= 0) || !Number.isFinite(mu)) throw new MechanismParameterInvalid('mu must be a finite number >= 0');
  if (mu === 0) return 0;
  if (epsilon === Infinity) return 0;
  const a = normalCdf(-epsilon / mu + mu / 2);
  // e^ε·Φ(b) in log space: e^ε overflows long before the product does.
  const bTail = normalCdf(-epsilon / mu - mu / 2);
  const b = bTail === 0 ? 0 : Math.exp(epsilon + Math.log(bTail));
  return Math.min(1, Math.max(0, a - b));
}

/** Largest μ = Δ/σ with δ(ε; μ) ≤ δ (checked). */
export function analyticGaussianMu(epsilon: number, delta: number): number {
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new MechanismParameterInvalid('epsilon must be a finite number > 0');
  if (!(delta > 0 && delta < 1)) throw new MechanismParameterInvalid('delta must lie strictly between 0 and 1');
  let lo = 0, hi = 1;
  while (gaussianDelta(epsilon, hi) <= delta) { lo = hi; hi *= 2; if (hi > 1e6) break; }
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (mid <= lo || mid >= hi) break;
    if (gaussianDelta(epsilon, mid) <= delta) lo = mid; else hi = mid;
  }
  return lo;
}

/** Smallest σ making the Gaussian mechanism on a sensitivity-Δ query (ε, δ)-DP (Balle & Wang 2018, Alg. 1). */
export function analyticGaussianSigma(epsilon: number, delta: number, sensitivity = 1): number {
  if (!(sensitivity > 0) || !Number.isFinite(sensitivity)) throw new MechanismParameterInvalid('sensitivity must be a finite number > 0');
  return sensitivity / analyticGaussianMu(epsilon, delta);
}

/** Smallest ε with δ(ε; μ) ≤ δ, by bisection on the decreasing profile (checked). */
export function gaussianEpsilon(mu: number, delta: number): number {
  if (mu === 0) return 0;
  let hi = mu * mu / 2 + mu * Math.sqrt(2 * Math.log(1 / delta)) + 1;
  while (gaussianDelta(hi, mu) > delta) hi *= 2;
  let lo = 0;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (mid <= lo || mid >= hi) break;
    if (gaussianDelta(mid, mu) <= delta) hi = mid; else lo = mid;
  }
  return hi;
}
