/**
 * Participant-level differential privacy under secure aggregation: the distributed discrete
 * Gaussian (Kairouz, Liu, Steinke, "The Distributed Discrete Gaussian Mechanism for
 * Federated Learning with Secure Aggregation", ICML 2021).
 *
 * Each participant clips its update to L2 norm C, scales by 2^f and rounds (quantize.ts),
 * then adds its own share of the noise: independent N_Z(0, σ²/t) per coordinate from the
 * project's exact sampler (src/privacy/mechanisms/discrete-gaussian.ts, CKS 2020 Alg. 3).
 * The coordinator only ever sees the masked sum, so no party sees — or adds — the whole
 * noise. The sum of m ≥ t shares has variance ≥ σ²: the noise is planned for the threshold
 * t, the fewest inputs secure aggregation will ever unmask, so dropouts never leave the
 * release with less noise than was charged for.
 *
 * Privacy of the sum (Kairouz et al. 2021, Theorem 1): for n independent N_Z(0, s²) shares
 * (s = σ/√t here, n = t) and a neighbouring change of L2 norm ≤ Δ₂ in Z^d, the release is
 * ½ε²-concentrated DP, i.e. ρ-zCDP with ρ = ε²/2, where
 *     τ = 10 · Σ_{k=1}^{n−1} exp(−2π² s² · k/(k+1))
 *     ε = min( √(Δ₂²/(n s²) + ½ τ d),  Δ₂/(√n · s) + τ √d ).
 * For s ≥ a few units τ underflows to 0 and ρ = Δ₂²/(2σ²), the accountant's own discrete
 * Gaussian ρ (zcdp.ts rhoDiscreteGaussian) — the tests check both.
 *
 * Sensitivity in the integer domain: one participant's contribution is its rounded, clipped
 * update, of L2 norm ≤ C·2^f + √d/2 (round-to-nearest moves each coordinate by ≤ ½).
 *
 * Wrap-around: each noisy coordinate is kept within ±M of the quantiser plan, planned for
 * C plus τ_tail = 12 standard deviations of the share; P(|N_Z(0,s²)| > 12s) < 2·e^{−72} ≈
 * 10^{−31} per coordinate, so the clamp that guarantees no modular wrap essentially never acts.
 */
import { discreteGaussian } from '../../privacy/mechanisms/discrete-gaussian.ts';
import { rhoDiscreteGaussian } from '../../privacy/accounting/index.ts';
import { FlError } from '../errors.ts';
import { planQuantiser, type QuantiserPlan } from '../secagg/quantize.ts';

export const TAIL_SIGMAS = 12;

export interface DpConfig {
  /** L2 clipping bound C on one participant's update. */
  readonly clip: number;
  /** z: total noise standard deviation σ = z · Δ₂ (in the integer domain). */
  readonly noiseMultiplier: number;
}

export interface DpPlan {
  readonly quantiser: QuantiserPlan;
  /** Δ₂ in integer units. */
  readonly sensitivity: number;
  /** σ² of the whole noise, integer units. */
  readonly sigma2: number;
  /** Each participant's share s² = σ²/t. */
  readonly shareSigma2: number;
  /** Noise shares that are always present: the secure-aggregation threshold. */
  readonly contributors: number;
  /** ρ (zCDP) one round costs each participant's dataset. */
  readonly rho: number;
}

/** τ of Kairouz et al. 2021 Thm 1. */
export function kairouzTau(n: number, s2: number): number {
  let tau = 0;
  for (let k = 1; k < n; k++) tau += Math.exp(-2 * Math.PI * Math.PI * s2 * (k / (k + 1)));
  return 10 * tau;
}

/** ρ of the sum of n discrete Gaussian shares of variance s² each (Kairouz et al. 2021 Thm 1). */
export function rhoDistributedDiscreteGaussian(sensitivity: number, n: number, s2: number, d: number): number {
  if (!(sensitivity > 0) || !(s2 > 0) || !Number.isInteger(n) || n < 1 || !(d >= 1)) throw new FlError('FL_PARAMETERS_INVALID', 'sensitivity, share variance, contributors and dimension must be positive');
  const tau = kairouzTau(n, s2);
  const e1 = Math.sqrt((sensitivity * sensitivity) / (n * s2) + 0.5 * tau * d);
  const e2 = sensitivity / (Math.sqrt(n) * Math.sqrt(s2)) + tau * Math.sqrt(d);
  const eps = Math.min(e1, e2);
  return (eps * eps) / 2;
}

/**
 * The plan of one DP round: quantiser scale (room for the clipped update plus the noise
 * tail of `maxInputs` participants), sensitivity, noise and ρ.
 */
export function planDp(cfg: DpConfig, maxInputs: number, threshold: number, d: number): DpPlan {
  if (!(cfg.clip > 0) || !(cfg.noiseMultiplier > 0)) throw new FlError('FL_PARAMETERS_INVALID', 'the clipping bound and the noise multiplier must be positive');
  // Real-unit share deviation, generous for rounding: σ_real ≤ z·(C + √d) since 2^−f ≤ 1.
  const shareReal = (cfg.noiseMultiplier * (cfg.clip + Math.sqrt(d))) / Math.sqrt(threshold);
  const quantiser = planQuantiser(maxInputs, cfg.clip + TAIL_SIGMAS * shareReal, 4);
  const sensitivity = cfg.clip * 2 ** quantiser.scaleBits + Math.sqrt(d) / 2;
  const sigma2 = (cfg.noiseMultiplier * sensitivity) ** 2;
  const shareSigma2 = Math.ceil(sigma2 / threshold);
  return { quantiser, sensitivity, sigma2, shareSigma2, contributors: threshold, rho: rhoDistributedDiscreteGaussian(sensitivity, threshold, shareSigma2, d) };
}

/** Scales v in place to L2 norm ≤ C; says whether it had to. */
export function clipL2(v: Float64Array, c: number): boolean {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  if (norm <= c) return false;
  const k = c / norm;
  for (let i = 0; i < v.length; i++) v[i]! *= k;
  return true;
}

/**
 * A participant's noisy, quantised contribution: round(v·2^f) + N_Z(0, s²) per coordinate,
 * stored mod 2^32, each kept within ±M (see the header on the tail clamp).
 */
export function noisyQuantise(plan: DpPlan, v: Float64Array): Uint32Array {
  const q = plan.quantiser;
  const scale = 2 ** q.scaleBits;
  const sampler = discreteGaussian(plan.shareSigma2);
  const out = new Uint32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!(Math.abs(x) <= plan.quantiser.maxAbs)) throw new FlError('FL_VALUE_OUT_OF_RANGE', `coordinate ${i} is outside the clipping bound`, 'clip the update first');
    const z = Math.round(x * scale) + sampler.sample();
    out[i] = Math.max(-q.maxQuantised, Math.min(q.maxQuantised, z));
  }
  return out;
}

/** The accountant's ρ for the same noise as one central discrete Gaussian (cross-check). */
export function centralRho(plan: DpPlan): number {
  return rhoDiscreteGaussian(plan.sensitivity, plan.shareSigma2 * plan.contributors);
}
