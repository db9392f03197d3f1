import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { discreteGaussianDelta, discreteGaussianGdp, ETA } from './discrete-gaussian-gdp.ts';
import { gaussianDelta } from './analytic-gaussian.ts';
import { discreteGaussianNormalizer } from './discrete-gaussian.ts';

/** CKS 2020 Thm 7 written out with direct sums, independently of the module's tail table. */
function exactDelta(eps: number, s2: number, v: number): number {
  const z = discreteGaussianNormalizer(s2);
  const tail = (x: number): number => { let s = 0; for (let y = Math.floor(x) + 1; y < Math.abs(x) + 60 * Math.sqrt(s2) + 60; y++) s += Math.exp(-(y * y) / (2 * s2)); return s / z; };
  return Math.max(0, tail((eps * s2) / v - v / 2) - Math.exp(eps) * tail((eps * s2) / v + v / 2));
}

describe('the discrete Gaussian as μ-GDP', () => {
  it('computes the exact privacy profile of CKS 2020 Thm 7', () => {
    for (const [s2, v] of [[4, 1], [21.9, 1], [100, 3]] as const) {
      for (const eps of [0.1, 0.5, 1, 2]) {
        const want = exactDelta(eps, s2, v);
        assert.ok(Math.abs(discreteGaussianDelta(eps, s2, v) - want) <= 1e-12 + 1e-9 * want, `σ²=${s2} v=${v} ε=${eps}`);
      }
    }
  });

  it('charges a μ whose Gaussian profile lies above the exact one at every ε (checked on a grid 10× finer than its own)', () => {
    for (const s2 of [4, 21.9, 593]) {
      const g = discreteGaussianGdp(s2);
      const epsMax = (0.5 + Math.sqrt(2 * s2 * Math.log(1 / ETA))) / s2;
      for (let i = 0; i <= 3000; i++) {
        const eps = (epsMax * i) / 3000;
        assert.ok(exactDelta(eps, s2, 1) <= gaussianDelta(eps, g.mu) + ETA, `σ²=${s2} ε=${eps}`);
      }
      assert.ok(g.factor >= 1 && g.factor < 1.02, `factor ${g.factor}`);
    }
  });

  it('needs the factor: the plain μ = 1/σ under-counts the discrete Gaussian somewhere', () => {
    assert.ok(exactDelta(1, 4, 1) > gaussianDelta(1, 1 / 2));
  });

  it('covers integer shifts v > 1 at the same σ² with the factor computed for v = 1', () => {
    for (const s2 of [21.9, 593]) {
      const one = discreteGaussianGdp(s2, 1).factor;
      for (const v of [2, 3, 5]) assert.ok(discreteGaussianGdp(s2, v).factor <= one + 2e-4, `σ²=${s2} v=${v}: ${discreteGaussianGdp(s2, v).factor} vs ${one}`);
    }
  });
});
