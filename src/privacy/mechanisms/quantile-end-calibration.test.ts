import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crossing, projectOntoSimplex } from './quantile-end-calibration.ts';
import { quantileEndTestsAt, quantileWithInterval } from './quantile-posterior.ts';

/** A seeded noisy histogram: `n` values (exponential, mean 180, in [0, 1000]) in 64 buckets, plus rounded N(0, σ²) per bucket and on the row count. */
function noisyHistogram(seed: number, n: number, sigma: number): { counts: number[]; rows: { value: number; variance: number } } {
  let s = seed >>> 0;
  const uniform = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 4294967296; };
  const normal = (): number => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const counts = new Array<number>(64).fill(0);
  for (let i = 0; i < n; i++) counts[Math.min(63, Math.floor((Math.min(1000, -180 * Math.log(uniform())) / 1000) * 64))]!++;
  return { counts: counts.map((c) => c + Math.round(sigma * normal())), rows: { value: n + Math.round(sigma * normal()), variance: sigma * sigma } };
}

describe('projection of released counts onto histograms', () => {
  it('gives the nearest non-negative histogram with the stated total', () => {
    assert.deepEqual([...projectOntoSimplex([3, 1, -2], 2)], [2, 0, 0]);
    assert.deepEqual([...projectOntoSimplex([1, 1, 1], 6)], [2, 2, 2]);
    const p = projectOntoSimplex([40, -75, 12, 96, -3, 8], 50);
    assert.ok(p.every((x) => x >= 0));
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 50) < 1e-9);
  });
});

describe('crossing of a calibrated test', () => {
  it('is the first accepted rank when the rejected ranks are the ones below it', () => {
    assert.equal(crossing((j) => j < 37, 100), 37);
    assert.equal(crossing(() => true, 50), 50);
    assert.equal(crossing(() => false, 50), 0);
  });
});

describe('quantile interval with calibrated ends', () => {
  it('is the same interval every time for the same released counts (a fixed bootstrap sequence, nothing fresh)', () => {
    const { counts, rows } = noisyHistogram(7, 60, 72);
    const a = quantileWithInterval(counts, [0, 1000], 0.9, { kind: 'gaussian', scale: 72 }, rows);
    const b = quantileWithInterval([...counts], [0, 1000], 0.9, { kind: 'gaussian', scale: 72 }, { ...rows });
    assert.deepEqual(a, b);
  });

  it('moves the ends of noise-swamped histograms and leaves those of clear ones where the nominal 1.96 puts them', () => {
    let moved = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const { counts, rows } = noisyHistogram(seed, 60, 72);
      const cal = quantileWithInterval(counts, [0, 1000], 0.9, { kind: 'gaussian', scale: 72 }, rows);
      const nom = quantileWithInterval(counts, [0, 1000], 0.9, { kind: 'gaussian', scale: 72 }, rows, 'nominal');
      if (cal.interval[0] !== nom.interval[0] || cal.interval[1] !== nom.interval[1]) moved++;
    }
    assert.ok(moved >= 10, `ends moved in ${moved} of 40 swamped histograms`);
    for (let seed = 1; seed <= 10; seed++) {
      const { counts, rows } = noisyHistogram(seed, 5000, 1);
      const cal = quantileWithInterval(counts, [0, 1000], 0.5, { kind: 'gaussian', scale: 1 }, rows);
      const nom = quantileWithInterval(counts, [0, 1000], 0.5, { kind: 'gaussian', scale: 1 }, rows, 'nominal');
      assert.deepEqual(cal, nom);
    }
  });

  it('always contains its own point, however the noise swamps the histogram', () => {
    for (let seed = 100; seed < 160; seed++) {
      const { counts, rows } = noisyHistogram(seed, 20 + (seed % 7) * 30, 72);
      for (const q of [0.1, 0.5, 0.9]) {
        const r = quantileWithInterval(counts, [0, 1000], q, { kind: 'gaussian', scale: 72 }, rows);
        if (r.value === null) continue;
        assert.ok(r.interval[0] <= r.value && r.value <= r.interval[1], `seed ${seed}, q ${q}: ${r.value} outside ${r.interval}`);
      }
    }
  });

  it('calibrates a Laplace histogram too, and without a separate row count', () => {
    const { counts } = noisyHistogram(11, 80, 40);
    const r = quantileWithInterval(counts, [0, 1000], 0.5, { kind: 'laplace', scale: 30 });
    assert.ok(r.interval[0] >= 0 && r.interval[1] <= 1000 && r.interval[0] <= r.interval[1]);
    assert.deepEqual(r, quantileWithInterval(counts, [0, 1000], 0.5, { kind: 'laplace', scale: 30 }));
  });

  it('has end tests that reject points far on either side of a clear quantile and accept the quantile itself', () => {
    const { counts, rows } = noisyHistogram(5, 5000, 1);
    const median = quantileWithInterval(counts, [0, 1000], 0.5, { kind: 'gaussian', scale: 1 }, rows).value!;
    const at = (x: number): { tooLow: boolean; tooHigh: boolean } => quantileEndTestsAt(counts, [0, 1000], 0.5, { kind: 'gaussian', scale: 1 }, rows, x);
    assert.deepEqual(at(median), { tooLow: false, tooHigh: false });
    assert.deepEqual(at(10), { tooLow: true, tooHigh: false });
    assert.deepEqual(at(900), { tooLow: false, tooHigh: true });
  });
});
