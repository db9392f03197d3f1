/**
 * Measures how often the stated 95 % intervals of a DP release cover the truth, on data with
 * known truth (issue #16): groups of bounded amounts (exponential, mean ≈ 180, clipped to
 * [0, 1000]); the release's own code (planNoise for the noise, outputsFor for values and intervals)
 * is called in memory, with noise drawn from the exact discrete Gaussian by a seeded generator, so
 * the measurement is deterministic and takes seconds. Used by interval-coverage.test.ts and
 * scripts/dp-figures.ts.
 */
import type { DpReleasePlan } from '../../query/govern/differential-privacy.ts';
import type { CellValue } from '../../engine/engine.ts';
import { outputsFor, planNoise, type NoisePlan } from '../release.ts';
import { quantileStatistic, quantileWithInterval } from './quantile-posterior.ts';

export const COVERAGE_OUTPUTS = ['count', 'sum', 'avg', 'median', 'p90'] as const;
export { BOUNDS as COVERAGE_BOUNDS };
export const COVERAGE_BANDS: readonly (readonly [number, number])[] = [[20, 60], [60, 200], [200, 1000], [1000, 5000]];

/** sfc32, a small seeded generator (the test's data and noise must be reproducible). */
interface Rng { uniform(): number }
function seeded(seed: number): Rng {
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
  return { uniform: next };
}

const BOUNDS: [number, number] = [0, 1000];
const BUCKETS = 64;

export function coveragePlan(epsilon: number): DpReleasePlan {
  return {
    dataset: 'claims', keyCount: 0, unitsMeasure: -1, publicDomains: [], orderBy: [], limit: null, offset: 0,
    measures: [
      { kind: 'nonNull', column: 'amount', l1: 1, l2: 1, linf: 1, resultIndex: 0 },
      { kind: 'sum', column: 'amount', l1: 1000, l2: 1000, linf: 1000, resultIndex: 1 },
      { kind: 'histogram', column: 'amount', l1: 1, l2: 1, linf: 1, resultIndex: 2, buckets: BUCKETS, bounds: BOUNDS },
    ],
    outputs: [
      { kind: 'count', alias: 'n', measure: 0 },
      { kind: 'sum', alias: 'total', measure: 1 },
      { kind: 'avg', alias: 'mean', sum: 1, count: 0, bounds: BOUNDS },
      { kind: 'quantile', alias: 'median', measure: 2, q: 0.5 },
      { kind: 'quantile', alias: 'p90', measure: 2, q: 0.9 },
    ],
    def: { mechanism: 'gaussian', epsilon, delta: 1e-7, maxGroupsPerUnit: 1, maxRowsPerUnitPerGroup: 1, publicGroups: {}, budget: { epsilon: 10, delta: 1e-6, window: null, per: 'principal' } },
  } as unknown as DpReleasePlan;
}

/** Exact N_Z(0, σ²) by inverse CDF with a seeded uniform. */
function discreteGaussianSeeded(sigma2: number, rng: Rng): () => number {
  const half = Math.ceil(Math.sqrt(sigma2) * 12) + 1;
  const cdf = new Float64Array(2 * half + 1);
  let acc = 0;
  for (let i = 0; i <= 2 * half; i++) { const x = i - half; acc += Math.exp(-(x * x) / (2 * sigma2)); cdf[i] = acc; }
  for (let i = 0; i < cdf.length; i++) cdf[i]! /= acc;
  return () => {
    const u = rng.uniform();
    let lo = 0, hi = cdf.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[mid]! < u) lo = mid + 1; else hi = mid; }
    return lo - half;
  };
}

const sigma2Of = (s: string): number => { const [a, b] = s.split('/'); return Number(a) / Number(b ?? 1); };

export function coverage(noise: NoisePlan, sizes: readonly [number, number], trials: number, seed: number): number[] {
  return simulate(noise, sizes, trials, seed).covered;
}

/**
 * Per output: the fraction of groups covered, and of groups whose interval lies entirely below the
 * truth. For the two quantiles (median, p90), also how often the pointwise test the interval is
 * built from rejects the true quantile on each side (z(x*) < −1.96, z(x*) > 1.96): each should be
 * about 2.5 % if the test is calibrated, whatever the rearrangement into an interval then does.
 * And the median width of the released quantile intervals (ends calibrated) beside that of the
 * nominal ones (t = ∓1.96) on the same groups, so a calibration that only widens shows.
 * `onHistogram` sees each group's released histogram and row count, and its true median and p90.
 */
