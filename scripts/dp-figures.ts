/**
 * Measures the "Done when" figures of issue #16 (docs/privacy-mechanisms.md, "Tight
 * calibration and accounting"): `npx node scripts/dp-figures.ts [--quick]`.
 * Everything goes through the code the pipeline runs: planNoise (calibration and the charged
 * PrivacyLoss), the PLD accountant, the partition-selection strategies and the exact sampler.
 */
import type { DpReleasePlan } from '../src/query/govern/differential-privacy.ts';
import { keepProbability, planNoise } from '../src/privacy/release.ts';
import { releasesThatFit } from '../src/privacy/accounting/pld.ts';
import { analyticGaussianMu, analyticGaussianSigma } from '../src/privacy/mechanisms/analytic-gaussian.ts';
import { DiscreteGaussian } from '../src/privacy/mechanisms/discrete-gaussian.ts';
import { expectedKept } from '../src/privacy/partition-selection-optimal.ts';
import { COVERAGE_BANDS, COVERAGE_BOUNDS, COVERAGE_OUTPUTS, coveragePlan, coverageSeed, simulate } from '../src/privacy/mechanisms/coverage-simulation.ts';
import { quantileEndTestsAt, quantileWithInterval } from '../src/privacy/mechanisms/quantile-posterior.ts';

const quick = process.argv.includes('--quick');

function plan(mechanism: 'gaussian' | 'laplace', epsilon: number, delta: number, L: number, R: number, l2: number, l1: number): DpReleasePlan {
  return {
    dataset: 'encounters', keyCount: 1, unitsMeasure: -1, publicDomains: [['a', 'b']], outputs: [], orderBy: [], limit: null, offset: 0,
    measures: [{ kind: 'rows', column: null, l1, l2, linf: R, resultIndex: 1 }],
    def: { mechanism, epsilon, delta, maxGroupsPerUnit: L, maxRowsPerUnitPerGroup: R, publicGroups: {}, budget: { epsilon: 10, delta: 1e-6, window: null, per: 'principal' } },
  } as unknown as DpReleasePlan;
}
const sigma2Of = (s: string): number => { const [a, b] = s.split('/'); return Number(a) / Number(b ?? 1); };

