import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DpReleasePlan } from '../query/govern/differential-privacy.ts';
import { chooseSelection, expectedKept, keepProbabilities, normalQuantile, optimalGdpKeepProbabilities, optimalKeepProbabilities } from './partition-selection-optimal.ts';
import { normalCdf } from './mechanisms/normal.ts';
import { describeNoise, keepProbability, planNoise, release } from './release.ts';
import { deltaAt, releasesThatFit } from './accounting/pld.ts';

const sizes = Array.from({ length: 1000 }, (_, i) => 1 + Math.floor((i * 200) / 1000));

function plan(delta: number, mechanism: 'laplace' | 'gaussian' = 'laplace', groupsPerUnit = 1): DpReleasePlan {
  return {
    dataset: 'encounters', keyCount: 1, unitsMeasure: 0, publicDomains: [null], orderBy: [], limit: null, offset: 0,
    measures: [
      { kind: 'units', column: null, l1: 1, l2: 1, linf: 1, resultIndex: 1 },
      { kind: 'rows', column: null, l1: 1, l2: 1, linf: 1, resultIndex: 2 },
    ],
    outputs: [{ kind: 'key', alias: 'code', key: 0 }, { kind: 'count', alias: 'n', measure: 1 }],
    def: { mechanism, epsilon: 1, delta, maxGroupsPerUnit: groupsPerUnit, maxRowsPerUnitPerGroup: 1, publicGroups: {}, budget: { epsilon: 10, delta: 1e-6, window: null, per: 'principal' } },
  } as unknown as DpReleasePlan;
}

