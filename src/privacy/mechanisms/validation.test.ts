import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MechanismError, confidenceInterval, discreteGaussianPmf, discreteLaplacePmf, gaussianSigma2, laplaceScale, rational,
  sampleDiscreteGaussian, sampleDiscreteLaplace,
} from './index.ts';

const invalid = { detail: 'DP_PARAMETER_INVALID' };
const outOfRange = { detail: 'DP_PARAMETER_OUT_OF_RANGE' };

test('samplers refuse NaN, ±Infinity and −0 as invalid parameters', () => {
  for (const bad of [NaN, Infinity, -Infinity, -0, 'NaN', 'abc', null, undefined, {}, { num: 1, den: 2 }]) {
    assert.throws(() => sampleDiscreteLaplace(bad as never), invalid, `laplace ${String(bad)}`);
    assert.throws(() => sampleDiscreteGaussian(bad as never), invalid, `gaussian ${String(bad)}`);
  }
});

test('samplers refuse zero, negative and absurdly large scales as out of range', () => {
  for (const bad of [0, '0', -1, '-0.001', { num: -3n, den: 1n }, 2 ** 41, '1e30', { num: 1n, den: 1n << 70n }]) {
    assert.throws(() => sampleDiscreteLaplace(bad as never), outOfRange, `laplace ${String(bad)}`);
  }
  for (const bad of [0, -2, 2 ** 79, '1e300']) assert.throws(() => sampleDiscreteGaussian(bad), outOfRange, `gaussian ${bad}`);
});

test('errors are MechanismErrors with a stable code and a 400 status', () => {
  try {
    sampleDiscreteLaplace(NaN);
    assert.fail('no error');
  } catch (err) {
    assert.ok(err instanceof MechanismError);
    assert.equal(err.status, 400);
    assert.equal(err.name, 'MechanismParameterInvalid');
  }
});

test('the largest accepted scales still give exact integer results', () => {
  for (let i = 0; i < 1000; i++) {
    assert.ok(Number.isSafeInteger(sampleDiscreteLaplace(2 ** 40)));
    assert.ok(Number.isSafeInteger(sampleDiscreteGaussian(rational(2 ** 52))));
  }
});

test('pmfs and intervals validate their arguments too', () => {
  assert.throws(() => discreteLaplacePmf(0.5, 1), invalid);
  assert.throws(() => discreteLaplacePmf(NaN, 1), invalid);
  assert.throws(() => discreteGaussianPmf(1, -1), outOfRange);
  for (const level of [0, 1, -0.5, 1.5, NaN, Infinity]) {
    assert.throws(() => confidenceInterval({ kind: 'laplace', scale: 1 }, level), invalid, String(level));
  }
  assert.throws(() => confidenceInterval({ kind: 'uniform' } as never), invalid);
  assert.throws(() => confidenceInterval({ kind: 'gaussian', sigma2: Infinity }), invalid);
});

test('calibration gives exact scales and refuses non-integer sensitivities', () => {
  assert.deepEqual(laplaceScale(1, '0.5'), { num: 2n, den: 1n });
  assert.deepEqual(laplaceScale(10, 3), { num: 10n, den: 3n });
  assert.deepEqual(gaussianSigma2(2, '0.5'), { num: 4n, den: 1n });
  assert.throws(() => laplaceScale(1.5, 1), invalid);
  assert.throws(() => laplaceScale(1, 0), outOfRange);
  assert.throws(() => laplaceScale(1, NaN), invalid);
  assert.throws(() => gaussianSigma2(0, 1), invalid);
});
