import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBit, randomUint32, uniformBelow } from './rng.ts';
import { chiSquareSurvival } from './statistics.ts';

function uniformChiSquare(counts: number[], n: number): number {
  const e = n / counts.length;
  const stat = counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
  return chiSquareSurvival(stat, counts.length - 1);
}

test('uniformBelow is uniform for a small bound (Lemire path)', () => {
  const k = 7;
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < 700_000; i++) counts[uniformBelow(k)]!++;
  assert.ok(uniformChiSquare(counts, 700_000) > 1e-4);
});

test('uniformBelow is uniform in the top bits for bounds above 2^21 and above 2^32 (rejection paths)', () => {
  for (const n of [3 * 2 ** 21 + 5, 2 ** 40 + 12345]) {
    const buckets = 10;
    const counts = new Array<number>(buckets).fill(0);
    for (let i = 0; i < 200_000; i++) {
      const x = uniformBelow(n);
      assert.ok(Number.isSafeInteger(x) && x >= 0 && x < n);
      counts[Math.floor((x / n) * buckets)]!++;
    }
    assert.ok(uniformChiSquare(counts, 200_000) > 1e-4, `n = ${n}`);
  }
});

test('uniformBelow accepts a bigint bound of any size and stays below it', () => {
  const n = (1n << 100n) + 3n;
  let top = 0;
  for (let i = 0; i < 20_000; i++) {
    const x = uniformBelow(n);
    assert.ok(x >= 0n && x < n);
    if (x >= n / 2n) top++;
  }
  assert.ok(Math.abs(top - 10_000) < 5 * Math.sqrt(5_000));
  assert.equal(uniformBelow(1n), 0n);
  assert.equal(uniformBelow(1), 0);
});

test('uniformBelow refuses bounds that are not positive integers', () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53 + 2]) assert.throws(() => uniformBelow(bad), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => uniformBelow(0n), { detail: 'DP_PARAMETER_INVALID' });
});

test('random words and bits are balanced', () => {
  let ones = 0;
  let high = 0;
  for (let i = 0; i < 200_000; i++) { ones += randomBit(); if (randomUint32() >= 2 ** 31) high++; }
  assert.ok(Math.abs(ones - 100_000) < 5 * Math.sqrt(50_000));
  assert.ok(Math.abs(high - 100_000) < 5 * Math.sqrt(50_000));
});

test('no mechanism source calls Math.random', () => {
  const dir = new URL('.', import.meta.url);
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.ts') || f.endsWith('.test.ts')) continue;
    const src = readFileSync(new URL(f, dir), 'utf8');
    assert.doesNotMatch(src, /Math\.random\s*\(/, f);
  }
});
