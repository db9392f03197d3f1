import { test } from 'node:test';
import assert from 'node:assert/strict';
import { laplaceScale } from './calibration.ts';
import { DiscreteLaplace } from './discrete-laplace.ts';
import { fixedPointSensitivity, fixedPointSum } from './fixed-point.ts';
import { stochasticPrivacyTest } from './stochastic-tester.ts';
import type { Rational } from './rational.ts';

const EPSILON = 1;
const RUNS = 60_000;
const bounds = { lower: 0, upper: 10, granularity: 1 };

/** Scale `factor` times the correct one (factor 0.1 = the deliberately broken mechanism). */
function scaled(r: Rational, factor: number): DiscreteLaplace {
  return new DiscreteLaplace({ num: r.num, den: r.den * BigInt(Math.round(1 / factor)) });
}

function countMechanism(factor = 1) {
  const noise = scaled(laplaceScale(1, EPSILON), factor);
  return (rows: number[]) => rows.length + noise.sample();
}

function sumMechanism(factor = 1) {
  const noise = scaled(laplaceScale(fixedPointSensitivity(bounds), EPSILON), factor);
  return (rows: number[]) => fixedPointSum(rows, bounds) + noise.sample();
}

/** Noisy sum / noisy count, ε split in half between them. */
function meanMechanism(factor = 1) {
  const sumNoise = scaled(laplaceScale(fixedPointSensitivity(bounds), EPSILON / 2), factor);
  const countNoise = scaled(laplaceScale(1, EPSILON / 2), factor);
  return (rows: number[]) => (fixedPointSum(rows, bounds) + sumNoise.sample()) / Math.max(1, rows.length + countNoise.sample());
}

// Neighbours differ by one privacy unit whose value is far outside the bounds: clamping must hold it to 10.
const d1 = [3, 7, 1, 9, 4];
const d2 = [...d1, 1e9];

test('a correctly calibrated count, sum and mean pass the stochastic DP test at ε = 1', () => {
  for (const [name, mech] of [['count', countMechanism()], ['sum', sumMechanism()], ['mean', meanMechanism()]] as const) {
    const r = stochasticPrivacyTest(mech, d1, d2, { epsilon: EPSILON, runs: RUNS });
    assert.ok(r.passed, `${name}: loss lower bound ${r.epsilonLowerBound.toFixed(3)} > ε (${JSON.stringify(r.worstEvent)})`);
    assert.ok(r.epsilonPointEstimate < 1.5, `${name}: point estimate ${r.epsilonPointEstimate}`);
  }
});

test('the same test catches each mechanism with noise 10× too small', () => {
  for (const [name, mech] of [['count', countMechanism(0.1)], ['sum', sumMechanism(0.1)], ['mean', meanMechanism(0.1)]] as const) {
    const r = stochasticPrivacyTest(mech, d1, d2, { epsilon: EPSILON, runs: RUNS });
    assert.ok(!r.passed, `${name}: broken mechanism passed with loss lower bound ${r.epsilonLowerBound}`);
    assert.ok(r.epsilonLowerBound > 2 * EPSILON, `${name}: ${r.epsilonLowerBound}`);
  }
});

test('a sum that forgets to clamp is caught even with correctly scaled noise', () => {
  const noise = new DiscreteLaplace(laplaceScale(fixedPointSensitivity(bounds), EPSILON));
  const unclamped = (rows: number[]) => rows.reduce((a, b) => a + Math.min(b, 1000), 0) + noise.sample();
  const r = stochasticPrivacyTest(unclamped, d1, d2, { epsilon: EPSILON, runs: 20_000 });
  assert.ok(!r.passed);
});

test('the tester refuses nonsense options', () => {
  const m = countMechanism();
  assert.throws(() => stochasticPrivacyTest(m, d1, d2, { epsilon: 0 }), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => stochasticPrivacyTest(m, d1, d2, { epsilon: 1, runs: 0 }), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => stochasticPrivacyTest(m, d1, d2, { epsilon: 1, delta: 1 }), { detail: 'DP_PARAMETER_INVALID' });
  assert.throws(() => stochasticPrivacyTest(() => NaN, d1, d2, { epsilon: 1, runs: 10 }), { detail: 'DP_PARAMETER_INVALID' });
});
