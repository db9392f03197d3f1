import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DpReleasePlan } from '../query/govern/differential-privacy.ts';
import { chooseSelection, expectedKept, keepProbabilities, optimalKeepProbabilities } from './partition-selection-optimal.ts';
import { describeNoise, keepProbability, planNoise, release } from './release.ts';
import { deltaAt } from './accounting/pld.ts';

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

  it('selects the groups of a Gaussian query optimally when that keeps more groups, for no more δ at the same ε than thresholding', () => {
    // A keys-only query (SELECT code … GROUP BY code): the distinct-unit count only selects groups.
    const keysOnly = (outputs: unknown[]): DpReleasePlan => {
      const p = plan(1e-7, 'gaussian') as unknown as { measures: unknown[]; outputs: unknown[] };
      return { ...p, measures: p.measures.slice(0, 1), outputs } as unknown as DpReleasePlan;
    };
    const optimal = planNoise(keysOnly([{ kind: 'key', alias: 'code', key: 0 }]));
    assert.equal(optimal.selection?.strategy, 'optimal');
    // The same query with the unit count as an output must threshold; its charge is the yardstick.
    const threshold = planNoise(keysOnly([{ kind: 'key', alias: 'code', key: 0 }, { kind: 'count', alias: 'people', measure: 0 }]));
    assert.equal(threshold.selection?.strategy, 'gaussian-threshold');
    assert.ok(deltaAt(optimal.loss, 1) <= deltaAt(threshold.loss, 1) * (1 + 1e-9), `${deltaAt(optimal.loss, 1)} > ${deltaAt(threshold.loss, 1)}`);
    let kept = 0, keptThreshold = 0;
    for (const n of sizes) { kept += keepProbability(optimal, n); keptThreshold += keepProbability(threshold, n); }
    assert.ok(kept >= 920 && kept > keptThreshold, `optimal ${kept.toFixed(1)} vs threshold ${keptThreshold.toFixed(1)} of 1,000 groups`);
    assert.ok(keepProbability(optimal, 1) <= 1e-7);
    assert.ok(describeNoise(optimal).selection!.expectedKeptFraction.every((k) => k.fraction === keepProbability(optimal, k.units)));
  });

  it('keeps thresholding a Gaussian query whose released measures leave selection too little to beat it (the released count keeps its noise)', () => {
    // Trading the unit count's Gaussian share for a pure ε at the same δ(ε) gives ε ≈ 0.3: fewer groups than thresholding.
    const noise = planNoise(plan(1e-7, 'gaussian'));
    assert.equal(noise.selection?.strategy, 'gaussian-threshold');
  });

  it('releases a one-person group of a Gaussian query no more often than δ, as an attacker counting appearances would see', () => {
    const noise = planNoise(plan(0.05, 'gaussian'));
    assert.equal(noise.selection?.strategy, 'optimal');
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