const rows: [string, string, string][] = [];
// 1. σ ÷ analytic Gaussian σ, single release of a sensitivity-1 count.
for (const eps of [1, 0.1]) {
  const p = planNoise(plan('gaussian', eps, 1e-7, 1, 1, 1, 1));
  const m = p.measures[0]!.mechanism as { sigma2: string };
  rows.push([`σ ÷ analytic Gaussian σ, ε = ${eps}, δ = 1e-7`, (Math.sqrt(sigma2Of(m.sigma2)) / analyticGaussianSigma(eps, 1e-7)).toFixed(4), '≤ 1.005']);
}
// 2. Laplace ε = 1 releases in (10, 1e-6).
const lap = planNoise(plan('laplace', 1, 1e-7, 1, 1, 1, 1));
rows.push(['Laplace ε = 1 queries in (10, 1e-6)', String(releasesThatFit(lap.loss, { epsilon: 10, delta: 1e-6 })), '≥ 10 (optimal composition)']);
// 3. Gaussian (1, 1e-7) releases in (10, 1e-6), against the PLD count of the continuous analytic Gaussian.
const gau = planNoise(plan('gaussian', 1, 1e-7, 3, 3, 3 * Math.sqrt(3), 9));
const ideal = analyticGaussianMu(1, 1e-7);
const pldCount = releasesThatFit({ pure: [], mu2: ideal * ideal, delta: 0 }, { epsilon: 10, delta: 1e-6 });
rows.push(['Gaussian (1, 1e-7) queries in (10, 1e-6)', `${releasesThatFit(gau.loss, { epsilon: 10, delta: 1e-6 })} (PLD of the continuous analytic Gaussian: ${pldCount})`, '≥ PLD count']);
// 4. Partition selection, 1,000 groups of 1–200 units, ε = 1, δ = 1e-7.
const sizes = Array.from({ length: 1000 }, (_, i) => 1 + Math.floor((i * 200) / 1000));
for (const [L, s] of [[1, 'optimal'], [1, 'optimal-gdp'], [1, 'laplace-threshold'], [1, 'gaussian-threshold'], [3, 'laplace-threshold'], [3, 'gaussian-threshold']] as const) {
  rows.push([`groups kept (expected), L = ${L}, ${s}`, expectedKept(s, 1, 1e-7, L, sizes).toFixed(1), L === 1 && s === 'optimal' ? '≥ 920' : '']);
}
// 4b. A Gaussian keys-only query (the unit count only selects groups): the strategy planNoise picks and what it keeps.
const keysOnly = {
  dataset: 'encounters', keyCount: 1, unitsMeasure: 0, publicDomains: [null], orderBy: [], limit: null, offset: 0,
  measures: [{ kind: 'units', column: null, l1: 1, l2: 1, linf: 1, resultIndex: 1 }],
  outputs: [{ kind: 'key', alias: 'code', key: 0 }],
  def: { mechanism: 'gaussian', epsilon: 1, delta: 1e-7, maxGroupsPerUnit: 1, maxRowsPerUnitPerGroup: 1, publicGroups: {}, budget: { epsilon: 10, delta: 1e-6, window: null, per: 'principal' } },
} as unknown as DpReleasePlan;
for (const [label, p] of [['keys only', keysOnly], ['keys and a count(*)', { ...keysOnly, measures: [...keysOnly.measures, { kind: 'rows', column: null, l1: 1, l2: 1, linf: 1, resultIndex: 2 }], outputs: [...keysOnly.outputs, { kind: 'count', alias: 'n', measure: 1 }] } as unknown as DpReleasePlan]] as const) {
  const noise = planNoise(p);
  const kept = sizes.reduce((a, n) => a + keepProbability(noise, n), 0);
  const fit = releasesThatFit(noise.loss, { epsilon: 10, delta: 1e-6 });
  rows.push([`groups kept (expected) by a Gaussian query, ${label}, ε = 1, δ = 1e-7, L = 1: planNoise picks ${noise.selection?.strategy} (${fit} such queries fit in (10, 1e-6))`, kept.toFixed(1), label === 'keys only' ? '≥ 920' : '']);
}
// 6. Exact discrete Gaussian sampler at the demo's σ² (count(*), L = 3, R = 3, ε = 1, δ = 1e-7).
const demoSigma2 = (gau.measures[0]!.mechanism as { sigma2: string }).sigma2;
// Profile: the table path (geometric magnitude by binary search, acceptance digits precomputed)
// against the general path (Algorithm 2's proposal, acceptance by one digit comparison) and the
// reference (Algorithms 1–3 as printed), interleaved so the machine's load hits all alike.
// Each path gets its own compiled timing loop (new Function): one shared loop calling four
// different closures turns megamorphic and measures V8's dispatch instead of the samplers.
type Rate = (sample: () => number, n: number) => number;
const timingLoop = (): Rate => new Function('sample', 'n', `
  const t = performance.now();
  let acc = 0;
  for (let i = 0; i < n; i++) acc += sample();
  if (acc === 0.5) console.log('');
  return n / ((performance.now() - t) / 1000);`) as Rate;