describe('optimal partition selection (Desfontaines, Voss, Gipson, Mandayam 2022)', () => {
  it('meets both (ε, δ) constraints between neighbouring group sizes, one of them with equality', () => {
    const eps = 0.7, delta = 1e-4;
    const pi = optimalKeepProbabilities(eps, delta, 200);
    for (let n = 1; n <= 200; n++) {
      const a = Math.exp(eps) * pi[n - 1]! + delta - pi[n]!;
      const b = Math.exp(eps) * (1 - pi[n]!) + delta - (1 - pi[n - 1]!);
      assert.ok(a >= -1e-15 && b >= -1e-15, `n=${n}`);
      assert.ok(Math.min(a, b) < 1e-12 || pi[n] === 1, `n=${n} is not tight`);
    }
  });

  it('keeps at least as many groups as Laplace thresholding at every size, and ≥ 920 of 1,000 groups of 1–200 units at ε = 1, δ = 1e-7', () => {
    const opt = keepProbabilities('optimal', 1, 1e-7, 1, 200), lap = keepProbabilities('laplace-threshold', 1, 1e-7, 1, 200);
    for (let n = 1; n <= 200; n++) assert.ok(opt[n]! >= lap[n]! - 1e-12, `n=${n}`);
    assert.ok(expectedKept('optimal', 1, 1e-7, 1, sizes) >= 920);
    assert.equal(chooseSelection(1, 1e-7, 1, sizes).strategy, 'optimal');
    assert.notEqual(chooseSelection(1, 1e-7, 3, sizes).strategy, 'optimal');
  });

  it('releases a group that one person created no more often than δ, as an attacker counting appearances would see', () => {
    const noise = planNoise(plan(0.05));
    assert.equal(noise.selection?.strategy, 'optimal');
    let seen = 0;
    const runs = 4000;
    for (let i = 0; i < runs; i++) {
      const out = release(noise, { columns: [{ name: 'code', type: 'VARCHAR' }, { name: 'u', type: 'BIGINT' }, { name: 'n', type: 'BIGINT' }], rows: [['rare-diagnosis', 1, 1]] }, 100);
      if (out.rows.length) seen++;
    }
    // P(kept) = π₁ = δ = 0.05; 4 standard deviations above it still refutes an unprotected release.
    assert.ok(seen / runs <= 0.05 + 4 * Math.sqrt(0.05 * 0.95 / runs), `kept ${seen} of ${runs}`);
  });

  it('reports the kept fraction by group size in the query description, charges selection δ, and spends only the unit count’s ε', () => {
    const noise = planNoise(plan(1e-7));
    const d = describeNoise(noise);
    assert.equal(d.selection?.strategy, 'optimal');
    const at = (u: number): number => d.selection!.expectedKeptFraction.find((x) => x.units === u)!.fraction;
    assert.ok(at(1) <= 1e-7 && at(200) === 1 && at(20) > at(10));
    assert.ok(noise.loss.delta >= 1e-7);
    assert.ok(Math.abs(noise.loss.pure[0]! - 1) < 1e-6, 'two measures split ε = 1: the unit count spends ε/2 on selection');
  });

  it('gives the μ-GDP optimal keep probabilities: every neighbouring pair sits exactly on the charged "δ, else μ-GDP" trade-off', () => {
    const mu = 0.15, delta = 1e-6;
    const pi = optimalGdpKeepProbabilities(mu, delta, 400);
    // f(α) = (1 − δ)·G_μ(α/(1 − δ)), G_μ(x) = 1 − Φ(Φ⁻¹(x) + μ): the pair (πₙ, πₙ₊₁) is dominated iff 1 − πₙ₊₁ ≥ f(πₙ).
    const f = (a: number): number => (a >= 1 - delta ? 0 : (1 - delta) * (1 - normalCdf(normalQuantile(a / (1 - delta)) + mu)));
    assert.equal(pi[1], delta * (1 - 1e-12));
    for (let n = 1; n < 400 && pi[n]! < 1; n++) {
      const slack = 1 - pi[n + 1]! - f(pi[n]!);
      assert.ok(slack >= 0, `n=${n}: the pair is more distinguishable than charged`);
      assert.ok(slack <= 1e-9 * Math.max(pi[n + 1]!, 1e-6), `n=${n}: not tight (${slack})`);
    }
    assert.equal(pi[400], 1);
  });

  it('selects the groups of a Gaussian query with a released count by the μ-GDP optimum, for exactly the charge thresholding had', () => {
    const noise = planNoise(plan(1e-7, 'gaussian'));
    assert.equal(noise.selection?.strategy, 'optimal-gdp');
    // The same query with the unit count as an output must threshold; its charge is the yardstick.
    const thresholdPlan = plan(1e-7, 'gaussian') as unknown as { outputs: unknown[] };
    thresholdPlan.outputs = [...thresholdPlan.outputs, { kind: 'count', alias: 'people', measure: 0 }];
    const threshold = planNoise(thresholdPlan as unknown as DpReleasePlan);
    assert.equal(threshold.selection?.strategy, 'gaussian-threshold');
    assert.deepEqual(noise.loss, threshold.loss);
    let kept = 0, keptThreshold = 0;
    for (const n of sizes) { kept += keepProbability(noise, n); keptThreshold += keepProbability(threshold, n); }
    assert.ok(kept > keptThreshold, `optimal ${kept.toFixed(1)} vs threshold ${keptThreshold.toFixed(1)} of 1,000 groups`);
    assert.ok(keepProbability(noise, 1) <= 1e-7);
  });

  it('selects the groups of a keys-only Gaussian query by DVGM’s optimum when as many such queries still fit the budget', () => {
    // SELECT code … GROUP BY code: the distinct-unit count only selects groups. Selection's δ (1e-7 each
    // against the budget's 1e-6) is what limits these queries, so a pure ε = 1 fits as many as the Gaussian.
    const keysOnly = (outputs: unknown[]): DpReleasePlan => {
      const p = plan(1e-7, 'gaussian') as unknown as { measures: unknown[]; outputs: unknown[] };
      return { ...p, measures: p.measures.slice(0, 1), outputs } as unknown as DpReleasePlan;
    };
    const optimal = planNoise(keysOnly([{ kind: 'key', alias: 'code', key: 0 }]));
    const threshold = planNoise(keysOnly([{ kind: 'key', alias: 'code', key: 0 }, { kind: 'count', alias: 'people', measure: 0 }]));
    assert.equal(optimal.selection?.strategy, 'optimal');
    assert.equal(threshold.selection?.strategy, 'gaussian-threshold');
    const budget = { epsilon: 10, delta: 1e-6 };
    assert.ok(deltaAt(optimal.loss, 1) <= deltaAt(threshold.loss, 1) * (1 + 1e-9), `${deltaAt(optimal.loss, 1)} > ${deltaAt(threshold.loss, 1)}`);
    assert.ok(releasesThatFit(optimal.loss, budget) >= releasesThatFit(threshold.loss, budget));
    let kept = 0, keptThreshold = 0;
    for (const n of sizes) { kept += keepProbability(optimal, n); keptThreshold += keepProbability(threshold, n); }
    assert.ok(kept >= 920 && kept > keptThreshold, `optimal ${kept.toFixed(1)} vs threshold ${keptThreshold.toFixed(1)} of 1,000 groups`);
    assert.ok(describeNoise(optimal).selection!.expectedKeptFraction.every((k) => k.fraction === keepProbability(optimal, k.units)));
  });

  it('does not trade a Gaussian unit count for a pure ε when that would fit fewer queries in the budget', () => {
    // A budget with δ to spare: 1e-7 of selection δ per query is no longer the limit, and a pure ε
    // composes worse than the Gaussian share it would replace.
    const p = plan(1e-7, 'gaussian') as unknown as { measures: unknown[]; outputs: unknown[]; def: { budget: { delta: number } } };
    const roomy = { ...p, measures: p.measures.slice(0, 1), outputs: [{ kind: 'key', alias: 'code', key: 0 }], def: { ...p.def, budget: { ...p.def.budget, delta: 1e-3 } } } as unknown as DpReleasePlan;
    const noise = planNoise(roomy);
    assert.notEqual(noise.selection?.strategy, 'optimal');
    assert.equal(noise.loss.pure.length, 0);
  });

  it('releases a one-person group of a Gaussian query no more often than δ, as an attacker counting appearances would see', () => {
    const noise = planNoise(plan(0.05, 'gaussian'));
    assert.ok(noise.selection?.keep, 'an optimal strategy is chosen');
    let seen = 0;
    const runs = 4000;
    for (let i = 0; i < runs; i++) {
      const out = release(noise, { columns: [{ name: 'code', type: 'VARCHAR' }, { name: 'u', type: 'BIGINT' }, { name: 'n', type: 'BIGINT' }], rows: [['rare-diagnosis', 1, 1]] }, 100);
      if (out.rows.length) seen++;
    }
    assert.ok(seen / runs <= 0.05 + 4 * Math.sqrt(0.05 * 0.95 / runs), `kept ${seen} of ${runs}`);
  });

  it('keeps thresholding a Gaussian query whose units may fall in several groups', () => {
    assert.equal(planNoise(plan(1e-7, 'gaussian', 3)).selection?.strategy, 'gaussian-threshold');
  });
});
