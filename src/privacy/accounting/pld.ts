/**
 * A privacy-loss-distribution (PLD) accountant for the sequence of releases a budget pays for:
 * it reports the exact δ(ε) of their composition, so a budget of (ε, δ) admits as many
 * releases as optimal composition allows — not the looser count of a ρ (zCDP) ledger.
 *
 * Sources:
 *  - [KOV15] P. Kairouz, S. Oh, P. Viswanath, "The Composition Theorem for Differential
 *    Privacy", ICML 2015 / IEEE T-IT 2017: every ε-DP mechanism is dominated by randomized
 *    response RR(ε) (Thm 2.5, via Blackwell), and composing RR is the optimal composition
 *    (Thm 3.3, closed form for k homogeneous mechanisms).
 *  - [SMM19] D. Sommer, S. Meiser, E. Mohammadi, "Privacy Loss Classes: The Central Limit
 *    Theorem in Differential Privacy", PoPETs 2019; [KJH20] A. Koskela, J. Jälkö, A. Honkela,
 *    "Computing Tight Differential Privacy Guarantees Using FFT", AISTATS 2020: the privacy
 *    loss L of a composition is the sum of independent losses and δ(ε) = E[(1 − e^{ε−L})₊].
 *  - [DGKKM22] V. Doroshenko, B. Ghazi, P. Kamath, R. Kumar, P. Manurangsi, "Connect the Dots:
 *    Tighter Discrete Approximations of Privacy Loss Distributions", PoPETs 2022 (Google's
 *    dp_accounting): pessimistic discretisation — rounding each loss *up* to a grid keeps the
 *    result an upper bound.
 *  - [BW18] B. Balle, Y.-X. Wang, ICML 2018, and [DRS22] J. Dong, A. Roth, W. Su, "Gaussian
 *    Differential Privacy", JRSS-B 2022, Cor. 3.3: Gaussian mechanisms compose to one Gaussian
 *    with μ² = Σ μᵢ², whose δ(ε) is the closed form of analytic-gaussian.ts.
 *
 * What a release is charged (a PrivacyLoss):
 *  - pure: the ε of each pure-DP release (discrete Laplace), each accounted as RR(ε) [KOV15];
 *  - mu2: Σ (Δ/σ)² of its Gaussian noise, accounted as one Gaussian [DRS22];
 *  - delta: δ paid outright (partition selection's chance of releasing a one-unit group),
 *    added to the composed δ (an (ε, δ) mechanism is dominated by "reveal with probability δ,
 *    else the ε part" [KOV15 Thm 2.5]; a union bound over the releases).
 * The composed loss is the sum of a lattice variable (the RRs, rounded up to a grid of
 * 10⁻³ in ε [DGKKM22], convolved exactly) and an independent Gaussian loss N(μ²/2, μ²);
 * δ(ε) = Σⱼ pⱼ·δ_G(ε − ℓⱼ; μ) + Σ δ, exact up to the grid rounding, which only adds privacy loss.
 *
 * The discrete Gaussian is accounted with the continuous Gaussian's profile (its ρ-zCDP bound
 * is the continuous one, CKS 2020 Thm 4; its single-release δ, CKS 2020 Thm 7, is checked
 * against the continuous one in pld.test.ts); docs/privacy-budgets.md states this.
 */
import { gaussianDelta } from '../mechanisms/analytic-gaussian.ts';
import { DpParameterInvalid } from './errors.ts';

export interface PrivacyLoss {
  /** ε of each pure-DP part (each composed as randomized response). */
  readonly pure: readonly number[];
  /** Σ (Δ/σ)² of the Gaussian parts. */
  readonly mu2: number;
  /** δ paid outright (e.g. partition selection). */
  readonly delta: number;
}

export const NO_LOSS: PrivacyLoss = Object.freeze({ pure: Object.freeze([]), mu2: 0, delta: 0 });

/** Pure ε are rounded up to multiples of this before composing (pessimistic grid [DGKKM22]). */
export const GRID_STEPS_PER_UNIT = 1000;
export const PURE_GRID = 1 / GRID_STEPS_PER_UNIT;
/** Lattice points whose probability falls below this are merged upwards (to the largest loss kept). */
const MASS_FLOOR = 1e-300;

function check(loss: PrivacyLoss): void {
  if (typeof loss !== 'object' || loss === null || !Array.isArray(loss.pure)) throw new DpParameterInvalid('a privacy loss needs pure, mu2 and delta');
  for (const e of loss.pure) if (typeof e !== 'number' || !(e > 0) || !Number.isFinite(e)) throw new DpParameterInvalid('each pure epsilon must be a finite number > 0');
  if (typeof loss.mu2 !== 'number' || !(loss.mu2 >= 0) || !Number.isFinite(loss.mu2)) throw new DpParameterInvalid('mu2 must be a finite number >= 0');
  if (typeof loss.delta !== 'number' || !(loss.delta >= 0 && loss.delta < 1)) throw new DpParameterInvalid('delta must be in [0, 1)');
}