const n = quick ? 200_000 : 2_000_000;
const paths: [string, DiscreteGaussian, Rate][] = [
  ['table', new DiscreteGaussian(demoSigma2), timingLoop()],
  ['general', new DiscreteGaussian(demoSigma2, { general: true }), timingLoop()],
  ['reference', new DiscreteGaussian(demoSigma2, { reference: true }), timingLoop()],
  ['table, σ² = 4', new DiscreteGaussian('4'), timingLoop()],
];
for (const [, s, loop] of paths) loop(s.sample, n / 4); // warm up the JIT
const rates = paths.map((): number[] => []);
for (let r = 0; r < (quick ? 3 : 7); r++) paths.forEach(([name, s, loop], i) => rates[i]!.push(loop(s.sample, name === 'reference' ? n / 4 : n)));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const m = rates.map((r) => median(r) / 1e6);
rows.push([`exact Gaussian sampler at the demo's σ² = ${demoSigma2} (${sigma2Of(demoSigma2).toFixed(3)}), median of ${rates[0]!.length}`, `${m[0]!.toFixed(2)} M samples/s (same run: general path ${m[1]!.toFixed(2)} M/s, reference ${m[2]!.toFixed(2)} M/s, table path at σ² = 4 ${m[3]!.toFixed(2)} M/s)`, '≥ 4 M/s']);
// 5. Coverage of the stated 95 % intervals, per size band (rows per group), data with known truth.
// 5b. Where the quantile intervals miss (same groups): truth below the interval's lower end / above
// its upper end, and how often the pointwise test the interval is built from rejects the true
// quantile on each side (each 2.5 % when calibrated tail by tail), how often each calibrated end test
// rejects the true quantile's rank (likewise 2.5 % each if the bootstrap is right); the median width of the released
// (calibrated-end) intervals ÷ that of the nominal ends on the same groups.
// 5c. Time per quantile interval, calibrated against nominal ends, on the groups' own histograms:
// the two interleaved, CPU time, median of rounds.
const trials = quick ? 300 : 2000;
const coverageRows: [string, string, string][] = [], missRows: [string, string, string][] = [], timeRows: [string, string, string][] = [];
const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
for (const eps of [1, 0.1]) {
  const noise = planNoise(coveragePlan(eps));
  const hm = noise.measures[2]!;
  COVERAGE_BANDS.forEach((band, bi) => {
    const inputs: [number[], { value: number; variance: number }][] = [];
    const endRejects = [[0, 0], [0, 0]];
    const r = simulate(noise, band, trials, coverageSeed(eps, bi), (c, rc, truths) => {
      if (inputs.length < 200) inputs.push([c, rc]);
      [0.5, 0.9].forEach((q, j) => {
        const t = quantileEndTestsAt(c, COVERAGE_BOUNDS, q, { kind: hm.mechanism.kind, scale: hm.scale }, rc, truths[j]!);
        if (t.tooLow) endRejects[j]![0]!++;
        if (t.tooHigh) endRejects[j]![1]!++;
      });
    });
    coverageRows.push([`coverage of stated 95 %, ε = ${eps}, ${band.join('–')} rows`, r.covered.map((c, i) => `${COVERAGE_OUTPUTS[i]} ${pct(c)}`).join(', '), '93–97 %']);
    const split = (['median', 'p90'] as const).map((name, j) => {
      const i = COVERAGE_OUTPUTS.indexOf(name);
      const w = r.medianWidth[j]!;
      return `${name}: interval ${pct(1 - r.covered[i]! - r.missedAbove[i]!)} / ${pct(r.missedAbove[i]!)}, test ${pct(r.testBelow[j]!)} / ${pct(r.testAbove[j]!)}, calibrated end tests ${pct(endRejects[j]![0]! / trials)} / ${pct(endRejects[j]![1]! / trials)}, median width ${w.calibrated.toFixed(1)} ÷ nominal ${w.nominal.toFixed(1)} = ${(w.calibrated / w.nominal).toFixed(3)}`;
    });
    missRows.push([`quantile misses below / above (the interval; the pointwise test and the calibrated end tests at the true quantile) and width, ε = ${eps}, ${band.join('–')} rows`, split.join('; '), '2.5 % / 2.5 %; width ÷ nominal ≤ 1']);
    const cpu = (ends: 'calibrated' | 'nominal'): number => {
      const t = process.cpuUsage();
      for (const [c, rc] of inputs) for (const q of [0.5, 0.9]) quantileWithInterval(c, COVERAGE_BOUNDS, q, { kind: hm.mechanism.kind, scale: hm.scale }, rc, ends);
      const u = process.cpuUsage(t);
      return (u.user + u.system) / (inputs.length * 2);
    };
    const cal: number[] = [], nom: number[] = [];
    for (let round = 0; round < (quick ? 3 : 5); round++) { cal.push(cpu('calibrated')); nom.push(cpu('nominal')); }
    timeRows.push([`CPU µs per quantile interval (median and p90, ${inputs.length} groups, median of ${cal.length} interleaved rounds), ε = ${eps}, ${band.join('–')} rows`, `calibrated ${median(cal).toFixed(0)} µs, nominal ${median(nom).toFixed(0)} µs`, 'cheap']);
  });
}
rows.push(...coverageRows, ...missRows, ...timeRows);
console.log('| figure | measured | goal |\n|---|---|---|');
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
