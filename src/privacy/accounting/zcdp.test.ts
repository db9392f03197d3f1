import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  composeRho, deltaForEpsilon, deltaForEpsilonSimple, epsilonDiscreteLaplace, epsilonForDelta, epsilonForDeltaSimple,
  rhoDiscreteGaussian, rhoDiscreteLaplace, rhoForEpsilonDelta, rhoFromPureEpsilon, scaleForEpsilon, sigma2ForEpsilonDelta,
  sigma2ForRho, toEpsilonDelta,
} from './zcdp.ts';
import { DpParameterInvalid } from './errors.ts';

function close(actual: number, expected: number, rel = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${actual} is not within ${rel} of ${expected}`);
}

test('the discrete Gaussian with sensitivity Δ and variance σ² costs ρ = Δ²/(2σ²) (CKS 2020 Thm 4)', () => {
  assert.equal(rhoDiscreteGaussian(1, 0.5), 1);
  assert.equal(rhoDiscreteGaussian(1, 20), 0.025);
  assert.equal(rhoDiscreteGaussian(3, 9), 0.5);
  assert.equal(sigma2ForRho(0.025, 1), 20);
  close(sigma2ForRho(rhoDiscreteGaussian(7, 123.5), 7), 123.5, 1e-15);
});

test('pure ε-DP, and the discrete Laplace with scale t (ε = Δ/t), cost ρ = ε²/2 (Bun–Steinke 2016 Prop 1.4)', () => {
  assert.equal(epsilonDiscreteLaplace(2, 4), 0.5);
  assert.equal(rhoFromPureEpsilon(1), 0.5);
  assert.equal(rhoDiscreteLaplace(2, 4), 0.125);
  assert.equal(scaleForEpsilon(0.5, 2), 4);
});

test('composition adds ρ, so k queries at ρ cost kρ', () => {
  assert.equal(composeRho([]), 0);
  assert.equal(composeRho([0.25, 0.5, 0.25]), 1);
  close(composeRho(Array.from({ length: 10 }, () => rhoDiscreteGaussian(1, 50))), 0.1, 1e-12);
});

// Reference values: the examples printed by the CKS 2020 reference script
// (github.com/IBM/discrete-gaussian-differential-privacy, cdp2adp.py, __main__) and further
// points, all computed with an independent Python transcription of Cor 13 of
// arXiv:2004.00010 (1000-step bisections, as in the script).
const TIGHT_DELTA: [rho: number, eps: number, delta: number][] = [
  [0.025, 1, 1.3361319064032213e-6],
  [1, 5, 0.0026120345066204856],
  [0.5, 3, 0.005143184063862147],
  [0.1, 2, 4.325210869092554e-6],
  [2, 10, 4.872630732922501e-5],
];
const TIGHT_EPS: [rho: number, delta: number, eps: number][] = [
  [0.025, 1e-6, 1.014074254726128],
  [0.5, 1e-6, 5.221534444530169],
  [1, 1e-5, 7.0771966958063395],
  [0.07, 1e-10, 2.3872751767179743],
  [2.56, 1e-10, 17.15830871210475],
  [15.29, 1e-10, 51.562576187941616],
];
const TIGHT_RHO: [eps: number, delta: number, rho: number][] = [
  [1, 1e-6, 0.024355970359538372],
  [2, 1e-8, 0.0639404456730883],
];

test('ρ → δ at a given ε matches the CKS 2020 Corollary 13 reference values', () => {
  for (const [rho, eps, delta] of TIGHT_DELTA) close(deltaForEpsilon(rho, eps), delta, 1e-9);
});

test('ρ → ε at a given δ matches the CKS 2020 Corollary 13 reference values', () => {
  for (const [rho, delta, eps] of TIGHT_EPS) close(epsilonForDelta(rho, delta), eps, 1e-9);
});

test('(ε, δ) → largest ρ matches the CKS 2020 reference values', () => {
  for (const [eps, delta, rho] of TIGHT_RHO) close(rhoForEpsilonDelta(eps, delta), rho, 1e-9);
});

test('the simple bound is ε = ρ + 2√(ρ ln(1/δ)) and the tight conversion never exceeds it', () => {
  close(epsilonForDeltaSimple(0.5, 1e-10), 0.5 + 2 * Math.sqrt(0.5 * Math.log(1e10)), 1e-15);
  close(epsilonForDeltaSimple(2.56, 1e-10), 17.91528291900186, 1e-12);
  for (const rho of [1e-6, 1e-3, 0.025, 0.5, 1, 5, 50]) {
    for (const delta of [1e-12, 1e-9, 1e-6, 1e-3, 0.1]) {
      const tight = epsilonForDelta(rho, delta);
      assert.ok(tight <= epsilonForDeltaSimple(rho, delta), `rho=${rho} delta=${delta}`);
      assert.ok(tight > 0);
    }
  }
  for (const [rho, eps] of [[0.5, 3], [1, 5], [0.1, 2]] as const) assert.ok(deltaForEpsilon(rho, eps) <= deltaForEpsilonSimple(rho, eps));
});

test('every converted ε is a valid bound: its δ is at most the target', () => {
  for (const rho of [1e-9, 1e-4, 0.01, 0.3, 1, 4, 100]) {
    for (const delta of [1e-15, 1e-10, 1e-6, 1e-2]) {
      assert.ok(deltaForEpsilon(rho, epsilonForDelta(rho, delta)) <= delta, `rho=${rho} delta=${delta}`);
    }
  }
});

test('the tight δ is never below the exact δ of the Gaussian mechanism, which is ρ-zCDP (Balle–Wang 2018 Thm 8)', () => {
  // δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2), μ = √(2ρ): the Gaussian's exact privacy
  // profile, computed with Python's math.erfc. A valid conversion cannot go below it.
  const exact: [number, number, number][] = [
    [0.5, 3, 0.0015371853694009585], [0.5, 5, 5.793721691919479e-7], [0.025, 1, 2.9153206122942377e-7],
    [1, 5, 0.0006996072676706052], [0.1, 2, 9.447996111023133e-7], [2, 10, 9.940202816118127e-6],
  ];
  for (const [rho, eps, delta] of exact) {
    const tight = deltaForEpsilon(rho, eps);
    assert.ok(tight >= delta, `rho=${rho} eps=${eps}`);
    assert.ok(tight <= 10 * delta, 'the tight conversion stays within a small factor of the exact profile');
  }
});

test('conversions are monotone: more ρ means more ε, smaller δ means more ε', () => {
  let last = 0;
  for (const rho of [0.001, 0.01, 0.1, 1, 10]) {
    const eps = epsilonForDelta(rho, 1e-9);
    assert.ok(eps > last);
    last = eps;
  }
  assert.ok(epsilonForDelta(1, 1e-12) > epsilonForDelta(1, 1e-6));
});

test('planning round-trips: σ² planned for (ε, δ) spends a ρ that displays as at most ε', () => {
  for (const [eps, delta, sens] of [[1, 1e-6, 1], [0.5, 1e-9, 3], [4, 1e-10, 10]] as const) {
    const sigma2 = sigma2ForEpsilonDelta(eps, delta, sens);
    const rho = rhoDiscreteGaussian(sens, sigma2);
    const shown = epsilonForDelta(rho, delta);
    assert.ok(shown <= eps * (1 + 1e-12), `shown ${shown} > ${eps}`);
    assert.ok(shown >= eps * (1 - 1e-6), 'and the plan does not waste budget');
  }
});

test('toEpsilonDelta shows both conversions, and ρ = 0 is ε = 0', () => {
  const shown = toEpsilonDelta(2.56, 1e-10);
  close(shown.epsilon, 17.15830871210475);
  close(shown.epsilonSimple, 17.91528291900186, 1e-12);
  assert.deepEqual(toEpsilonDelta(0, 1e-6), { rho: 0, delta: 1e-6, epsilon: 0, epsilonSimple: 0 });
  assert.equal(deltaForEpsilon(0, 1), 0);
  assert.equal(rhoForEpsilonDelta(0, 1e-6), 0);
});

test('δ is capped at 1 when ε is well below ρ', () => {
  assert.equal(deltaForEpsilon(1000, 1), 1);
  assert.ok(deltaForEpsilon(5, 0) <= 1);
  assert.equal(deltaForEpsilonSimple(5, 1), 1);
});

test('NaN, ±Infinity, negative and out-of-range parameters are refused with DP_PARAMETER_INVALID', () => {
  const bad: (() => unknown)[] = [
    () => rhoDiscreteGaussian(NaN, 1), () => rhoDiscreteGaussian(1, 0), () => rhoDiscreteGaussian(1, -0), () => rhoDiscreteGaussian(Infinity, 1),
    () => rhoFromPureEpsilon(-1), () => rhoFromPureEpsilon(NaN), () => epsilonDiscreteLaplace(1, 0),
    () => composeRho([0.1, NaN]), () => composeRho([0.1, -0.1]), () => composeRho([Infinity]), () => composeRho([1e308, 1e308]),
    () => epsilonForDelta(1, 0), () => epsilonForDelta(1, 1), () => epsilonForDelta(1, NaN), () => epsilonForDelta(-1, 1e-6),
    () => epsilonForDelta(Infinity, 1e-6), () => deltaForEpsilon(1, -1), () => deltaForEpsilon(NaN, 1),
    () => rhoForEpsilonDelta(1, 2), () => rhoForEpsilonDelta(-Infinity, 1e-6), () => sigma2ForRho(0, 1), () => sigma2ForRho(1e-320, 1e10),
    () => sigma2ForEpsilonDelta(0, 1e-6, 1), () => scaleForEpsilon(1e-320, 1e10),
    () => epsilonForDelta('1' as unknown as number, 1e-6),
  ];
  for (const f of bad) {
    assert.throws(f, (err: unknown) => err instanceof DpParameterInvalid && err.detail === 'DP_PARAMETER_INVALID' && err.status === 400, f.toString());
  }
});
