/**
 * Differential-privacy release: turns the bounded aggregates the engine computed (see
 * query/govern/differential-privacy.ts) into a noisy, partition-selected result with
 * error bars. Pure with respect to the budget: `planNoise` prices a query, `release`
 * spends nothing — the pipeline charges the budget between the two.
 *
 * Calibration and accounting. A Gaussian query gets the analytic Gaussian's μ at its (ε, δ)
 * (Balle & Wang 2018, Alg. 1), split evenly over its m measures (μᵢ² = μ²/m; Gaussians compose
 * to μ² = Σ μᵢ², Dong–Roth–Su 2022), each σ² rounded *up* to a sampler-friendly rational
 * (friendly-variance.ts) and charged at the discrete Gaussian's own μ-GDP (discrete-gaussian-gdp.ts).
 * A Laplace query spends pure ε split over its measures, charged as one pure-ε release. The
 * charge is a PrivacyLoss for the PLD accountant (accounting/pld.ts), plus partition
 * selection's δ paid outright; ρ = μ²/2 (Gaussian) or ε²/2 (Laplace) is kept for display.
 *
 * Partition selection (keys without a public domain) releases a group only if its noisy distinct-unit count reaches τ, where τ makes the chance that a
 * group one unit created appears at most δ/L per group (Desfontaines et al., "Differentially
 * private partition selection", PoPETs 2022, for the thresholding argument); so a query
 * with selection is (ε, 2δ)-DP for the Gaussian and (ε, δ)-DP for the Laplace.
 * Sums are noised in fixed point at granularity γ (a power of two), with the rounding's
 * extra unit of sensitivity accounted for.
 */
import type { EngineResult, CellValue, ResultColumn } from '../model/result.ts';
import type { DpMeasure, DpReleasePlan } from '../query/govern/differential-privacy.ts';
import { toEpsilonDelta } from './accounting/zcdp.ts';
import { deltaAt, releasesThatFit, type PrivacyLoss } from './accounting/pld.ts';
import { analyticGaussianMu } from './mechanisms/analytic-gaussian.ts';
import { discreteGaussianGdp, ETA } from './mechanisms/discrete-gaussian-gdp.ts';
import { friendlySigma2 } from './mechanisms/friendly-variance.ts';
import { confidenceInterval, discreteGaussian, discreteLaplace, randomUint32, type NoiseMechanism } from './mechanisms/index.ts';
import { quantileWithInterval } from './mechanisms/quantile-posterior.ts';
import { fiellerInterval } from './mechanisms/ratio-interval.ts';
import { selectionThreshold } from './partition-selection.ts';
import { optimalGdpKeepProbabilities, optimalKeepProbabilities, type SelectionStrategy } from './partition-selection-optimal.ts';
import { discreteGaussianNormalizer } from './mechanisms/discrete-gaussian.ts';

export interface MeasureNoise {
  readonly measure: DpMeasure;
  /** Fixed-point step: the measure is noised as an integer number of γ. 1 for counts. */
  readonly granularity: number;
  readonly mechanism: NoiseMechanism;
  /** Human-readable noise scale in the measure's own units (σ or Laplace scale). */
  readonly scale: number;
  /** 95 % half-width in the measure's own units. */
  readonly ci95: number;
  readonly rho: number;
}

export interface NoisePlan {
  readonly plan: DpReleasePlan;
  readonly rho: number;
  readonly epsilon: number;
  readonly delta: number;
  readonly measures: readonly MeasureNoise[];
  /** Distinct-unit threshold for partition selection; null when every key is public or selection is 'optimal'. */
  readonly threshold: number | null;
  /** Partition selection, when some key has no public domain. */
  readonly selection: Selection | null;
  /** What the query spends, for the PLD accountant (accounting/pld.ts). */
  readonly loss: PrivacyLoss;
}

