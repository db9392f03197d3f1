/**
 * Zero-concentrated differential privacy (zCDP) accounting.
 *
 * Sources:
 *  - [BS16] M. Bun, T. Steinke. "Concentrated Differential Privacy: Simplifications,
 *    Extensions, and Lower Bounds." TCC 2016, arXiv:1605.02065.
 *      Prop. 1.3: ρ-zCDP ⇒ (ρ + 2√(ρ·ln(1/δ)), δ)-DP            (the "simple" bound)
 *      Prop. 1.4: ε-DP ⇒ ½ε²-zCDP
 *      Lemma 2.3: composition adds ρ
 *  - [CKS20] C. Canonne, G. Kamath, T. Steinke. "The Discrete Gaussian for Differential
 *    Privacy." NeurIPS 2020, arXiv:2004.00010.
 *      Thm 4 / Cor 9: discrete Gaussian N_Z(0, σ²) on a sensitivity-Δ query is ½(Δ/σ)²-zCDP
 *      Prop 12 / Cor 13: ρ-zCDP ⇒ (ε, δ)-DP with
 *        δ = inf_{α>1} exp((α−1)(αρ−ε)) / (α−1) · (1 − 1/α)^α        (the "tight" bound)
 *    and the authors' reference code (github.com/IBM/discrete-gaussian-differential-privacy,
 *    cdp2adp.py: cdp_delta, cdp_eps, cdp_rho), whose search strategy is followed here.
 *
 * Every search keeps the invariant that the value returned is a *valid* bound: any α > 1
 * gives a valid δ, `epsilonForDelta` returns an ε whose δ was checked to be ≤ the target,
 * `rhoForEpsilonDelta` returns a ρ whose δ was checked. Imprecision only costs utility.
 *
 * These functions use floating point: they are for display and planning. The budget
 * ledger (budget-store.ts) accounts ρ exactly in integer nano-units.
 */
import { DpParameterInvalid } from './errors.ts';

function finite(name: string, x: number): void {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new DpParameterInvalid(`${name} must be a finite number`);
}
function positive(name: string, x: number): void {
  finite(name, x);
  if (!(x > 0)) throw new DpParameterInvalid(`${name} must be > 0`);
}
function nonNegative(name: string, x: number): void {
  finite(name, x);
  if (!(x >= 0)) throw new DpParameterInvalid(`${name} must be >= 0`);
}
function probability(name: string, x: number): void {
  finite(name, x);
  if (!(x > 0 && x < 1)) throw new DpParameterInvalid(`${name} must be in (0, 1)`);
}

// ---------------------------------------------------------------------------------------
// Mechanisms → ρ

/** ρ of the discrete Gaussian N_Z(0, σ²) on a query of L2 sensitivity Δ: Δ²/(2σ²) [CKS20 Thm 4]. */
export function rhoDiscreteGaussian(sensitivity: number, sigma2: number): number {
  positive('sensitivity', sensitivity);
  positive('sigma2', sigma2);
  return (sensitivity * sensitivity) / (2 * sigma2);
}

/**
 * ε of the discrete Laplace (two-sided geometric) with scale t, P[x] ∝ exp(−|x|/t), on an
 * integer query of L1 sensitivity Δ: Δ/t (Ghosh, Roughgarden, Sundararajan 2009; [CKS20] §1).
 */
export function epsilonDiscreteLaplace(sensitivity: number, scale: number): number {
  positive('sensitivity', sensitivity);
  positive('scale', scale);
  return sensitivity / scale;
}

/** ε-DP ⇒ ½ε²-zCDP [BS16 Prop 1.4]. */
export function rhoFromPureEpsilon(epsilon: number): number {
  nonNegative('epsilon', epsilon);
  return (epsilon * epsilon) / 2;
}

/** ρ of the discrete Laplace with scale t on a sensitivity-Δ query: ½(Δ/t)². */
export function rhoDiscreteLaplace(sensitivity: number, scale: number): number {
  return rhoFromPureEpsilon(epsilonDiscreteLaplace(sensitivity, scale));
}

/** Sequential (adaptive) composition: ρ adds [BS16 Lemma 2.3]. */
export function composeRho(rhos: readonly number[]): number {
  let total = 0;
  for (const r of rhos) {
    nonNegative('rho', r);
    total += r;
  }
  if (!Number.isFinite(total)) throw new DpParameterInvalid('composed rho overflows');
  return total;
}

// ---------------------------------------------------------------------------------------
// ρ → (ε, δ)

/** Bisection on doubles until the midpoint no longer moves (≤ ~1100 steps, usually ~60). */
function bisect(lo: number, hi: number, goLeft: (mid: number) => boolean): { lo: number; hi: number; mid: number } {
  let mid = (lo + hi) / 2;
  for (let i = 0; i < 2000; i++) {
    mid = (lo + hi) / 2;
    if (mid <= lo || mid >= hi) break;
    if (goLeft(mid)) hi = mid;
    else lo = mid;
  }
  return { lo, hi, mid };
}

/**
 * Smallest δ such that ρ-zCDP implies (ε, δ)-DP, by [CKS20 Cor 13] (`cdp_delta`).
 * The objective is convex in α; bisection on its derivative
 * (2α−1)ρ − ε + ln(1 − 1/α) finds the minimiser. α is kept ≥ 1.01 for numerical
 * stability, as in the reference code: the optimum is ≥ (1 + ε/ρ)/2, so this only bites
 * when ε ≲ ρ, where δ is large anyway. Any α gives a valid bound.
 */
