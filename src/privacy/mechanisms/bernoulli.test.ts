import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bernoulliExpNeg1, bernoulliExpNeg1Reference, bernoulliExpNegFromTable, bernoulliExpNegUnchecked, expNegDigitTable, expNegTieBreak,
  geometricExpNeg1, geometricExpNeg1Reference, sampleBernoulli, sampleBernoulliExpNeg,
} from './bernoulli.ts';
import { floorExpNegScaled } from './exp-neg-bits.ts';
import { chiSquareIntegers } from './statistics.ts';

/** |observed − np| within 5 standard deviations (false alarm ≈ 6·10^−7 per check). */
function assertFrequency(draw: () => boolean, p: number, n: number, label: string): void {
  let hits = 0;
  for (let i = 0; i < n; i++) if (draw()) hits++;
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(hits - n * p) <= 5 * sd + 1e-9, `${label}: ${hits} of ${n}, expected ${n * p}`);
}

test('Bernoulli(p) hits p for rational p, including 0 and 1', () => {
  assertFrequency(() => sampleBernoulli('1/3'), 1 / 3, 300_000, '1/3');
  assertFrequency(() => sampleBernoulli({ num: 1n, den: (1n << 60n) / 3n }), 3 / 2 ** 60, 1000, 'tiny p, BigInt path');
  assertFrequency(() => sampleBernoulli(0), 0, 1000, '0');
  assertFrequency(() => sampleBernoulli(1), 1, 1000, '1');
  assert.throws(() => sampleBernoulli('3/2'), { detail: 'DP_PARAMETER_OUT_OF_RANGE' });
  assert.throws(() => sampleBernoulli(NaN), { detail: 'DP_PARAMETER_INVALID' });
});

test('Bernoulli(exp(−γ)) (Algorithm 1) hits exp(−γ) for γ below, at and above 1', () => {
  for (const [g, gamma] of [['0', 0], ['1/2', 0.5], ['1', 1], ['27/10', 2.7], ['1/1000003', 1 / 1000003]] as const) {
    assertFrequency(() => sampleBernoulliExpNeg(g), Math.exp(-gamma), 400_000, `γ = ${g}`);
  }
  assertFrequency(() => bernoulliExpNegUnchecked(5, 3, false), Math.exp(-5 / 3), 400_000, 'reference path γ = 5/3');
  assert.throws(() => sampleBernoulliExpNeg(-1), { detail: 'DP_PARAMETER_OUT_OF_RANGE' });
  assert.throws(() => sampleBernoulliExpNeg('1e20'), { detail: 'DP_PARAMETER_OUT_OF_RANGE' });
});

test('Bernoulli(exp(−1)) by digit comparison and by Algorithm 1 both hit 1/e', () => {
  assertFrequency(bernoulliExpNeg1, Math.exp(-1), 1_000_000, 'table');
  assertFrequency(bernoulliExpNeg1Reference, Math.exp(-1), 1_000_000, 'Algorithm 1');
});

test('the geometric step of Algorithm 2 has P(V = v) = (1 − 1/e)·e^(−v), table scan and loop alike', () => {
  const pmf = (v: number) => (v < 0 ? 0 : (1 - Math.exp(-1)) * Math.exp(-v));
  for (const [name, draw] of [['table', geometricExpNeg1], ['loop', geometricExpNeg1Reference]] as const) {
    const xs = new Int32Array(1_000_000);
    for (let i = 0; i < xs.length; i++) xs[i] = draw();
    const r = chiSquareIntegers(xs, pmf);
    assert.ok(r.pValue > 1e-4, `${name}: χ² = ${r.statistic} on ${r.df} df, p = ${r.pValue}`);
  }
});

test('exact digits of exp(−x) agree with published values and across precisions', () => {
  // 2^53·e^(−1) = 3313563428353947.6…, 2^53·e^(−1/3) = 6453940286598820.4… (mpmath, 60 digits)
  assert.equal(floorExpNegScaled(1n, 1n, 53), 3313563428353947n);
  assert.equal(floorExpNegScaled(1n, 3n, 53), 6453940286598820n);
  assert.equal(floorExpNegScaled(0n, 5n, 10), 1024n);
  for (const [p, q] of [[1n, 1n], [22n, 1n], [5n, 7n], [96n, 97n]] as const) {
    assert.equal(floorExpNegScaled(p, q, 200) >> 147n, floorExpNegScaled(p, q, 53));
    assert.ok(Math.abs(Number(floorExpNegScaled(p, q, 53)) - 2 ** 53 * Math.exp(-Number(p) / Number(q))) < 2 ** 53 * 1e-14);
  }
});

test('a digit table built by powers equals digits computed one by one', () => {
  const t = 97;
  const table = expNegDigitTable(t);
  for (let u = 1; u < t; u++) assert.equal(table[u], Number(floorExpNegScaled(BigInt(u), BigInt(t), 32)), `u = ${u}`);
  assertFrequency(() => bernoulliExpNegFromTable(table, 40, t), Math.exp(-40 / 97), 300_000, 'table draw u = 40');
  assertFrequency(() => bernoulliExpNegFromTable(table, 0, t), 1, 1000, 'u = 0');
});

test('the tie-break after equal leading digits is Bernoulli(the remaining digits)', () => {
  // After the first 32 bits tie, P(R < e^(−x)) = frac(2^32·e^(−x)).
  for (const [p, q] of [[1n, 1n], [3n, 7n]] as const) {
    const scaled = floorExpNegScaled(p, q, 96);
    const frac = Number(scaled & ((1n << 64n) - 1n)) / 2 ** 64;
    assertFrequency(() => expNegTieBreak(p, q), frac, 40_000, `tie-break ${p}/${q}`);
  }
});