/**
 * How groups of a key without a public domain are selected. 'optimal' (DVGM 2022, L = 1, queries
 * whose distinct-unit count is not an output) keeps a group of n units with probability πₙ,
 * spending the unit count's own ε share (Laplace) or the pure ε its Gaussian share buys at the
 * same δ(ε) (Gaussian, when that keeps more groups: gaussianOptimalSelection) and δ; otherwise
 * the noisy unit count is thresholded.
 */
export interface Selection {
  readonly strategy: SelectionStrategy;
  readonly epsilon: number;
  readonly delta: number;
  /** πₙ for n = 0..keep.length − 1 (1 beyond); null for thresholding. */
  readonly keep: Float64Array | null;
}

/** Keep probability of a group of n distinct units. */
export function keepProbability(noise: NoisePlan, n: number): number {
  const sel = noise.selection;
  if (!sel) return 1;
  if (sel.keep) return n >= sel.keep.length ? 1 : sel.keep[Math.max(0, n)]!;
  const m = noise.measures[noise.plan.unitsMeasure]!;
  return thresholdKeep(m, noise.threshold!, n);
}

function thresholdKeep(m: MeasureNoise, tau: number, n: number): number {
  if (m.mechanism.kind === 'laplace') {
    const t = Number(m.mechanism.scale);
    const h = tau - n, r = Math.exp(-1 / t);
    return h <= 0 ? 1 - Math.exp(-(1 - h) / t) / (1 + r) : Math.exp(-h / t) / (1 + r);
  }
  const [a, b] = String(m.mechanism.sigma2).split('/');
  const s2 = Number(a) / Number(b ?? 1);
  const z = discreteGaussianNormalizer(s2);
  const lim = Math.ceil(Math.sqrt(s2) * 40) + 1;
  let acc = 0;
  for (let x = Math.max(tau - n, -lim); x <= lim; x++) acc += Math.exp(-(x * x) / (2 * s2));
  return Math.min(1, acc / z);
}

/** A uniform double in [0, 1) with 53 random bits from the CSPRNG. */
function uniform53(): number {
  return (randomUint32() * 2097152 + (randomUint32() >>> 11)) / 9007199254740992;
}

function roundUpRational(x: number): string {
  // σ² and scales are rounded *up* (more noise, never less) to 9 significant decimals.
  const digits = Math.max(0, 9 - Math.floor(Math.log10(x)) - 1);
  const f = 10 ** Math.min(digits, 15);
  return String(Math.ceil(x * f) / f);
}

/** π₀.. up to the first πₙ = 1 (at most 10⁶ entries). */
function optimalKeepTable(epsilon: number, delta: number): Float64Array {
  let max = 64;
  for (;;) {
    const pi = optimalKeepProbabilities(epsilon, delta, max);
    const one = pi.indexOf(1);
    if (one >= 0) return pi.slice(0, one + 1);
    if (max >= 1_000_000) return pi;
    max *= 4;
  }
}

function powerOfTwoBelow(x: number): number {
  return 2 ** Math.floor(Math.log2(x));
}

/**
 * σ² for one Gaussian measure of L2 sensitivity l2 (in noise units) that spends at most μ:
 * σ = l2/μ, rounded up to a friendly rational, then widened until the discrete Gaussian's own
 * μ-GDP (its lattice costs a factor 1.000x–1.01) fits.
 */
function gaussianSigma2(l2: number, mu: number): { sigma2: string; mu: number; delta: number } {
  let s2 = (l2 / mu) ** 2;
  for (let i = 0; i < 60; i++) {
    const sigma2 = friendlySigma2(s2);
    const exact = Number(sigma2.includes('/') ? Number(sigma2.split('/')[0]) / Number(sigma2.split('/')[1]) : sigma2);
    const gdp = discreteGaussianGdp(exact);
    const charged = (gdp.factor * l2) / Math.sqrt(exact);
    if (charged <= mu) return { sigma2, mu: charged, delta: gdp.delta };
    s2 = exact * (charged / mu) ** 2 * (1 + 1e-9);
  }
  throw new Error('cannot calibrate the discrete Gaussian');
}