export function simulate(noise: NoisePlan, sizes: readonly [number, number], trials: number, seed: number, onHistogram?: (counts: number[], rowCount: { value: number; variance: number }, quantiles: readonly [number, number]) => void): { covered: number[]; missedAbove: number[]; testBelow: number[]; testAbove: number[]; medianWidth: { calibrated: number; nominal: number }[] } {
  const rng = seeded(seed);
  const samplers = noise.measures.map((m) => discreteGaussianSeeded(sigma2Of((m.mechanism as { sigma2: string }).sigma2), rng));
  const hits = [0, 0, 0, 0, 0], above = [0, 0, 0, 0, 0], testBelow = [0, 0], testAbove = [0, 0];
  const hm = noise.measures[2]!, cm = noise.measures[0]!;
  const widths: [number[], number[]][] = [[[], []], [[], []]];
  for (let t = 0; t < trials; t++) {
    const n = sizes[0] + Math.floor(rng.uniform() * (sizes[1] - sizes[0] + 1));
    const values = Array.from({ length: n }, () => Math.min(1000, -180 * Math.log(1 - rng.uniform())));
    const hist = new Array<number>(BUCKETS).fill(0);
    for (const v of values) hist[Math.min(BUCKETS - 1, Math.floor((v / 1000) * BUCKETS))]!++;
    const sum = values.reduce((a, b) => a + b, 0);
    const sorted = [...values].sort((a, b) => a - b);
    const truth = [n, sum, sum / n, sorted[Math.ceil(0.5 * n) - 1]!, sorted[Math.ceil(0.9 * n) - 1]!];
    const g = noise.measures[1]!.granularity;
    const noisy: (number | number[])[] = [n + samplers[0]!(), (Math.round(sum / g) + samplers[1]!()) * g, hist.map((c) => c + samplers[2]!())];
    const out = outputsFor(noise, [] as CellValue[], noisy);
    onHistogram?.(noisy[2] as number[], { value: noisy[0] as number, variance: cm.scale * cm.scale }, [truth[3]!, truth[4]!]);
    out.intervals.forEach((iv, i) => {
      if (iv && iv[0] <= truth[i]! && truth[i]! <= iv[1]) hits[i]!++;
      else if (iv && iv[1] < truth[i]!) above[i]!++;
    });
    [0.5, 0.9].forEach((q, j) => {
      const rows = { value: noisy[0] as number, variance: cm.scale * cm.scale };
      const z = quantileStatistic(noisy[2] as number[], BOUNDS, q, { kind: hm.mechanism.kind, scale: hm.scale }, rows, truth[3 + j]!);
      const released = out.intervals[3 + j]!, nominal = quantileWithInterval(noisy[2] as number[], BOUNDS, q, { kind: hm.mechanism.kind, scale: hm.scale }, rows, 'nominal').interval;
      widths[j]![0].push(released[1] - released[0]);
      widths[j]![1].push(nominal[1] - nominal[0]);
      if (z < -1.959963984540054) testBelow[j]!++;
      else if (z > 1.959963984540054) testAbove[j]!++;
    });
  }
  const rate = (xs: number[]): number[] => xs.map((h) => h / trials);
  const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2; };
  const medianWidth = widths.map(([c, n]) => ({ calibrated: median(c), nominal: median(n) }));
  return { covered: rate(hits), missedAbove: rate(above), testBelow: rate(testBelow), testAbove: rate(testAbove), medianWidth };
}


/** The seed of band `bi` at ε, shared by coverageTable and the per-tail figures. */
export function coverageSeed(epsilon: number, bi: number): number {
  return 1000 * bi + Math.round(epsilon * 10);
}

/** Coverage per band and output at ε (Gaussian, δ = 1e-7, one row per unit). */
export function coverageTable(epsilon: number, trials: number): number[][] {
  const noise = planNoise(coveragePlan(epsilon));
  return COVERAGE_BANDS.map((band, bi) => coverage(noise, band, trials, coverageSeed(epsilon, bi)));
}
