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
 * spread of the nₖ values inside their bucket (uniform: a binomial term nₖ·p(1 − p)). x belongs
 * to the interval iff the posterior probability that x lies below the quantile is between 2.5 %
 * and 97.5 %:  |D̂(x)| ≤ z·√(v·Σwᵦ² + ĉₖ·p(1 − p)). This is the test-inversion (Neyman) set
 * too, so its frequentist coverage is 95 % up to the within-bucket approximation
 * (src/privacy/interval-coverage.test.ts measures 93–97 % in every size band).
 *
 * The set is evaluated at 16 points per bucket, its edges interpolated between them; no
 * randomness, deterministic and O(buckets). Post-processing only: it spends no privacy.
 */

export interface HistogramNoise {
  readonly kind: 'gaussian' | 'laplace';
  /** σ (Gaussian) or the Laplace scale t, in counts. */
  readonly scale: number;
}

const Z95 = 1.959963984540054;
const STEPS = 16;

/**
 * Point (the plug-in quantile of the noisy counts; null when the noisy total is below one) and
 * 95 % interval (always: a group whose noisy total is tiny still gets an honest, wide interval).
 */
export function quantileWithInterval(counts: readonly number[], bounds: readonly [number, number], q: number, noise: HistogramNoise, rowCount: { readonly value: number; readonly variance: number } | null = null, z = Z95): { value: number | null; interval: [number, number] } {
  const B = counts.length;
  const [lo, hi] = bounds;
  const width = (hi - lo) / B;
  let total = 0;
  for (const c of counts) total += c;
  // Plug-in value: first bucket whose cumulative count reaches q·total, interpolated.
  const target = Math.min(1, Math.max(0, q)) * total;
  let value: number | null = total < 1 ? null : hi;
  if (value !== null) for (let i = 0, cum = 0; i < B; i++) {
    const c = counts[i]!;
    if (c > 0 && cum + c >= target) { value = lo + width * (i + Math.min(1, Math.max(0, (target - cum) / c))); break; }
    cum += c;
  }
  const v = noise.kind === 'gaussian' ? noise.scale * noise.scale : 2 * noise.scale * noise.scale;
  // m(x) = z·sd(x) − |D̂(x)| ≥ 0 inside the set; its sign changes are located by linear interpolation.
  // With an independently noised row count N̂ (the query's count(*)), D̂(x) = Ĉ(x) − q·N̂ draws noise
  // from the buckets below x and from N̂ only, not from every bucket above x: a narrower set.
  const margin = rowCount
    ? (k: number, p: number, before: number, zz: number): number => {
      const ck = counts[k]!;
      const d = before + p * ck - q * rowCount.value;
      return zz * Math.sqrt(v * (k + p * p) + q * q * rowCount.variance + Math.max(0, ck) * p * (1 - p)) - Math.abs(d);
    }
    : (k: number, p: number, before: number, zz: number): number => {
      const ck = counts[k]!;
      const d = before + p * ck - q * total;
      const w2 = k * (1 - q) ** 2 + (p - q) ** 2 + (B - k - 1) * q * q;
      return zz * Math.sqrt(v * w2 + Math.max(0, ck) * p * (1 - p)) - Math.abs(d);
    };
  const hull = (zz: number): [number, number] | null => {
    let first = Infinity, last = -Infinity, prevX = lo, prevM = -Infinity;
    for (let k = 0, before = 0; k < B; before += counts[k]!, k++) {
      for (let s = 0; s <= STEPS; s++) {
        const x = lo + width * (k + s / STEPS), m = margin(k, s / STEPS, before, zz);
        if (m >= 0) {
          const enter = prevM < 0 && Number.isFinite(prevM) ? prevX + ((x - prevX) * -prevM) / (m - prevM) : x;
          if (enter < first) first = enter;
          last = x;
        } else if (prevM >= 0 && x > prevX) {
          last = prevX + ((x - prevX) * prevM) / (prevM - m);
        }
        prevX = x; prevM = m;
      }
    }
    return first > last ? null : [Math.max(lo, first), Math.min(hi, last)];
  };
  const iv = hull(z);
  if (iv === null) return { value, interval: [lo, hi] };
  return { value, interval: value === null ? iv : [Math.min(value, iv[0]), Math.max(value, iv[1])] };
}