/** Group sizes (distinct units) over which selection strategies are compared: 1–200 alike (issue #16's benchmark). */
const REFERENCE_GROUP_SIZES = Array.from({ length: 200 }, (_, i) => i + 1);

const keptOf = (keep: Float64Array): number => REFERENCE_GROUP_SIZES.reduce((a, n) => a + (n >= keep.length ? 1 : keep[n]!), 0);

/**
 * A Gaussian query whose distinct-unit count only selects groups (L = 1, not an output) need not
 * threshold it; the noise of that count is then never released. Candidates, each kept only if it
 * keeps more groups of 1–200 units than the best so far:
 *  - 'optimal-gdp' (partition-selection-optimal.ts): the optimal keep probabilities for exactly the
 *    charge thresholding has (the count's μ and selection's δ), so it never costs more budget;
 *  - 'optimal' (DVGM 2022): the count's μ share traded for the largest pure ε_sel with which the query
 *    is still as private at its own ε (PLD δ(ε) no larger) *and* as many such queries fit its budget
 *    (a pure ε composes worse than a Gaussian of the same single-query (ε, δ): without the second
 *    test a keys-only query would fit its (10, 1e-6) budget 10 times instead of 74).
 */
function gaussianOptimalSelection(measures: readonly MeasureNoise[], unitsAt: number, groupsPerUnit: number, thresholdLoss: PrivacyLoss, def: DpReleasePlan['def'], etaDelta: number, selectionDelta: number): { selection: Selection; loss: PrivacyLoss } | null {
  const { epsilon, delta } = def;
  const units = measures[unitsAt]!;
  const tau = selectionThreshold(units.mechanism, delta / groupsPerUnit);
  let bestKept = REFERENCE_GROUP_SIZES.reduce((a, n) => a + thresholdKeep(units, tau, n), 0);
  let best: { selection: Selection; loss: PrivacyLoss } | null = null;
  const unitsMu = Math.sqrt(2 * units.rho);
  const gdp = optimalGdpTable(unitsMu, delta);
  if (keptOf(gdp) > bestKept) {
    bestKept = keptOf(gdp);
    best = { selection: { strategy: 'optimal-gdp', epsilon, delta, keep: gdp }, loss: thresholdLoss };
  }
  const unitEta = discreteGaussianGdp(sigma2Number(units.mechanism)).delta * groupsPerUnit * (units.measure.buckets ?? 1);
  const base: PrivacyLoss = { pure: [], mu2: Math.max(0, thresholdLoss.mu2 - unitsMu * unitsMu), delta: Math.max(0, etaDelta - unitEta) + selectionDelta };
  const target = deltaAt(thresholdLoss, epsilon);
  const fits = (e: number): boolean => deltaAt({ ...base, pure: [e] }, epsilon) <= target;
  if (!fits(1e-3)) return best;
  let lo = 1e-3, hi = epsilon;
  if (fits(hi)) lo = hi;
  else for (let i = 0; i < 30; i++) { const mid = (lo + hi) / 2; if (fits(mid)) lo = mid; else hi = mid; }
  const keep = optimalKeepTable(lo, delta); // fits() priced lo as the accountant will (its grid rounds ε up)
  if (keptOf(keep) <= bestKept) return best;
  // Only now the (costlier) budget test: as many of these queries must fit as with thresholding.
  const budget = { epsilon: def.budget.epsilon, delta: def.budget.delta };
  const loss = { ...base, pure: [lo] };
  if (releasesThatFit(loss, budget, 1000) < releasesThatFit(thresholdLoss, budget, 1000)) return best;
  return { selection: { strategy: 'optimal', epsilon: lo, delta, keep }, loss };
}

