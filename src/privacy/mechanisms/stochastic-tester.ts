/**
 * A stochastic differential-privacy tester in the style of Google's DP stochastic tester
 * (google/differential-privacy cc/testing; Wilson et al., "Differentially Private SQL with
 * Bounded User Contribution", PoPETs 2020, arXiv:1909.01917 §5.3) and DP-Auditorium's
 * HistogramTester (Kong, Muñoz Medina, Ribero, Syed, "DP-Auditorium: a Large Scale Library
 * for Auditing Differential Privacy", IEEE S&P 2024).
 *
 * It runs a mechanism many times on two neighbouring datasets, bins the outputs into
 * histograms and, for every bin and every prefix/suffix union of bins (events "output ≤ x",
 * "output ≥ x"), compares P(M(D1) ∈ E) with P(M(D2) ∈ E). Proportions are replaced by
 * Chernoff–Hoeffding confidence bounds, Bonferroni-corrected over all events, so
 *
 *   epsilonLowerBound = max_E ln( (lower[P(M(D1) ∈ E)] − δ) / upper[P(M(D2) ∈ E)] )
 *                       (and the same with D1, D2 swapped)
 *
 * is, with probability ≥ 1 − alpha, a lower bound on the mechanism's true privacy loss on
 * this pair. The test fails when that lower bound exceeds the claimed ε: an ε-DP mechanism
 * fails with probability ≤ alpha, a mechanism whose loss on the pair is well above ε fails
 * once the runs resolve the difference. Passing is evidence, not proof: only the given
 * pair and the events built from the bins are examined.
 */
import { MechanismParameterInvalid } from './errors.ts';
import { proportionBounds } from './statistics.ts';

export type StochasticTestOptions = {
  /** Claimed ε (> 0). */
  readonly epsilon: number;
  /** Claimed δ (default 0). */
  readonly delta?: number;
  /** Runs per dataset (default 100 000). */
  readonly runs?: number;
  /** Most histogram bins (default 48); bins are pooled quantiles, so each holds data. */
  readonly bins?: number;
  /** Probability of failing an ε-DP mechanism (default 10^−3). */
  readonly alpha?: number;
};

export type StochasticTestResult = {
  readonly passed: boolean;
  /** Privacy loss the histograms establish with confidence 1 − alpha. */
  readonly epsilonLowerBound: number;
  /** max |ln(count1/count2)| over events where both counts are ≥ 30 (uncorrected, for display). */
  readonly epsilonPointEstimate: number;
  /** The event that gave the lower bound: outputs in [from, to]. */
  readonly worstEvent: { readonly from: number; readonly to: number; readonly count1: number; readonly count2: number } | null;
  readonly runs: number;
  readonly events: number;
};

function positiveInt(x: unknown, name: string): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 1) throw new MechanismParameterInvalid(`${name} must be a positive integer`);
  return x;
}

function countAtMost(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function stochasticPrivacyTest<D>(
  mechanism: (dataset: D) => number,
  d1: D,
  d2: D,
  options: StochasticTestOptions,
): StochasticTestResult {
  const { epsilon } = options;
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon <= 0) throw new MechanismParameterInvalid('epsilon must be a finite number > 0');
  const delta = options.delta ?? 0;
  if (!Number.isFinite(delta) || delta < 0 || delta >= 1) throw new MechanismParameterInvalid('delta must lie in [0, 1)');
  const runs = positiveInt(options.runs ?? 100_000, 'runs');
  const maxBins = positiveInt(options.bins ?? 48, 'bins');
  const alpha = options.alpha ?? 1e-3;
  if (!(alpha > 0 && alpha < 1)) throw new MechanismParameterInvalid('alpha must lie in (0, 1)');

  const out1 = new Float64Array(runs);
  const out2 = new Float64Array(runs);
  for (let i = 0; i < runs; i++) {
    out1[i] = mechanism(d1);
    out2[i] = mechanism(d2);
  }
  for (const a of [out1, out2]) {
    for (const v of a) if (Number.isNaN(v)) throw new MechanismParameterInvalid('mechanism returned NaN');
    a.sort();
  }

  // Bin edges: quantiles of the pooled outputs, deduplicated (integer outputs with few
  // distinct values get one bin per value).
  const pooled = new Float64Array(2 * runs);
  pooled.set(out1);
  pooled.set(out2, runs);
  pooled.sort();
  const uppers: number[] = []; // bin j holds (uppers[j−1], uppers[j]]
  for (let j = 1; j <= maxBins; j++) {
    const v = pooled[Math.min(pooled.length - 1, Math.ceil((j * pooled.length) / maxBins) - 1)]!;
    if (uppers.length === 0 || v > uppers[uppers.length - 1]!) uppers.push(v);
  }
  uppers[uppers.length - 1] = Infinity;
  const cum1 = uppers.map((u) => countAtMost(out1, u));
  const cum2 = uppers.map((u) => countAtMost(out2, u));
  const edges = [-Infinity, ...uppers];
  const c1 = (i: number) => (i < 0 ? 0 : cum1[i]!);
  const c2 = (i: number) => (i < 0 ? 0 : cum2[i]!);

  // Events: every contiguous single bin, every prefix and every suffix.
  const B = uppers.length;
  const events: [number, number][] = [];
  for (let j = 0; j < B; j++) events.push([j, j]);
  for (let j = 0; j < B - 1; j++) events.push([0, j], [j + 1, B - 1]);
  const perBound = alpha / (events.length * 4); // two bounds per comparison, two directions

  let lowerBound = -Infinity;
  let point = 0;
  let worst: StochasticTestResult['worstEvent'] = null;
  for (const [a, b] of events) {
    const n1 = c1(b) - c1(a - 1);
    const n2 = c2(b) - c2(a - 1);
    const p1 = proportionBounds(n1, runs, perBound);
    const p2 = proportionBounds(n2, runs, perBound);
    const candidates: [number, number, number][] = [
      [Math.log(Math.max(0, p1.lower - delta) / p2.upper), n1, n2],
      [Math.log(Math.max(0, p2.lower - delta) / p1.upper), n1, n2],
    ];
    for (const [loss] of candidates) {
      if (loss > lowerBound) {
        lowerBound = loss;
        worst = { from: edges[a]!, to: uppers[b]!, count1: n1, count2: n2 };
      }
    }
    if (n1 >= 30 && n2 >= 30) point = Math.max(point, Math.abs(Math.log(n1 / n2)));
  }
  lowerBound = Math.max(0, lowerBound);
  return {
    passed: lowerBound <= epsilon,
    epsilonLowerBound: lowerBound,
    epsilonPointEstimate: point,
    worstEvent: worst,
    runs,
    events: events.length,
  };
}
