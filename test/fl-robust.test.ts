/**
 * Robust aggregation (secure aggregation off, coordinator trusted to see updates): Krum,
 * trimmed mean and coordinate-wise median against a sign-flip attack, a scaling attack and
 * "a little is enough" (Baruch, Baruch, Goldberg, NeurIPS 2019). The plain mean is the
 * control: each attack breaks it, so the robust rules are what holds.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { coordinateMedian, krum, robustAggregate, trimmedMean, type RobustRule } from '../src/fl/robust/aggregators.ts';
import { normal, seeded } from '../src/fl/models/rng.ts';
import { FRAUD_FEATURES, fraudRows, splitHoldout, toDataset } from '../src/fl/models/synthetic.ts';
import { DEFAULTS, type TrainingConfig } from '../src/fl/training/config.ts';
import { accuracy, trainFederated, type LocalParty } from '../src/fl/training/federated.ts';

const D = 20;
const HONEST = 10;
const F = 3;
const u = seeded(7);
const truth = Float64Array.from({ length: D }, (_, i) => 1 + 0.1 * i);
const honest = Array.from({ length: HONEST }, () => Float64Array.from(truth, (m) => m + 0.1 * normal(u)));
const mean = (vs: readonly Float64Array[]) => Float64Array.from({ length: D }, (_, j) => vs.reduce((s, v) => s + v[j]!, 0) / vs.length);
const honestMean = mean(honest);
const honestStd = Float64Array.from({ length: D }, (_, j) => Math.sqrt(honest.reduce((s, v) => s + (v[j]! - honestMean[j]!) ** 2, 0) / HONEST));
const dist = (a: Float64Array, b: Float64Array) => Math.sqrt(a.reduce((s, x, j) => s + (x - b[j]!) ** 2, 0));
const norm = (a: Float64Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));

const attacks: Record<string, () => Float64Array[]> = {
  'sign flip': () => Array.from({ length: F }, () => Float64Array.from(honestMean, (m) => -10 * m)),
  scaling: () => honest.slice(0, F).map((v) => Float64Array.from(v, (x) => 100 * x)),
  // Baruch et al. 2019 §3: z_max = Φ⁻¹((n − s)/n), s = ⌊n/2 + 1⌋ − f; n = 13, f = 3 → s = 4, Φ⁻¹(9/13) ≈ 0.5024.
  'a little is enough': () => Array.from({ length: F }, () => Float64Array.from(honestMean, (m, j) => m - 0.5024 * honestStd[j]!)),
};
const ALIE_Z = 0.5024;

describe('robust aggregators under attack', () => {
  for (const [name, make] of Object.entries(attacks)) {
    test(`${name}: Krum, trimmed mean and median stay near the honest mean`, () => {
      const all = [...honest, ...make()];
      const rules: [RobustRule, Float64Array][] = [['krum', krum(all, F)], ['trimmed-mean', trimmedMean(all, F)], ['median', coordinateMedian(all)]];
      for (const [rule, agg] of rules) {
        // Within the spread of honest updates around the truth (each honest update is within ~0.1·√D of it).
        assert.ok(dist(agg, honestMean) < 0.1 * Math.sqrt(D) * 1.5, `${rule}: ${dist(agg, honestMean)}`);
        if (name === 'a little is enough') {
          // ALIE's point: it moves robust rules, but only within the honest spread, by at most ~z·σ per coordinate.
          for (let j = 0; j < D; j++) assert.ok(Math.abs(agg[j]! - honestMean[j]!) <= (ALIE_Z + 1.5) * honestStd[j]!, `${rule} coordinate ${j}`);
        }
      }
    });
  }

  test('the plain mean is broken by sign flip and scaling (the control: without a robust rule the attacks succeed)', () => {
    for (const name of ['sign flip', 'scaling']) {
      const m = mean([...honest, ...attacks[name]!()]);
      assert.ok(dist(m, honestMean) > norm(honestMean), `${name}: ${dist(m, honestMean)}`);
    }
  });

  test('each rule refuses a configuration it cannot defend', () => {
    assert.throws(() => krum(honest.slice(0, 4), 1), (e: any) => e.detail === 'FL_PARAMETERS_INVALID');
    assert.throws(() => trimmedMean(honest.slice(0, 4), 2), (e: any) => e.detail === 'FL_PARAMETERS_INVALID');
    assert.throws(() => robustAggregate('median', [], 0), (e: any) => e.detail === 'FL_TOO_FEW_PARTICIPANTS');
  });
});

describe('robust federated training', () => {
  const parties = (flip: boolean): LocalParty[] => [0, 1, 2, 3, 4].map((b) => {
    const { rows, labels } = fraudRows(600, b % 3, 11 + b);
    const p: LocalParty = { id: `bank-${b}`, ...splitHoldout(toDataset(rows, labels), 0.25) };
    return flip && b === 4 ? { ...p, attack: (h: Float64Array) => Float64Array.from(h, (x) => -20 * x) } : p;
  });
  const cfg = (rule: RobustRule | null): TrainingConfig => ({
    ...DEFAULTS, features: [...FRAUD_FEATURES], rounds: 25, localEpochs: 1, batchSize: 1_000_000, learningRate: 0.5, clip: 1e3,
    aggregation: rule ? { mode: 'robust', rule, byzantine: 1 } : { mode: 'robust', rule: 'trimmed-mean', byzantine: 0 },
  });

  test('with one bank sending sign-flipped, scaled updates, median and trimmed-mean training still learn; an untrimmed mean does not', async () => {
    const test0 = parties(false)[0]!.test;
    for (const rule of ['median', 'trimmed-mean', 'krum'] as RobustRule[]) {
      const r = await trainFederated(cfg(rule), parties(true));
      assert.ok(accuracy(cfg(rule), r.weights, test0) > 0.8, `${rule}: ${accuracy(cfg(rule), r.weights, test0)}`);
    }
    const naive = await trainFederated(cfg(null), parties(true));
    assert.ok(accuracy(cfg(null), naive.weights, test0) < 0.7, `mean: ${accuracy(cfg(null), naive.weights, test0)}`);
  });
});
