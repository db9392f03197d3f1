import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clampToFixedPoint, fixedPointSensitivity, fixedPointSum, fromFixedPoint, toFixedPoint } from './fixed-point.ts';

const cents = { lower: -50, upper: 200, granularity: 0.01 };

test('values encode at the declared granularity and decode back', () => {
  assert.equal(toFixedPoint(12.34, 0.01), 1234);
  assert.equal(toFixedPoint(-12.345, 0.01), -1235); // half away from zero, symmetric
  assert.equal(toFixedPoint(12.345, 0.01), 1235);
  assert.equal(toFixedPoint(-0, 1), 0);
  assert.ok(!Object.is(toFixedPoint(-0.001, 1), -0));
  assert.equal(fromFixedPoint(1234, 0.01), 12.34);
});

test('clamping applies the declared bounds, and out-of-bounds values cost no more than the bounds', () => {
  assert.equal(clampToFixedPoint(1e12, cents), 20000);
  assert.equal(clampToFixedPoint(-1e12, cents), -5000);
  assert.equal(fixedPointSum([1e300, -1e300, 1], cents), 20000 - 5000 + 100);
});

test('sensitivity scales with 1/granularity: max(|lower|, |upper|) for add/remove, the width for replace', () => {
  assert.equal(fixedPointSensitivity(cents), 20000);
  assert.equal(fixedPointSensitivity(cents, 'replace'), 25000);
  assert.equal(fixedPointSensitivity({ ...cents, granularity: 1 }), 200);
  assert.equal(fixedPointSensitivity({ lower: 0, upper: 1, granularity: 1 }), 1);
});

test('NaN, infinities, bad granularity, inverted bounds and overflow are refused', () => {
  for (const v of [NaN, Infinity, -Infinity]) {
    assert.throws(() => toFixedPoint(v, 1), { detail: 'DP_PARAMETER_INVALID' });
    assert.throws(() => clampToFixedPoint(v, cents), { detail: 'DP_PARAMETER_INVALID' });
    assert.throws(() => fixedPointSum([1, v], cents), { detail: 'DP_PARAMETER_INVALID' });
  }
  for (const g of [0, -1, NaN, Infinity]) assert.throws(() => toFixedPoint(1, g), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => fixedPointSensitivity({ lower: 1, upper: 0, granularity: 1 }), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => toFixedPoint(2 ** 60, 1), { detail: 'DP_FIXED_POINT_OVERFLOW' });
  assert.throws(() => toFixedPoint(1, 1e-300), { detail: 'DP_FIXED_POINT_OVERFLOW' });
  // int64-sized sums: 10^6 rows of a 2^40 bound would pass 2^53.
  const big = { lower: 0, upper: 2 ** 40, granularity: 1 };
  assert.throws(() => fixedPointSum(new Array(1_000_000).fill(2 ** 40), big), { detail: 'DP_FIXED_POINT_OVERFLOW' });
});

test('one privacy unit with 10^6 rows contributes no more than its clamped bound per row', () => {
  const rows = new Array<number>(1_000_000).fill(1e9);
  assert.equal(fixedPointSum(rows, { lower: 0, upper: 5, granularity: 1 }), 5_000_000);
});