/** The composition of several losses (adaptive sequential composition). */
export function composeLosses(losses: readonly PrivacyLoss[]): PrivacyLoss {
  const pure: number[] = [];
  let mu2 = 0, delta = 0;
  for (const l of losses) { check(l); pure.push(...l.pure); mu2 += l.mu2; delta += l.delta; }
  return { pure, mu2, delta: Math.min(delta, 1) };
}

/**
 * The distribution of Σ ±εᵢ under the "upper" member of each RR(εᵢ) pair: +εᵢ with probability
 * e^{εᵢ}/(1+e^{εᵢ}), −εᵢ otherwise. Keys are grid indices (loss = index·PURE_GRID).
 */
function pureLossLattice(pure: readonly number[]): Map<number, number> {
  let dist = new Map<number, number>([[0, 1]]);
  for (const e of pure) {
    const k = Math.ceil(e * GRID_STEPS_PER_UNIT); // ×1000 is exact for integers, and rounds up otherwise
    const eps = k / GRID_STEPS_PER_UNIT;
    const up = 1 / (1 + Math.exp(-eps)), down = 1 - up;
    const next = new Map<number, number>();
    for (const [i, p] of dist) {
      next.set(i + k, (next.get(i + k) ?? 0) + p * up);
      next.set(i - k, (next.get(i - k) ?? 0) + p * down);
    }
    dist = next;
    if (dist.size > 200_000) throw new DpParameterInvalid('too many distinct pure-DP releases to compose in one budget window');
  }
  return dist;
}

/** δ(ε) of the composition: the smallest δ for which it is (ε, δ)-DP (up to the pessimistic grid). */
export function deltaAt(loss: PrivacyLoss, epsilon: number): number {
  check(loss);
  if (!(epsilon >= 0)) throw new DpParameterInvalid('epsilon must be >= 0');
  const mu = Math.sqrt(loss.mu2);
  let d = 0;
  for (const [i, p] of pureLossLattice(loss.pure)) {
    if (p < MASS_FLOOR) continue;
    const l = i / GRID_STEPS_PER_UNIT;
    // E[(1 − e^{ε − l − G})₊] for the Gaussian part G ~ N(μ²/2, μ²): the Gaussian profile at ε − l.
    if (mu === 0) { if (l > epsilon) d += p * -Math.expm1(epsilon - l); continue; }
    const shifted = epsilon - l;
    // The Balle–Wang closed form holds for every real ε − l, negative included.
    d += p * gaussianDelta(shifted, mu);
  }
  return Math.min(1, d + loss.delta);
}

/** Smallest ε with δ(ε) ≤ δ (bisection; the returned ε was checked). Infinity if no ε fits (δ ≤ paid δ). */
export function epsilonAt(loss: PrivacyLoss, delta: number): number {
  if (!(delta > 0 && delta < 1)) throw new DpParameterInvalid('delta must be in (0, 1)');
  if (loss.delta >= delta) return Infinity;
  const pureMax = loss.pure.reduce((a, b) => a + b, 0);
  let hi = pureMax + loss.mu2 / 2 + Math.sqrt(loss.mu2) * Math.sqrt(2 * Math.log(1 / (delta - loss.delta))) + 1e-9;
  while (deltaAt(loss, hi) > delta) hi = hi * 2 + 1;
  let lo = 0;
  if (deltaAt(loss, 0) <= delta) return 0;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (mid <= lo || mid >= hi || hi - lo < 1e-9) break;
    if (deltaAt(loss, mid) <= delta) hi = mid; else lo = mid;
  }
  return hi;
}

/** Whether the composition is (ε, δ)-DP. */
export function fitsBudget(loss: PrivacyLoss, budget: { readonly epsilon: number; readonly delta: number }): boolean {
  return deltaAt(loss, budget.epsilon) <= budget.delta;
}

/** How many copies of `each` fit in `budget` (for planning and for the figures). */
export function releasesThatFit(each: PrivacyLoss, budget: { readonly epsilon: number; readonly delta: number }, max = 10_000): number {
  let lo = 0, hi = 1;
  const fits = (k: number): boolean => fitsBudget(repeat(each, k), budget);
  while (hi <= max && fits(hi)) { lo = hi; hi *= 2; }
  hi = Math.min(hi, max + 1);
  while (hi - lo > 1) { const mid = Math.floor((lo + hi) / 2); if (fits(mid)) lo = mid; else hi = mid; }
  return lo;
}

export function repeat(each: PrivacyLoss, k: number): PrivacyLoss {
  return composeLosses(Array.from({ length: k }, () => each));
}