/** π₀.. of the μ-GDP optimal selection up to its first πₙ = 1 (at most 10⁶ entries). */
function optimalGdpTable(mu: number, delta: number): Float64Array {
  let max = 64;
  for (;;) {
    const pi = optimalGdpKeepProbabilities(mu, delta, max);
    const one = pi.indexOf(1);
    if (one >= 0) return pi.slice(0, one + 1);
    if (max >= 1_000_000) return pi;
    max *= 4;
  }
}

function sigma2Number(m: NoiseMechanism): number {
  const [a, b] = String((m as { sigma2: string }).sigma2).split('/');
  return Number(a) / Number(b ?? 1);
}

export function planNoise(plan: DpReleasePlan): NoisePlan {
  const def = plan.def;
  const m = plan.measures.length;
  // Each discrete Gaussian coordinate a unit can move (L groups × buckets) pays its η slack outright
  // (discrete-gaussian-gdp.ts); the query's μ is the analytic Gaussian's at (ε, δ − that slack).
  const coordinates = (x: DpMeasure): number => def.maxGroupsPerUnit * (x.buckets ?? 1);
  const slack = plan.measures.reduce((a, x) => a + coordinates(x), 0) * 2 * ETA;
  const muQuery = def.mechanism === 'gaussian' ? analyticGaussianMu(def.epsilon, def.delta - slack) : 0;
  const muEach = muQuery / Math.sqrt(m);
  let mu2 = 0, etaDelta = 0, pureEpsilon = 0;
  const measures = plan.measures.map((measure): MeasureNoise => {
    // Counts are integers already; sums go to fixed point with ~2^10 steps per unit contribution.
    const granularity = measure.kind === 'sum' ? powerOfTwoBelow(Math.max(measure.linf, 1e-6) / 1024) : 1;
    const extra = measure.kind === 'sum' ? 1 : 0; // rounding to the grid can add one step
    if (def.mechanism === 'gaussian') {
      const l2 = measure.l2 / granularity + extra * Math.sqrt(plan.def.maxGroupsPerUnit);
      const g = gaussianSigma2(l2, muEach);
      mu2 += g.mu * g.mu;
      etaDelta += g.delta * coordinates(measure);
      const [num, den] = g.sigma2.split('/');
      const sigma2 = Number(num) / Number(den ?? 1);
      const mechanism: NoiseMechanism = { kind: 'gaussian', sigma2: g.sigma2 };
      return { measure, granularity, mechanism, scale: Math.sqrt(sigma2) * granularity, ci95: confidenceInterval(mechanism) * granularity, rho: (g.mu * g.mu) / 2 };
    }
    const l1 = measure.l1 / granularity + extra * plan.def.maxGroupsPerUnit;
    const scale = Number(roundUpRational(l1 / (def.epsilon / m)));
    const mechanism: NoiseMechanism = { kind: 'laplace', scale: roundUpRational(scale) };
    pureEpsilon += l1 / scale;
    return { measure, granularity, mechanism, scale: scale * granularity, ci95: confidenceInterval(mechanism) * granularity, rho: ((l1 / scale) ** 2) / 2 };
  });
  const needsSelection = plan.keyCount > 0 && plan.publicDomains.some((d) => d === null);
  if (needsSelection && plan.unitsMeasure < 0) throw new Error('partition selection needs the distinct-unit measure');
  // The optimal mechanism replaces thresholding when it can spend the unit count's share alone.
  const unitsIsOutput = plan.outputs.some((o) => (o.kind === 'count' && o.measure === plan.unitsMeasure) || (o.kind === 'avg' && o.count === plan.unitsMeasure));
  const optimalPossible = needsSelection && def.maxGroupsPerUnit === 1 && !unitsIsOutput;
  let selection: Selection | null = null;
  let loss: PrivacyLoss;
  // Partition selection's δ is paid outright: a one-unit group appears with probability ≤ δ/L in each of its ≤ L groups.
  const selectionDelta = needsSelection ? def.delta : 0;
  if (optimalPossible && def.mechanism === 'laplace') {
    const u = measures[plan.unitsMeasure]!;
    const eps = u.measure.l1 / Number((u.mechanism as { scale: string }).scale);
    selection = { strategy: 'optimal', epsilon: eps, delta: def.delta, keep: optimalKeepTable(eps, def.delta) };
    loss = { pure: pureEpsilon > 0 ? [pureEpsilon] : [], mu2, delta: etaDelta + selectionDelta };
  } else {
    loss = { pure: pureEpsilon > 0 ? [pureEpsilon] : [], mu2, delta: etaDelta + selectionDelta };
    if (needsSelection) selection = { strategy: def.mechanism === 'laplace' ? 'laplace-threshold' : 'gaussian-threshold', epsilon: def.epsilon, delta: def.delta, keep: null };
    if (optimalPossible && def.mechanism === 'gaussian') {
      const swap = gaussianOptimalSelection(measures, plan.unitsMeasure, def.maxGroupsPerUnit, loss, def, etaDelta, selectionDelta);
      if (swap) { selection = swap.selection; loss = swap.loss; }
    }
  }
  const threshold = needsSelection && (selection === null || selection.keep === null) ? selectionThreshold(measures[plan.unitsMeasure]!.mechanism, def.delta / def.maxGroupsPerUnit) : null;
  const delta = def.mechanism === 'gaussian' ? def.delta * (needsSelection ? 2 : 1) : needsSelection ? def.delta : 0;
  const rho = def.mechanism === 'gaussian' ? loss.mu2 / 2 + loss.pure.reduce((a, e) => a + e * e / 2, 0) : (pureEpsilon * pureEpsilon) / 2;
  return { plan, rho, epsilon: def.epsilon, delta, measures, threshold, selection, loss };
}

