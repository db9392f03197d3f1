/**
 * Calibrates each end of a quantile's interval separately, by prepivoting (R. Beran,
 * "Prepivoting to reduce level error of confidence sets", Biometrika 74, 1987; the same idea as
 * W.-Y. Loh, "Calibrating confidence coefficients", JASA 82, 1987).
 *
 * Why: the interval of quantile-posterior.ts counts, over a grid of the range, the points whose
 * standardised statistic z(x) lies below t (the lower end) or above u (the upper end). With the
 * nominal t = −1.96, u = 1.96 each end misses about 2.5 % where the histogram's signal dominates,
 * but where its noise dominates z(x) is a random walk: the counts take in its excursions over the
 * whole range, and the ends miss unevenly (the median's lower end up to 5 %, p90's upper end
 * about 1 %, so p90 covered 97.3 %). No single constant fixes both ends in every regime.
 *
 * How (a test inversion, per end and per rank): with j grid points below the true quantile, the
 * lower end lies above the truth iff more than j points have z(x) < t, i.e. iff the (j+1)-th
 * smallest z(x), the root, is below t. So the lower end is placed at a rank j that the one-sided
 * test "root_j < t(j)" does not reject while j − 1 is rejected, where t(j) is the 2.5 % point of
 * root_j when the quantile really lies at rank j. That distribution is estimated by a parametric
 * bootstrap from the released values only (Beran's prepivoting, with the root's bootstrap
 * distribution taken under each hypothesis): a fitted histogram (the released counts projected
 * onto the non-negative histograms with the estimated row count — the Euclidean projection onto a
 * scaled simplex, Duchi et al., ICML 2008) gets fresh noise of the released mechanism's variance
 * REPLICATES times, and its drift is moved so that it crosses zero at rank j (the same fitted
 * histogram, its quantile at j). The upper end is the mirror image, from the top. The rank is
 * found by bisection (`crossing`): about ten thresholds per end, each from all replicates. The bootstrap runs
 * on a grid of BOOT_STEPS points per bucket; ranks of the interval's finer grid are scaled to it.
 *
 * quantile-posterior.ts calls this only for an end the rearrangement moved (an end whose points
 * below −1.96, or above 1.96, are not one run from the edge of the range): an end without such an
 * island is the pointwise test's own inversion, already calibrated, and costs nothing more.
 * Measured per size band in interval-coverage.test.ts and docs/privacy-mechanisms.md.
 *
 * Post-processing only: the bootstrap sees nothing but the released noisy counts and the public
 * noise scale, and its noise is a fixed pseudo-random sequence (seeded, the same for every call),
 * so the interval is a deterministic function of the released values and spends no privacy.
 * The thresholds t(j) never cross zero, so the interval always contains the point estimate.
 */

/** Bootstrap replicates per interval (the 2.5 % point lies between the 3rd and 4th smallest root). */
export const REPLICATES = 100;
/** The thresholds are kept within ±Z_LIMIT (a 10⁻⁶ tail), so a few odd replicates cannot open an end to the whole range. */
const Z_LIMIT = 4.75;

/** The inputs the grid statistic needs; see quantile-posterior.ts. */
export interface GridModel {
  /** Points per bucket. */
  readonly steps: number;
  /** q, clamped to [0, 1]. */
  readonly q: number;
  /** Noise variance of each bucket's count. */
  readonly variance: number;
  readonly kind: 'gaussian' | 'laplace';
  /** The query's own noisy row count, if it has one. */
  readonly rowCount: { readonly value: number; readonly variance: number } | null;
}

/**
 * z(x) = D̂(x)/sd(x) at every grid point, written into `out` (length buckets × steps): the statistic
 * of quantile-posterior.ts, shared here so the bootstrap replicates compute exactly what the interval does.
 */
export function standardisedGrid(counts: ArrayLike<number>, n: number, m: GridModel, rowVariance: number | null, out: Float64Array): void {
  const B = counts.length, S = m.steps, q = m.q;
  let before = 0, i = 0;
  for (let k = 0; k < B; k++) {
    const ck = counts[k]!;
    for (let s = 0; s < S; s++, i++) {
      const p = (s + 0.5) / S;
      out[i] = (before + p * ck - q * n) / Math.sqrt(statisticVariance(m.variance, B, k, p, ck, q, rowVariance));
    }
    before += ck;
  }
}

/** Variance of D̂(x) at fraction p of bucket k: the buckets' noise (v each), N̂'s if noised apart, and the spread inside bucket k. */
export function statisticVariance(v: number, B: number, k: number, p: number, ck: number, q: number, rowVariance: number | null): number {
  const noiseVar = rowVariance !== null
    ? v * (k + p * p) + q * q * rowVariance
    : v * (k * (1 - q) ** 2 + (p - q) ** 2 + (B - k - 1) * q * q);
  return noiseVar + Math.max(0, ck) * p * (1 - p);
}

