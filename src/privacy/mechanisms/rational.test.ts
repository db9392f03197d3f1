import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isqrt, positiveRational, rational } from './rational.ts';

test('decimal strings and numbers convert exactly, in lowest terms', () => {
  assert.deepEqual(rational('0.1'), { num: 1n, den: 10n });
  assert.deepEqual(rational(0.1), { num: 1n, den: 10n });
  assert.deepEqual(rational('2.50'), { num: 5n, den: 2n });
  assert.deepEqual(rational('7/2'), { num: 7n, den: 2n });
  assert.deepEqual(rational('1e-3'), { num: 1n, den: 1000n });
  assert.deepEqual(rational('1.5E2'), { num: 150n, den: 1n });
  assert.deepEqual(rational('.25'), { num: 1n, den: 4n });
  assert.deepEqual(rational('-3'), { num: -3n, den: 1n });
  assert.deepEqual(rational(-0), { num: 0n, den: 1n });
  assert.deepEqual(rational(1e21), { num: 10n ** 21n, den: 1n });
  assert.deepEqual(rational('0.30000000000000004'), { num: 7500000000000001n, den: 25000000000000000n });
});

test('NaN, infinities and malformed strings are refused', () => {
  for (const bad of [NaN, Infinity, -Infinity]) assert.throws(() => rational(bad), { detail: 'DP_PARAMETER_INVALID' });
  for (const bad of ['', ' ', 'abc', '1..2', '0x10', '1/0', 'Infinity', 'NaN', '.', 'e5', '1e']) {
    assert.throws(() => rational(bad), { detail: 'DP_PARAMETER_INVALID' }, bad);
  }
  assert.throws(() => rational('1e999999'), { detail: 'DP_PARAMETER_OUT_OF_RANGE' });
  assert.throws(() => rational('1'.repeat(1000)), { detail: 'DP_PARAMETER_INVALID' });
});

test('positive parameters refuse zero, negatives, -0, forged objects and absurd sizes', () => {
  for (const bad of [0, '0', -1, '-0.5', { num: 0n, den: 1n }, { num: -1n, den: 2n }, { num: (1n << 70n) + 1n, den: 1n << 69n }]) {
    assert.throws(() => positiveRational(bad, 'scale', 1n << 40n), { detail: 'DP_PARAMETER_OUT_OF_RANGE' });
  }
  assert.throws(() => positiveRational(-0, 'scale', 10n), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => positiveRational({ num: 1, den: 2 } as never, 'scale', 10n), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => positiveRational({ num: 1n, den: 0n }, 'scale', 10n), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => positiveRational(11, 'scale', 10n), { detail: 'DP_PARAMETER_OUT_OF_RANGE' });
  assert.deepEqual(positiveRational({ num: 6n, den: -4n * -1n }, 'scale', 10n), { num: 3n, den: 2n });
});

test('isqrt is the exact integer square root', () => {
  for (const n of [0n, 1n, 2n, 3n, 4n, 99n, 100n, 101n, (1n << 80n) - 1n, 1n << 80n, 10n ** 30n + 7n]) {
    const r = isqrt(n);
    assert.ok(r * r <= n && (r + 1n) * (r + 1n) > n, String(n));
  }
});