export interface ReleasedCell {
  readonly value: CellValue;
  readonly interval: readonly [number, number] | null;
}

export interface DpRelease {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly CellValue[])[];
  /** Per row, per output column: the 95 % interval of a noisy value, null for keys. */
  readonly intervals: readonly (readonly ((readonly [number, number]) | null)[])[];
  readonly truncated: boolean;
}

function sampler(m: NoiseMechanism): () => number {
  return m.kind === 'gaussian' ? discreteGaussian(m.sigma2).sample : discreteLaplace(m.scale).sample;
}

function toNumber(v: CellValue): number {
  if (v === null) return 0;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** Adds noise, selects partitions, computes outputs and intervals, orders and caps. */
export function release(noise: NoisePlan, result: EngineResult, rowLimit: number, capAfterOffset: number = rowLimit): DpRelease {
  const plan = noise.plan;
  const k = plan.keyCount;
  // Group rows by key; public domains enumerate every group, present or not. A measure is
  // one number, or one count per bucket for a histogram (quantiles).
  type Values = (number | number[])[];
  const zero = (): Values => plan.measures.map((m) => (m.buckets ? new Array<number>(m.buckets).fill(0) : 0));
  const valuesOf = (r: readonly CellValue[]): Values => plan.measures.map((m) => (m.buckets
    ? Array.from({ length: m.buckets }, (_, b) => toNumber(r[m.resultIndex + b]!))
    : toNumber(r[m.resultIndex]!)));
  let groups: { key: CellValue[]; values: Values }[] = result.rows.map((r) => ({ key: r.slice(0, k) as CellValue[], values: valuesOf(r) }));
  const allPublic = k > 0 && plan.publicDomains.every((d) => d !== null);
  if (allPublic) {
    const byKey = new Map(groups.map((g) => [JSON.stringify(g.key), g]));
    let keys: CellValue[][] = [[]];
    for (const d of plan.publicDomains) keys = keys.flatMap((prefix) => d!.map((v) => [...prefix, v]));
    groups = keys.map((key) => byKey.get(JSON.stringify(key)) ?? { key, values: zero() });
  }
  if (k === 0 && groups.length === 0) groups = [{ key: [], values: zero() }];
  const samplers = noise.measures.map((m) => sampler(m.mechanism));
  const released: { key: CellValue[]; noisy: (number | number[])[] }[] = [];
  for (const g of groups) {
    const noisy = noise.measures.map((m, i) => {
      const v = g.values[i]!;
      // Histogram buckets: each count noised. Negative counts are kept: clamping them to
      // zero would add phantom mass to empty buckets; cumulative sums cancel the noise.
      if (Array.isArray(v)) return v.map((c) => c + samplers[i]!());
      return (Math.round(v / m.granularity) + samplers[i]!()) * m.granularity;
    });
    if (noise.threshold !== null && (noisy[plan.unitsMeasure] as number) < noise.threshold) continue;
    // Optimal selection: keep with probability π_n of the group's true distinct-unit count.
    if (noise.selection?.keep && !(uniform53() < keepProbability(noise, Math.round(g.values[plan.unitsMeasure] as number)))) continue;
    released.push({ key: g.key, noisy });
  }
  const columns: ResultColumn[] = plan.outputs.map((o) => ({
    name: o.alias,
    type: o.kind === 'key' ? (result.columns[o.key]?.type ?? 'VARCHAR') : o.kind === 'count' ? 'BIGINT' : 'DOUBLE',
  }));
  const rows: CellValue[][] = [];
  const intervals: (([number, number]) | null)[][] = [];
  for (const g of released) {
    const out = outputsFor(noise, g.key, g.noisy);
    rows.push(out.row);
    intervals.push(out.intervals);
  }
  // Order, offset and cap after noise (post-processing keeps the guarantee).
  const order = plan.orderBy;
  const idx = rows.map((_, i) => i);
  if (order.length) {
    const cmp = (a: CellValue, b: CellValue): number => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);
    idx.sort((a, b) => {
      for (const o of order) { const c = cmp(rows[a]![o.output]!, rows[b]![o.output]!); if (c !== 0) return o.desc ? -c : c; }
      return 0;
    });
  }
  const start = plan.offset;
  const end = Math.min(idx.length, start + rowLimit);
  const picked = idx.slice(start, end);
  // Truncated means the row cap (not the caller's own LIMIT) withheld rows.
  const truncated = idx.length - start > capAfterOffset && (plan.limit === null || plan.limit > capAfterOffset);
  return { columns, rows: picked.map((i) => rows[i]!), intervals: picked.map((i) => intervals[i]!), truncated };
}

