/**
 * A quantile and its 95 % interval from a noisy histogram, read off the posterior of the
 * histogram's cumulative counts rather than from a bound on the noise.
 *
 * Model: bucket b of the bounded range holds nᵦ values, released as cᵦ = nᵦ + Xᵦ with known
 * independent noise of variance v (discrete Gaussian σ², or 2t² for the discrete Laplace).
 * Under a flat prior the posterior of any linear function of the counts is centred on the same
 * function of the released counts with the noise's variance (Gelman et al., Bayesian Data
 * Analysis, §2.5 and §3.5). For a point x at fraction p of bucket k, the statistic
 *     D(x) = F(x) − q·N = Σ_{b<k} nᵦ + p·nₖ − q·Σ_b nᵦ   (positive iff x is above the q-quantile)
 * is such a function, with weights wᵦ = 1 − q (b < k), p − q (b = k), −q (b > k), plus the
 * spread of the nₖ values inside their bucket (uniform: a binomial term nₖ·p(1 − p)). The
 * posterior probability that x lies below the quantile is Φ(D̂(x)/√(v·Σwᵦ² + ĉₖ·p(1 − p))), and
 * at the true quantile the test |D̂| ≤ z·sd has frequentist coverage 95 % (Neyman inversion).
 *
 * Evaluated at 16 points per bucket; no randomness, deterministic and O(buckets × 16).
 * Post-processing only: it spends no privacy.
 */

export interface HistogramNoise {
  readonly kind: 'gaussian' | 'laplace';
  /** σ (Gaussian) or the Laplace scale t, in counts. */
  readonly scale: number;
}

const Z95 = 1.959963984540054;
const STEPS = 16;

/**
 * Point and 95 % interval of the q-quantile from a noisy histogram over `bounds`.
 *
 * On a grid of STEPS points per bucket, z(x) = D̂(x)/sd(x) is the standardised statistic above;
 * Φ(z(x)) is the posterior probability that the quantile lies below x. Those probabilities need
 * not increase with x (the noise is a random walk), so they are monotonically rearranged into a
 * distribution function (Chernozhukov, Fernández-Val, Galichon, "Quantile and probability curves
 * without crossing", Econometrica 78, 2010: sorting the values of a curve over a uniform grid):
 * the interval runs from lo + |{x : Φ(z(x)) < 2.5 %}| to hi − |{x : Φ(z(x)) > 97.5 %}| and the
 * point is lo + |{x : z(x) < 0}|, the rearranged posterior's median (so it always lies inside).
 * Unlike the hull of {x : |z(x)| ≤ z₉₇.₅} (the previous construction, which had to take in every
 * noise-made island and covered 96–99.8 %), the rearranged interval has the length of that set:
 * interval-coverage.test.ts measures the coverage per size band.
 * The point is null when the noisy row count (or the noisy total) is below one.
 */
export function quantileWithInterval(counts: readonly number[], bounds: readonly [number, number], q: number, noise: HistogramNoise, rowCount: { readonly value: number; readonly variance: number } | null = null, z = Z95): { value: number | null; interval: [number, number] } {
  const B = counts.length;
  const [lo, hi] = bounds;
  const cell = (hi - lo) / (B * STEPS);
  let total = 0;
  for (const c of counts) total += c;
  const v = noise.kind === 'gaussian' ? noise.scale * noise.scale : 2 * noise.scale * noise.scale;
  // With an independently noised row count N̂ (the query's count(column)), D̂(x) = Ĉ(x) − q·N̂ draws
  // noise from the buckets below x and from N̂ only; otherwise N is the histogram's own total.
  const n = rowCount ? rowCount.value : total;
  const qq = Math.min(1, Math.max(0, q));
  let below = 0, above = 0, negative = 0;
  for (let k = 0, before = 0; k < B; before += counts[k]!, k++) {
    const ck = counts[k]!;
    for (let s = 0; s < STEPS; s++) {
      const p = (s + 0.5) / STEPS;
      const d = before + p * ck - qq * n;
      const sd = statisticSd(v, B, k, p, ck, qq, rowCount);
      if (d < 0) negative++;
      if (d < -z * sd) below++;
      else if (d > z * sd) above++;
    }
  }
  const value = n < 1 ? null : lo + negative * cell;
  return { value, interval: [lo + below * cell, hi - above * cell] };
}

/** sd of D̂(x) at fraction p of bucket k: the buckets' noise (variance v each), N̂'s, and the spread inside bucket k. */
function statisticSd(v: number, B: number, k: number, p: number, ck: number, q: number, rowCount: { readonly variance: number } | null): number {
  const noiseVar = rowCount
    ? v * (k + p * p) + q * q * rowCount.variance
    : v * (k * (1 - q) ** 2 + (p - q) ** 2 + (B - k - 1) * q * q);
  return Math.sqrt(noiseVar + Math.max(0, ck) * p * (1 - p));
}

/**
 * The standardised statistic z(x) = D̂(x)/sd(x) at one point x of the range: the pointwise test
 * the interval is built from (|z| ≤ 1.96 at the true quantile 95 % of the time). Exposed so the
 * coverage measurement can check that test apart from the rearrangement that turns it into an interval.
 */
export function quantileStatistic(counts: readonly number[], bounds: readonly [number, number], q: number, noise: HistogramNoise, rowCount: { readonly value: number; readonly variance: number } | null, x: number): number {
  const B = counts.length;
  const [lo, hi] = bounds;
  const at = Math.min(B, Math.max(0, ((x - lo) / (hi - lo)) * B));
  const k = Math.min(B - 1, Math.floor(at)), p = at - k;
  let before = 0, total = 0;
  for (let b = 0; b < B; b++) { total += counts[b]!; if (b < k) before += counts[b]!; }
  const v = noise.kind === 'gaussian' ? noise.scale * noise.scale : 2 * noise.scale * noise.scale;
  const qq = Math.min(1, Math.max(0, q));
  const n = rowCount ? rowCount.value : total;
  return (before + p * counts[k]! - qq * n) / statisticSd(v, B, k, p, counts[k]!, qq, rowCount);
}