export function deltaForEpsilon(rho: number, epsilon: number): number {
  nonNegative('rho', rho);
  nonNegative('epsilon', epsilon);
  if (rho === 0) return 0;
  const { mid: alpha } = bisect(1.01, (epsilon + 1) / (2 * rho) + 2, (a) => (2 * a - 1) * rho - epsilon + Math.log1p(-1 / a) >= 0);
  const delta = Math.exp((alpha - 1) * (alpha * rho - epsilon) + alpha * Math.log1p(-1 / alpha)) / (alpha - 1);
  return Math.min(delta, 1);
}

/** δ = exp(−(ε−ρ)²/(4ρ)) for ε ≥ ρ [BS16 Prop 1.3 / Lemma 3.5]; 1 below ρ. */
export function deltaForEpsilonSimple(rho: number, epsilon: number): number {
  nonNegative('rho', rho);
  nonNegative('epsilon', epsilon);
  if (rho === 0) return 0;
  if (epsilon <= rho) return 1;
  return Math.min(1, Math.exp(-((epsilon - rho) ** 2) / (4 * rho)));
}

/** ε = ρ + 2√(ρ·ln(1/δ)) [BS16 Prop 1.3]: simple, valid, looser than `epsilonForDelta`. */
export function epsilonForDeltaSimple(rho: number, delta: number): number {
  nonNegative('rho', rho);
  probability('delta', delta);
  return rho + 2 * Math.sqrt(rho * Math.log(1 / delta));
}

/**
 * Smallest ε such that ρ-zCDP implies (ε, δ)-DP, by [CKS20 Cor 13] (`cdp_eps`): bisection
 * over ε keeping deltaForEpsilon(ρ, hi) ≤ δ, starting from the simple bound.
 */
export function epsilonForDelta(rho: number, delta: number): number {
  nonNegative('rho', rho);
  probability('delta', delta);
  if (rho === 0) return 0;
  const simple = epsilonForDeltaSimple(rho, delta);
  // The simple bound is a theorem; if rounding ever made the tight δ at it exceed the
  // target, fall back to the simple bound rather than return an unchecked ε.
  if (deltaForEpsilon(rho, simple) > delta) return simple;
  return bisect(0, simple, (eps) => deltaForEpsilon(rho, eps) <= delta).hi;
}

/**
 * Largest ρ such that ρ-zCDP implies (ε, δ)-DP, by [CKS20 Cor 13] (`cdp_rho`): bisection
 * over ρ keeping deltaForEpsilon(lo, ε) ≤ δ. Returns 0 when ε = 0.
 */
export function rhoForEpsilonDelta(epsilon: number, delta: number): number {
  nonNegative('epsilon', epsilon);
  probability('delta', delta);
  if (epsilon === 0) return 0;
  return bisect(0, epsilon + 1, (rho) => deltaForEpsilon(rho, epsilon) > delta).lo;
}

// ---------------------------------------------------------------------------------------
// Planning: ρ or (ε, δ) → noise

/** σ² of the discrete Gaussian that spends exactly ρ on a sensitivity-Δ query: Δ²/(2ρ). */
export function sigma2ForRho(rho: number, sensitivity: number): number {
  positive('rho', rho);
  positive('sensitivity', sensitivity);
  const sigma2 = (sensitivity * sensitivity) / (2 * rho);
  if (!Number.isFinite(sigma2)) throw new DpParameterInvalid('rho is too small: sigma2 overflows');
  return sigma2;
}

/**
 * σ² of the discrete Gaussian so that a sensitivity-Δ query, accounted by zCDP and shown
 * with the tight conversion, costs at most (ε, δ): σ² = Δ² / (2 · rhoForEpsilonDelta(ε, δ)).
 * (The discrete Gaussian has a tighter direct (ε, δ) analysis [CKS20 Thm 7]; budgets are
 * kept in ρ, so planning in ρ keeps estimate and charge consistent.)
 */
export function sigma2ForEpsilonDelta(epsilon: number, delta: number, sensitivity: number): number {
  positive('epsilon', epsilon);
  const rho = rhoForEpsilonDelta(epsilon, delta);
  if (!(rho > 0)) throw new DpParameterInvalid('epsilon is too small for this delta: no positive rho fits');
  return sigma2ForRho(rho, sensitivity);
}

/** Discrete Laplace scale t giving ε-DP on a sensitivity-Δ query: t = Δ/ε. */
export function scaleForEpsilon(epsilon: number, sensitivity: number): number {
  positive('epsilon', epsilon);
  positive('sensitivity', sensitivity);
  const t = sensitivity / epsilon;
  if (!Number.isFinite(t)) throw new DpParameterInvalid('epsilon is too small: scale overflows');
  return t;
}

export interface EpsilonDelta {
  readonly rho: number;
  readonly delta: number;
  /** Tight conversion [CKS20 Cor 13]: what Gatehouse displays. */
  readonly epsilon: number;
  /** Simple bound [BS16 Prop 1.3], for comparison. */
  readonly epsilonSimple: number;
}

/** The (ε, δ) display of a ρ: both conversions at the given δ. */
export function toEpsilonDelta(rho: number, delta: number): EpsilonDelta {
  return { rho, delta, epsilon: epsilonForDelta(rho, delta), epsilonSimple: epsilonForDeltaSimple(rho, delta) };
}
