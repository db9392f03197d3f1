import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { composeLosses, deltaAt, epsilonAt, releasesThatFit, repeat, type PrivacyLoss } from './pld.ts';
import { analyticGaussianSigma, gaussianDelta } from '../mechanisms/analytic-gaussian.ts';
import { discreteGaussianNormalizer } from '../mechanisms/discrete-gaussian.ts';
import { discreteGaussianGdp, ETA } from '../mechanisms/discrete-gaussian-gdp.ts';
import { rhoForEpsilonDelta } from './zcdp.ts';

/** Kairouz–Oh–Viswanath 2015, Thm 3.3: δ of k-fold ε0-DP at ε = (k − 2i)ε0, written from the paper. */
function kovDelta(k: number, eps0: number, i: number): number {
  let num = 0;
  const binom = (n: number, r: number): number => { let b = 1; for (let j = 1; j <= r; j++) b = (b * (n - r + j)) / j; return b; };
  for (let l = 0; l < i; l++) num += binom(k, l) * (Math.exp((k - l) * eps0) - Math.exp((k - 2 * i + l) * eps0));
  return num / (1 + Math.exp(eps0)) ** k;
}

const pure = (e: number): PrivacyLoss => ({ pure: [e], mu2: 0, delta: 0 });
const gauss = (mu: number): PrivacyLoss => ({ pure: [], mu2: mu * mu, delta: 0 });

describe('PLD accountant', () => {
  it('matches Kairouz–Oh–Viswanath optimal composition of k pure ε0-DP releases at every corner point', () => {
    for (const [k, eps0] of [[10, 1], [20, 0.5], [30, 0.1]] as const) {
      for (let i = 0; i <= Math.min(4, k / 2); i++) {
        const eps = (k - 2 * i) * eps0;
        const want = kovDelta(k, eps0, i);
        const got = deltaAt(repeat(pure(eps0), k), eps);
        assert.ok(Math.abs(got - want) <= 1e-12 + 1e-9 * want, `k=${k} ε0=${eps0} i=${i}: ${got} vs ${want}`);
      }
    }
  });

  it('fits ten Laplace releases of ε = 1 in a (10, 1e-6) budget and not eleven, as optimal composition does', () => {
    assert.equal(releasesThatFit(pure(1), { epsilon: 10, delta: 1e-6 }), 10);
    // The zCDP ledger (ρ = ε²/2 per release, capped at ρ(10, 1e-6)) fits only 3.
    assert.equal(Math.floor(rhoForEpsilonDelta(10, 1e-6) / 0.5), 3);
  });

  it('composes Gaussian releases exactly: k releases of μ equal one release of μ√k (Dong–Roth–Su Cor. 3.3)', () => {
    const mu = 0.3, k = 25;
    for (const eps of [0.5, 1, 2]) {
      assert.ok(Math.abs(deltaAt(repeat(gauss(mu), k), eps) - gaussianDelta(eps, mu * Math.sqrt(k))) < 1e-15);
    }
  });

  it('gives the Gaussian privacy profile that numerical integration of the privacy loss gives', () => {
    // δ(ε) = E[(1 − e^{ε−L})₊], L ~ N(μ²/2, μ²), by the trapezoid rule on a fine grid.
    const mu = 0.8, eps = 1.2;
    let acc = 0; const h = 1e-4;
    for (let x = eps; x < mu * mu / 2 + 40 * mu; x += h) {
      const pdf = Math.exp(-((x - mu * mu / 2) ** 2) / (2 * mu * mu)) / (mu * Math.sqrt(2 * Math.PI));
      acc += pdf * -Math.expm1(eps - x) * h;
    }
    assert.ok(Math.abs(deltaAt(gauss(mu), eps) - acc) < 1e-8, `${deltaAt(gauss(mu), eps)} vs ${acc}`);
  });

  it('fits at least as many (1, 1e-7) analytic Gaussian releases in (10, 1e-6) as the zCDP ledger, and more', () => {
    const sigma = analyticGaussianSigma(1, 1e-7);
    const pldCount = releasesThatFit(gauss(1 / sigma), { epsilon: 10, delta: 1e-6 });
    const zcdpCount = Math.floor(rhoForEpsilonDelta(10, 1e-6) / (1 / (2 * sigma * sigma)));
    assert.ok(pldCount > zcdpCount, `${pldCount} vs ${zcdpCount}`);
  });

  it('adds δ paid outright (partition selection) to the composed δ, so a budget runs out of δ', () => {
    const each: PrivacyLoss = { pure: [0.1], mu2: 0, delta: 1e-7 };
    assert.equal(releasesThatFit(each, { epsilon: 10, delta: 1e-6 }), 10);
    assert.equal(epsilonAt(composeLosses([each, each]), 1e-7), Infinity);
  });

  it('mixes pure and Gaussian releases: the mixture costs no more than either accounted alone with basic composition', () => {
    const mix = composeLosses([pure(1), pure(1), gauss(0.5)]);
    const eps = epsilonAt(mix, 1e-6);
    const basic = 2 + epsilonAt(gauss(0.5), 1e-6);
    assert.ok(eps < basic && eps > epsilonAt(gauss(0.5), 1e-6), `${eps} vs ${basic}`);
  });

  it('charges the discrete Gaussian a μ whose Gaussian profile covers its exact one (CKS 2020, Thm 7)', () => {
    // δ of N_Z(0, σ²) on sensitivity 1: P[Y > εσ² − 1/2] − e^ε·P[Y > εσ² + 1/2], Y ~ N_Z(0, σ²).
    for (const s2 of [4, 21.9, 100, 530]) {
      const z = discreteGaussianNormalizer(s2);
      const tail = (x: number): number => { let s = 0; for (let y = Math.floor(x) + 1; y < x + 60 * Math.sqrt(s2) + 60; y++) s += Math.exp(-(y * y) / (2 * s2)); return s / z; };
      for (const eps of [0.25, 0.5, 1, 2]) {
        const discrete = tail(eps * s2 - 0.5) - Math.exp(eps) * tail(eps * s2 + 0.5);
        // The lattice makes the plain μ = 1/σ under-count at some ε (this is why the factor exists) …
        const charged = discreteGaussianGdp(s2);
        assert.ok(discrete <= deltaAt(gauss(charged.mu), eps) + ETA, `σ²=${s2} ε=${eps}: ${discrete}`);
        assert.ok(charged.factor < 1.02 && charged.factor >= 1);
      }
      // … and the difference is real: somewhere the plain continuous profile is below the discrete one.
      if (s2 === 4) {
        const eps = 1;
        const discrete = tail(eps * s2 - 0.5) - Math.exp(eps) * tail(eps * s2 + 0.5);
        assert.ok(discrete > deltaAt(gauss(1 / Math.sqrt(s2)), eps));
      }
    }
  });

  it('refuses malformed losses', () => {
    assert.throws(() => deltaAt({ pure: [-1], mu2: 0, delta: 0 }, 1), /pure epsilon/);
    assert.throws(() => deltaAt({ pure: [], mu2: NaN, delta: 0 }, 1), /mu2/);
    assert.throws(() => deltaAt({ pure: [], mu2: 0, delta: 1 }, 1), /delta/);
  });
});
