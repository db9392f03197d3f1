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
 * Evaluated at 16 points per bucket, deterministic. An end the rearrangement moved is calibrated
 * by a fixed-seed parametric bootstrap (quantile-end-calibration.ts: 100 replicates per tested
 * rank, about ten ranks per end; tens to hundreds of µs). Post-processing only: it spends no privacy.
 */
import { calibrateEnds, endTests, standardisedGrid, statisticVariance, type GridModel } from './quantile-end-calibration.ts';

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
 * the interval runs from lo + |{x : z(x) < t}| to hi − |{x : z(x) > u}| and the point is
 * lo + |{x : z(x) < 0}|, the rearranged posterior's median (so it always lies inside).
 * With `ends: 'nominal'`, t = −1.96 and u = 1.96 (the rearranged 2.5 % and 97.5 % points).
 * Where the noise swamps the histogram those ends miss unevenly (p90 covered up to 97.3 %), so by
 * default each end's threshold is calibrated separately by prepivoting, from the released values
 * only (quantile-end-calibration.ts): each end then misses about 2.5 %.
 * interval-coverage.test.ts measures the coverage per size band.
 * The point is null when the noisy row count (or the noisy total) is below one; the interval is then
 * the nominal one (there is no fitted histogram to calibrate against).
 */
export function quantileWithInterval(counts: readonly number[], bounds: readonly [number, number], q: number, noise: HistogramNoise, rowCount: { readonly value: number; readonly variance: number } | null = null, ends: 'calibrated' | 'nominal' = 'calibrated'): { value: number | null; interval: [number, number] } {
  const B = counts.length;
  const [lo, hi] = bounds;
  const cell = (hi - lo) / (B * STEPS);
  let total = 0;
  for (const c of counts) total += c;
  const model = gridModel(noise, q, rowCount);
  // With an independently noised row count N̂ (the query's count(column)), D̂(x) = Ĉ(x) − q·N̂ draws
  // noise from the buckets below x and from N̂ only; otherwise N is the histogram's own total.
  const n = rowCount ? rowCount.value : total;
  const z = new Float64Array(B * STEPS);
  standardisedGrid(counts, n, model, rowCount ? rowCount.variance : null, z);
  let below = 0, above = 0, negative = 0;
  for (const zi of z) {
    if (zi < 0) negative++;
    if (zi < -Z95) below++;
    else if (zi > Z95) above++;
  }
  // An end with no island (its points all lie in one run at the edge of the range) is the
  // pointwise test's own inversion, calibrated as it is; only an end the rearrangement moved is calibrated.
  let prefix = 0, suffix = 0;
  while (prefix < z.length && z[prefix]! < -Z95) prefix++;
  while (suffix < z.length && z[z.length - 1 - suffix]! > Z95) suffix++;
  if (ends === 'calibrated' && n >= 1 && (below > prefix || above > suffix)) {
    const c = calibrateEnds(counts, model, TAIL, z, { below: below > prefix, above: above > suffix });
    below = c.below ?? below;
    above = c.above ?? above;
  }
  const value = n < 1 ? null : lo + negative * cell;
  return { value, interval: [lo + below * cell, hi - above * cell] };
}

/** Miss probability per end of a 95 % interval. */
const TAIL = 0.025;

function gridModel(noise: HistogramNoise, q: number, rowCount: { readonly value: number; readonly variance: number } | null): GridModel {
  const variance = noise.kind === 'gaussian' ? noise.scale * noise.scale : 2 * noise.scale * noise.scale;
  return { steps: STEPS, q: Math.min(1, Math.max(0, q)), variance, kind: noise.kind, rowCount };
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
  return (before + p * counts[k]! - qq * n) / Math.sqrt(statisticVariance(v, B, k, p, counts[k]!, qq, rowCount ? rowCount.variance : null));
}

/**
 * Whether the calibrated one-sided tests of quantile-end-calibration.ts reject x as the quantile
 * (too low: more grid points lie below x's rank than the test accepts; too high likewise). At the
 * true quantile each should reject about 2.5 % of the time; the interval's ends are placed where
 * they stop rejecting. Exposed for the coverage measurement.
 */
export function quantileEndTestsAt(counts: readonly number[], bounds: readonly [number, number], q: number, noise: HistogramNoise, rowCount: { readonly value: number; readonly variance: number } | null, x: number): { tooLow: boolean; tooHigh: boolean } {
  const B = counts.length, G = B * STEPS;
  const [lo, hi] = bounds;
  const model = gridModel(noise, q, rowCount);
  let total = 0;
  for (const c of counts) total += c;
  const z = new Float64Array(G);
  standardisedGrid(counts, rowCount ? rowCount.value : total, model, rowCount ? rowCount.variance : null, z);
  const t = endTests(counts, model, TAIL, z);
  const below = Math.min(G - 1, Math.max(0, Math.floor(((x - lo) / (hi - lo)) * G)));
  const above = Math.min(G - 1, Math.max(0, Math.floor(((hi - x) / (hi - lo)) * G)));
  return { tooLow: t.rejectedBelow(below), tooHigh: t.rejectedAbove(above) };
}