/** Bootstrap grid points per bucket (the interval's grid is finer; ranks are scaled between them). */
const BOOT_STEPS = 2;

/**
 * How many grid points to cut from each end asked for in `which` (null for the other): the rank
 * where the calibrated test of that end stops rejecting. `z` is the interval's own grid statistic
 * (length buckets × m.steps); `tail` the miss probability per end (0.025 for a 95 % interval).
 */
export function calibrateEnds(counts: readonly number[], m: GridModel, tail: number, z: Float64Array, which: { readonly below: boolean; readonly above: boolean }): { below: number | null; above: number | null } {
  const t = endTests(counts, m, tail, z);
  return { below: which.below ? crossing(t.rejectedBelow, t.negative) : null, above: which.above ? crossing(t.rejectedAbove, z.length - t.negative) : null };
}

/**
 * The calibrated one-sided tests of one group: rejectedBelow(j) says the quantile has more than j
 * grid points below it, rejectedAbove(j) more than j above it. Exposed so the coverage measurement can
 * check each test at the true quantile's rank apart from the crossing that places the ends.
 */
export function endTests(counts: readonly number[], m: GridModel, tail: number, z: Float64Array): { rejectedBelow: (j: number) => boolean; rejectedAbove: (j: number) => boolean; negative: number } {
  const B = counts.length, G = B * m.steps, S = BOOT_STEPS, g = B * S, scale = m.steps / S;
  const fittedN = fittedRowCount(counts, m);
  const fit = projectOntoSimplex(counts, fittedN);
  // Cumulative fitted counts at the bootstrap grid points.
  const cum = new Float64Array(g);
  for (let k = 0, before = 0, i = 0; k < B; before += fit[k]!, k++) for (let s = 0; s < S; s++, i++) cum[i] = before + ((s + 0.5) / S) * fit[k]!;
  const draws = noiseDraws(m.kind, B + 1);
  const sd = m.kind === 'gaussian' ? Math.sqrt(m.variance) : Math.sqrt(m.variance / 2);
  const rowSd = m.rowCount ? Math.sqrt(m.rowCount.variance) : 0;
  // Per replicate r and point i: num = Ĉ*(i) − q·(N̂* − N_fit) (the statistic before its drift is
  // fixed), and 1/sd*(i). Under "the quantile lies at point j" the statistic is (num − cum[j])/sd*.
  const num = new Float64Array(REPLICATES * g), inv = new Float64Array(REPLICATES * g);
  const boot = new Float64Array(B);
  for (let r = 0, o = 0; r < REPLICATES; r++, o += B + 1) {
    let total = 0;
    for (let b = 0; b < B; b++) { boot[b] = fit[b]! + sd * draws[o + b]!; total += boot[b]!; }
    const n = m.rowCount ? fittedN + rowSd * (m.kind === 'gaussian' ? draws[o + B]! : draws[o + B]! * Math.SQRT1_2) : total;
    for (let k = 0, before = 0, i = r * g; k < B; before += boot[k]!, k++) {
      for (let s = 0; s < S; s++, i++) {
        const p = (s + 0.5) / S;
        num[i] = before + p * boot[k]! - m.q * (n - fittedN);
        inv[i] = 1 / Math.sqrt(statisticVariance(m.variance, B, k, p, boot[k]!, m.q, m.rowCount ? m.rowCount.variance : null));
      }
    }
  }
  const sorted = Float64Array.from(z).sort();
  const roots = new Float64Array(REPLICATES), work = new Float64Array(g);
  /** The `tail` point, over replicates, of the j-th smallest statistic when the quantile lies at rank j (per bootstrap rank: bisection's last steps share one). */
  const memo = new Map<number, number>();
  const threshold = (j: number, upper: boolean): number => {
    const at = Math.min(g - 1, Math.floor(j / scale));
    const rank = upper ? g - 1 - at : at;
    const key = upper ? -1 - rank : rank;
    const known = memo.get(key);
    if (known !== undefined) return known;
    const shift = cum[rank]!;
    for (let r = 0; r < REPLICATES; r++) {
      for (let i = 0; i < g; i++) work[i] = (num[r * g + i]! - shift) * inv[r * g + i]!;
      roots[r] = select(work, rank);
    }
    roots.sort();
    const t = empiricalQuantile(roots, upper ? 1 - tail : tail);
    memo.set(key, t);
    return t;
  };
  let negative = 0;
  for (const v of z) if (v < 0) negative++;
  // Lower end: the first rank j (0…negative) whose test is not rejected: sorted[j] ≥ t(j).
  const rejectedBelow = (j: number): boolean => sorted[j]! < Math.max(-Z_LIMIT, Math.min(0, threshold(j, false)));
  const rejectedAbove = (j: number): boolean => sorted[G - 1 - j]! > Math.min(Z_LIMIT, Math.max(0, threshold(j, true)));
  return { rejectedBelow, rejectedAbove, negative };
}

