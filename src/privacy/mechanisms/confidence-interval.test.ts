import { test } from 'node:test';
import assert from 'node:assert/strict';
import { confidenceInterval } from './confidence-interval.ts';
import { DiscreteGaussian, discreteGaussianPmf } from './discrete-gaussian.ts';
import { DiscreteLaplace, discreteLaplacePmf } from './discrete-laplace.ts';

function summedHalfWidth(pmf: (k: number) => number, level: number): number {
  let mass = pmf(0);
  let h = 0;
  while (mass < level) { h++; mass += 2 * pmf(h); }
  return h;
}

test('the Laplace closed form gives the same half-width as summing the pmf', () => {
  for (const t of [0.3, 1, 2, 3.5, 10, 100, 1234.5]) {
    for (const level of [0.5, 0.9, 0.95, 0.99]) {
      assert.equal(confidenceInterval({ kind: 'laplace', scale: t }, level), summedHalfWidth((k) => discreteLaplacePmf(k, t), level), `t = ${t}, ${level}`);
    }
  }
  assert.equal(confidenceInterval({ kind: 'laplace', scale: 1 }), 3);
});

test('the Gaussian half-width is the smallest h whose summed pmf reaches the level', () => {
  for (const s2 of [0.25, 1, 10, 100, 1e6]) {
    const h = confidenceInterval({ kind: 'gaussian', sigma2: s2 }, 0.95);
    assert.equal(h, summedHalfWidth((k) => discreteGaussianPmf(k, s2), 0.95), `σ² = ${s2}`);
  }
  // σ = 100: the continuous 1.96σ is 196.
  assert.equal(confidenceInterval({ kind: 'gaussian', sigma2: 10_000 }), 196);
});

test('for very large σ the integral method agrees with the direct sum to within its one-unit margin', () => {
  const s2 = 2 ** 36; // σ = 2^18, above the direct-sum cut-off
  const h = confidenceInterval({ kind: 'gaussian', sigma2: s2 }, 0.95);
  const direct = summedHalfWidth((k) => discreteGaussianPmf(k, s2), 0.95);
  assert.ok(h >= direct && h <= direct + 2, `${h} vs ${direct}`);
});

test('noisy values fall within the interval at least as often as the level says', () => {
  const n = 200_000;
  for (const [mech, sampler] of [
    [{ kind: 'laplace', scale: 4 }, new DiscreteLaplace(4)],
    [{ kind: 'gaussian', sigma2: 9 }, new DiscreteGaussian(9)],
  ] as const) {
    const h = confidenceInterval(mech, 0.9);
    let inside = 0;
    for (let i = 0; i < n; i++) if (Math.abs(sampler.sample()) <= h) inside++;
    assert.ok(inside / n >= 0.9 - 5 * Math.sqrt(0.09 / n), `${mech.kind}: ${inside / n}`);
  }
});
