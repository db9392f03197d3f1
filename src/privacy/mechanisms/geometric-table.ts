/**
 * An exact geometric sampler, P(G ≥ k) = e^{−k/t} for integers k ≥ 0 and a small integer
 * scale t, from one uniform word and a binary search: the magnitude of the discrete Laplace
 * proposal in the discrete Gaussian sampler (discrete-gaussian.ts).
 *
 * Why: Algorithm 2 of Canonne, Kamath, Steinke (NeurIPS 2020) draws that magnitude as
 * U + t·V with U uniform below t accepted with probability e^{−U/t} (a loop) and V geometric
 * in e^{−1}; at the σ² the demo uses (t = 25) that is about five words and two loops per
 * proposal, which was most of the Gaussian sampler's time.
 *
 * Method: G = #{k ≥ 1 : R < e^{−k/t}} for one uniform R ∈ [0, 1) has exactly P(G ≥ k) =
 * e^{−k/t} (the events are nested). R's first 32 binary digits W are compared with the exact
 * digits dₖ = ⌊2^32·e^{−k/t}⌋ (strictly decreasing in the table, so at most one k ties): every
 * k with dₖ > W counts, every k with dₖ < W does not, and a tie (probability ≤ 2^−32) is
 * settled by comparing R's further digits with e^{−k/t}'s (bernoulli.ts, expNegTieBreak).
 * The table stops at K entries; G ≥ K happens with probability e^{−K/t} and then, by
 * memorylessness, G = K + a fresh draw. Digits are computed exactly (exp-neg-bits.ts): as
 * powers of an outward-rounded enclosure of e^{−1/t}, and directly wherever the enclosure
 * straddles a digit boundary.
 */
import { expNegTieBreak } from './bernoulli.ts';
import { floorExpNegScaled } from './exp-neg-bits.ts';
import { randomUint32 } from './rng.ts';

/** Largest t this sampler is built for (beyond it the table would be long or cover little). */
export const MAX_GEOMETRIC_TABLE_SCALE = 4096;
/** The table covers e^{−k/t} down to about e^{−TAIL} (≈ 2·10⁻⁶): restarts are that rare. */
const TAIL = 13;

/** dₖ = ⌊2^32·e^{−k/t}⌋ for k = 1..K, strictly decreasing and positive (index k − 1). */
export function geometricDigits(t: number): Uint32Array {
  if (!Number.isSafeInteger(t) || t < 1 || t > MAX_GEOMETRIC_TABLE_SCALE) throw new RangeError(`the geometric table needs an integer scale in [1, ${MAX_GEOMETRIC_TABLE_SCALE}]`);
  const P = 160n;
  const T = BigInt(t);
  const base = floorExpNegScaled(1n, T, 160);
  const shift = P - 32n;
  const out: number[] = [];
  let lo = 1n << P, hi = 1n << P;
  for (let k = 1; k <= TAIL * t; k++) {
    lo = (lo * base) >> P;
    hi = ((hi * (base + 1n)) >> P) + 1n;
    const a = lo >> shift;
    const d = Number(a === hi >> shift ? a : floorExpNegScaled(BigInt(k), T, 32));
    if (d === 0 || (out.length > 0 && d >= out[out.length - 1]!)) break;
    out.push(d);
  }
  return Uint32Array.from(out);
}

/** A sampler of G with P(G ≥ k) = e^{−k/t}, from digits built by geometricDigits(t). */
export function geometricFromDigits(digits: Uint32Array, t: number): () => number {
  const K = digits.length;
  const T = BigInt(t);
  return () => {
    let base = 0;
    for (;;) {
      const w = randomUint32();
      // Number of k with dₖ > w: dₖ is decreasing, so find the first index with dₖ ≤ w.
      let lo = 0, hi = K;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (digits[mid]! > w) lo = mid + 1; else hi = mid;
      }
      let g = lo;
      if (lo < K && digits[lo] === w && expNegTieBreak(BigInt(lo + 1), T)) g++;
      if (g < K) return base + g;
      base += K; // G ≥ K: memoryless, draw again
    }
  };
}