/**
 * A rank j in 0…limit that is accepted while j − 1 is rejected (or j = 0), by bisection over the
 * whole span: one of the crossings of the calibrated test, found with about log₂(limit) tests.
 */
export function crossing(rejected: (j: number) => boolean, limit: number): number {
  let lo = 0, hi = limit; // lo − 1 is rejected (or lo = 0); hi is accepted (or hi = limit)
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rejected(mid)) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/**
 * The row count the bootstrap's truth has: the noisy row count and the histogram's noisy total
 * combined by inverse variance (both are unbiased for N), at least one.
 */
function fittedRowCount(counts: readonly number[], m: GridModel): number {
  let total = 0;
  for (const c of counts) total += c;
  if (!m.rowCount) return Math.max(1, total);
  const vt = m.variance * counts.length, vn = m.rowCount.variance;
  const combined = vn === 0 ? m.rowCount.value : (total / vt + m.rowCount.value / vn) / (1 / vt + 1 / vn);
  return Math.max(1, combined);
}

/** Euclidean projection of `c` onto {n ≥ 0, Σn = total} (Duchi, Shalev-Shwartz, Singer, Chandra, ICML 2008, Fig. 1). */
export function projectOntoSimplex(c: readonly number[], total: number): Float64Array {
  const sorted = [...c].sort((a, b) => b - a);
  let acc = 0, theta = 0;
  for (let j = 0; j < sorted.length; j++) {
    acc += sorted[j]!;
    const t = (acc - total) / (j + 1);
    if (sorted[j]! - t > 0) theta = t;
  }
  return Float64Array.from(c, (x) => Math.max(0, x - theta));
}

/** Where the q-quantile of a histogram lies, in buckets from the bottom (values uniform inside a bucket). */
function quantilePosition(fit: Float64Array, n: number, q: number): number {
  const target = q * n;
  let before = 0;
  for (let k = 0; k < fit.length; k++) {
    const ck = fit[k]!;
    if (ck > 0 && before + ck >= target) return k + Math.max(0, target - before) / ck;
    before += ck;
  }
  return fit.length;
}

/** The k-th smallest (0-based) of xs, reordering xs in place (Hoare's selection). */
function select(xs: Float64Array, k: number): number {
  let lo = 0, hi = xs.length - 1;
  while (lo < hi) {
    const pivot = xs[(lo + hi) >> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (xs[i]! < pivot) i++;
      while (xs[j]! > pivot) j--;
      if (i <= j) { const t = xs[i]!; xs[i] = xs[j]!; xs[j] = t; i++; j--; }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return xs[k]!;
  }
  return xs[k]!;
}

/** The p-quantile of sorted values, interpolated between order statistics (Hyndman–Fan type 7); infinities pass through. */
function empiricalQuantile(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p, i = Math.floor(h), f = h - i;
  const a = sorted[i]!, b = sorted[Math.min(sorted.length - 1, i + 1)]!;
  return f === 0 || a === b ? a : a + f * (b - a);
}

/**
 * REPLICATES × width standard draws of the mechanism's shape (normal, or Laplace of variance 2),
 * from a fixed seed: every call sees the same sequence, which keeps intervals deterministic.
 */
const drawCache = new Map<string, Float64Array>();
function noiseDraws(kind: 'gaussian' | 'laplace', width: number): Float64Array {
  const key = `${kind}:${width}`;
  let d = drawCache.get(key);
  if (d) return d;
  const uniform = sfc32(0x5eed1987);
  d = new Float64Array(REPLICATES * width);
  for (let i = 0; i < d.length; i++) {
    const u1 = 1 - uniform(), u2 = uniform();
    d[i] = kind === 'gaussian'
      ? Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
      : Math.log(u1) - Math.log(1 - u2);
  }
  drawCache.set(key, d);
  return d;
}

/** sfc32 (Doty-Humphrey's PractRand), a small seeded generator for the fixed bootstrap sequence. */
function sfc32(seed: number): () => number {
  let a = seed | 0, b = 0x9e3779b9 | 0, c = 0x243f6a88 | 0, d = 1;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}