/** The noise's standard deviation in the measure's own units (Gaussian σ·γ; Laplace √2·t·γ). */
function noiseSd(m: MeasureNoise): number {
  return m.mechanism.kind === 'gaussian' ? m.scale : Math.SQRT2 * m.scale;
}

/**
 * One released row and its 95 % intervals from the group's noisy measures (post-processing only):
 * counts and sums ± the exact noise half-width; a mean by Fieller's interval for the ratio of two
 * noisy values (ratio-interval.ts); a quantile from the noisy histogram's posterior
 * (quantile-posterior.ts).
 */
export function outputsFor(noise: NoisePlan, key: readonly CellValue[], noisy: readonly (number | number[])[]): { row: CellValue[]; intervals: (([number, number]) | null)[] } {
  const row: CellValue[] = [];
  const iv: (([number, number]) | null)[] = [];
  for (const o of noise.plan.outputs) {
    if (o.kind === 'key') { row.push(key[o.key]!); iv.push(null); continue; }
    if (o.kind === 'quantile') {
      const m = noise.measures[o.measure]!;
      // The count of the same values, if the query noised one (count(column) of the histogram's column).
      const rowsAt = noise.measures.findIndex((x) => x.measure.kind === 'nonNull' && x.measure.column === m.measure.column);
      const rowCount = rowsAt >= 0 ? { value: noisy[rowsAt] as number, variance: noiseSd(noise.measures[rowsAt]!) ** 2 } : null;
      const q = quantileWithInterval(noisy[o.measure] as number[], m.measure.bounds!, o.q, { kind: m.mechanism.kind, scale: m.scale }, rowCount);
      row.push(q.value);
      iv.push(q.interval);
      continue;
    }
    if (o.kind === 'count' || o.kind === 'sum') {
      const v = noisy[o.measure] as number;
      const h = noise.measures[o.measure]!.ci95;
      row.push(o.kind === 'count' ? Math.max(0, Math.round(v)) : v);
      iv.push([v - h, v + h]);
      continue;
    }
    const s = noisy[o.sum] as number, c = noisy[o.count] as number;
    // Post-processing: a mean outside the declared bounds is clamped back into them.
    const bounds = o.bounds;
    const raw = s / Math.max(c, 1);
    const avg = bounds ? Math.min(bounds[1], Math.max(bounds[0], raw)) : raw;
    const fieller = fiellerInterval(s, c, noiseSd(noise.measures[o.sum]!), noiseSd(noise.measures[o.count]!), bounds);
    // A count below one gives no mean (null), but still an honest interval: Fieller's set, which
    // is then the whole declared range.
    row.push(c < 1 ? null : avg);
    iv.push(fieller === null ? null : c < 1 ? fieller : [Math.min(avg, fieller[0]), Math.max(avg, fieller[1])]);
  }
  return { row, intervals: iv };
}

