import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expNegDigit } from './bernoulli.ts';
import { DiscreteGaussian, discreteGaussianPmf } from './discrete-gaussian.ts';
import { floorExpNegScaled } from './exp-neg-bits.ts';
import { geometricDigits, geometricFromDigits } from './geometric-table.ts';
import { chiSquareIntegers } from './statistics.ts';

test('the geometric table holds the exact first 32 binary digits of e^(−k/t), strictly decreasing', () => {
  for (const t of [1, 3, 25, 250]) {
    const d = geometricDigits(t);
    assert.ok(d.length >= Math.min(12 * t, 20), `t = ${t}: only ${d.length} entries`);
    for (let k = 1; k <= d.length; k += Math.max(1, Math.floor(d.length / 97))) {
      assert.equal(d[k - 1], Number(floorExpNegScaled(BigInt(k), BigInt(t), 32)), `t = ${t}, k = ${k}`);
      if (k > 1) assert.ok(d[k - 1]! < d[k - 2]!);
    }
  }
});

test('the digit of exp(−p/q) read from Math.exp equals the exact one, also next to digit boundaries', () => {
  // Values of p/q whose 2^32·e^(−p/q) falls within 2^-8 of an integer are the ones a careless
  // double-precision digit would get wrong; find some and check them all against BigInt.
  let nearBoundary = 0;
  for (let q = 7; q < 4000; q += 37) {
    for (let p = 1; p < 40 * q; p += 1 + (p >> 3)) {
      const s = Math.exp(-p / q) * 4294967296;
      const near = Math.min(s - Math.floor(s), Math.ceil(s) - s) < 2 ** -8;
      if (!near && p % 11 !== 0) continue;
      if (near) nearBoundary++;
      assert.equal(expNegDigit(p, q), Number(floorExpNegScaled(BigInt(p), BigInt(q), 32)), `${p}/${q}`);
    }
  }
  assert.ok(nearBoundary > 10, `only ${nearBoundary} near-boundary cases were exercised`);
});

test('geometric draws from the table fit P(G = k) = (1 − e^(−1/t))·e^(−k/t) (χ², 4·10^5 draws, t = 3 and 25)', () => {
  for (const t of [3, 25]) {
    // A tiny table (the first 5 digits) forces the memoryless restart on most draws as well.
    for (const digits of [geometricDigits(t), geometricDigits(t).slice(0, 5)]) {
      const draw = geometricFromDigits(digits, t);
      const xs = Float64Array.from({ length: 400_000 }, () => draw());
      const r = chiSquareIntegers(xs, (k) => (k < 0 ? 0 : -Math.expm1(-1 / t) * Math.exp(-k / t)));
      assert.ok(r.pValue > 1e-5, `t = ${t}, table of ${digits.length}: χ² = ${r.statistic.toFixed(1)} on ${r.df} df, p = ${r.pValue}`);
    }
  }
});

test('the discrete Gaussian at the demo variance 75907/128 fits its exact pmf over 10^6 draws on the table path', () => {
  const s = new DiscreteGaussian('75907/128');
  let r = chiSquareIntegers(s.fill(new Float64Array(1_000_000)), (k) => discreteGaussianPmf(k, '75907/128'));
  if (r.pValue <= 1e-4) r = chiSquareIntegers(s.fill(new Float64Array(1_000_000)), (k) => discreteGaussianPmf(k, '75907/128'));
  assert.ok(r.pValue > 1e-4, `χ² = ${r.statistic.toFixed(1)} on ${r.df} df, p = ${r.pValue} (twice in a row)`);
});
