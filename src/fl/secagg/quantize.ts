/**
 * Fixed-point quantisation into Z_{2^32}, sized so that the modular sum cannot wrap.
 *
 * Secure aggregation sums in the group Z_{2^32} (Bonawitz et al. 2017 §3: inputs and masks
 * live in Z_R, here R = 2^32 so masks are uniform 32-bit words and addition is native). A
 * real update x is encoded as q = round(x · 2^f) and stored as q mod 2^32; the sum of the
 * stored words is decoded as the unique integer in [−2^31, 2^31) congruent to it.
 *
 * Bound (why no wrap is possible). Let n be the largest number of inputs that can ever be
 * summed, A the largest |x| a participant may send (its clipping bound plus, under DP, the
 * largest noise it may add: see src/fl/dp/distributed-gaussian.ts), and M = ⌊A·2^f + ½⌋.
 * Rounding to nearest is monotone, so |x| ≤ A ⇒ |q| = |round(x·2^f)| ≤ round(A·2^f) = M.
 * The plan chooses the largest f with n·M ≤ 2^31 − 1. Then for any n' ≤ n inputs,
 * |Σ q_i| ≤ n'·M ≤ 2^31 − 1 < 2^31, so Σ q_i lies in (−2^31, 2^31), an interval of fewer
 * than 2^32 integers, and is therefore recovered exactly from Σ q_i mod 2^32. ∎
 * Values with |x| > A are refused, never silently clamped here: clipping is the model's job,
 * and a quantiser that clamped would hide a participant that did not clip.
 */
import { FlError } from '../errors.ts';

export const MODULUS_BITS = 32;
const HALF = 2 ** 31;
const FULL = 2 ** 32;
/** The largest |Σ q| that decodes: 2^31 − 1. */
export const MAX_SUM = HALF - 1;

export interface QuantiserPlan {
  /** Fractional bits: q = round(x · 2^scaleBits). */
  readonly scaleBits: number;
  /** Largest |x| accepted. */
  readonly maxAbs: number;
  /** Largest number of inputs summed. */
  readonly maxInputs: number;
  /** M = round(maxAbs · 2^scaleBits): the largest |q|. */
  readonly maxQuantised: number;
}

/**
 * The finest scale at which `maxInputs` values of magnitude ≤ `maxAbs` cannot wrap.
 * `minScaleBits` is the coarsest resolution the caller will accept (default 8 bits, a
 * resolution of 1/256 of a unit): below it the plan is refused with what to change.
 */
export function planQuantiser(maxInputs: number, maxAbs: number, minScaleBits = 8): QuantiserPlan {
  if (!Number.isInteger(maxInputs) || maxInputs < 1) throw new FlError('FL_PARAMETERS_INVALID', 'the number of participants must be a positive integer');
  if (!(maxAbs > 0) || !Number.isFinite(maxAbs)) throw new FlError('FL_PARAMETERS_INVALID', 'the clipping bound must be a positive finite number');
  let f = 52;
  while (f >= 0 && maxInputs * Math.round(maxAbs * 2 ** f) > MAX_SUM) f--;
  if (f < minScaleBits) {
    throw new FlError('FL_PARAMETERS_INVALID', `${maxInputs} participants with updates up to ${maxAbs} leave only ${Math.max(f, 0)} fractional bits in a 32-bit sum`, 'lower the clipping bound or the noise, or split the participants across rounds');
  }
  return { scaleBits: f, maxAbs, maxInputs, maxQuantised: Math.round(maxAbs * 2 ** f) };
}

/** Encodes into `out` (a fresh vector when omitted): q = round(x·2^f) mod 2^32. */
export function quantise(plan: QuantiserPlan, x: ArrayLike<number>, out = new Uint32Array(x.length)): Uint32Array {
  const s = 2 ** plan.scaleBits;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!(Math.abs(v) <= plan.maxAbs)) throw new FlError('FL_VALUE_OUT_OF_RANGE', `coordinate ${i} is outside the clipping bound ±${plan.maxAbs} (or not a number)`, 'clip the update before it is quantised');
    out[i] = Math.round(v * s); // negative q stores as q + 2^32
  }
  return out;
}

/**
 * Decodes a sum of at most plan.maxInputs encoded vectors: the representative in
 * [−2^31, 2^31) divided by 2^f.
 */
export function dequantiseSum(plan: QuantiserPlan, sum: Uint32Array): Float64Array {
  const s = 2 ** plan.scaleBits;
  const out = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const w = sum[i]!;
    out[i] = (w >= HALF ? w - FULL : w) / s;
  }
  return out;
}