export interface PrivacyGovernance {
  readonly mechanism: 'gaussian' | 'laplace';
  readonly guarantee: string;
  readonly epsilon: number;
  readonly delta: number;
  readonly rho: number;
  /** Partition selection: strategy and the probability that a group of n distinct units is kept (the expected kept fraction of such groups). */
  readonly selection?: { readonly strategy: SelectionStrategy; readonly expectedKeptFraction: readonly { readonly units: number; readonly fraction: number }[] } | null;
  /** Per output: noise scale and 95 % half-width in the output's units; quantiles have
   *  per-value intervals only (ci95 null; scale is the noise on each histogram bucket). */
  readonly noise: readonly { readonly output: string; readonly scale: number; readonly ci95: number | null }[];
  readonly budget: {
    readonly subject: string;
    readonly epsilon: number;
    readonly delta: number;
    readonly spentEpsilon: number;
    readonly remainingRho: number;
    readonly capRho: number;
    readonly resetsAt: string | null;
  } | null;
}

export function describeNoise(noise: NoisePlan): Omit<PrivacyGovernance, 'budget'> {
  const plan = noise.plan;
  const unit = plan.def;
  return {
    mechanism: plan.def.mechanism,
    guarantee: `user-level (${unit.maxGroupsPerUnit} group(s) and ${unit.maxRowsPerUnitPerGroup} row(s) per group per privacy unit of "${plan.dataset}")`,
    epsilon: noise.epsilon, delta: noise.delta, rho: noise.rho,
    selection: noise.selection ? { strategy: noise.selection.strategy, expectedKeptFraction: [1, 2, 5, 10, 20, 50, 100, 200].map((units) => ({ units, fraction: keepProbability(noise, units) })) } : null,
    noise: plan.outputs.filter((o) => o.kind !== 'key').map((o) => {
      // A mean's error depends on its group's count: per-value intervals only (ci95 null);
      // scale is the noise on the bounded sum it divides.
      if (o.kind === 'avg') return { output: o.alias, scale: noise.measures[o.sum]!.scale, ci95: null };
      // Quantiles: noise is on each histogram bucket's count; per-value intervals are in `intervals`.
      if (o.kind === 'quantile') return { output: o.alias, scale: noise.measures[o.measure]!.scale, ci95: null };
      const m = noise.measures[(o as { measure: number }).measure]!;
      return { output: o.alias, scale: m.scale, ci95: m.ci95 };
    }),
  };
}

/** The (ε, δ) a budget in ρ corresponds to, for display. */
export function spentEpsilon(spentRho: number, delta: number): number {
  return spentRho <= 0 ? 0 : toEpsilonDelta(spentRho, delta).epsilon;
}
