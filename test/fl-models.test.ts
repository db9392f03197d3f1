/**
 * Models for federated learning: gradients are right, and a model trained federated across
 * three banks under secure aggregation (no noise, no clipping) reaches the accuracy of the
 * same model trained centrally on the pooled data, within 2 percentage points.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { logisticRegression } from '../src/fl/models/logistic.ts';
import { mlp } from '../src/fl/models/mlp.ts';
import { FRAUD_FEATURES, fraudRows, splitHoldout, toDataset } from '../src/fl/models/synthetic.ts';
import type { Dataset, Model } from '../src/fl/models/types.ts';
import { DEFAULTS, type TrainingConfig } from '../src/fl/training/config.ts';
import { accuracy, trainCentral, trainFederated, type LocalParty } from '../src/fl/training/federated.ts';

const TOLERANCE = 0.02;

function banks(rows = 1200): { parties: LocalParty[]; pooledTrain: Dataset; pooledTest: Dataset } {
  const parts = [0, 1, 2].map((b) => {
    const { rows: r, labels } = fraudRows(rows, b, 42);
    return { id: `bank-${'abc'[b]}`, ...splitHoldout(toDataset(r, labels), 0.25) };
  });
  const pool = (k: 'train' | 'test'): Dataset => {
    const d = parts[0]![k].d;
    const n = parts.reduce((s, p) => s + p[k].n, 0);
    const x = new Float64Array(n * d);
    const y = new Uint8Array(n);
    let off = 0;
    for (const p of parts) { x.set(p[k].x, off * d); y.set(p[k].y, off); off += p[k].n; }
    return { x, y, n, d };
  };
  return { parties: parts, pooledTrain: pool('train'), pooledTest: pool('test') };
}

function numericGradientMatches(model: Model, data: Dataset): void {
  const w = model.init(3);
  for (let i = 0; i < w.length; i++) w[i] += 0.1 * Math.sin(i + 1);
  const rows = [0, 1, 2, 3, 4, 5, 6, 7];
  const g = new Float64Array(model.size);
  model.gradient(w, data, rows, g);
  const lossAt = (v: Float64Array) => model.gradient(v, data, rows, new Float64Array(model.size));
  for (let i = 0; i < w.length; i += Math.max(1, Math.floor(w.length / 9))) {
    const h = 1e-6;
    const a = Float64Array.from(w); a[i] += h;
    const b = Float64Array.from(w); b[i] -= h;
    const num = (lossAt(a) - lossAt(b)) / (2 * h);
    assert.ok(Math.abs(num - g[i]!) < 1e-5, `parameter ${i}: numeric ${num} vs analytic ${g[i]}`);
  }
}

const base: TrainingConfig = { ...DEFAULTS, features: [...FRAUD_FEATURES], rounds: 15, localEpochs: 1, learningRate: 0.5, batchSize: 1_000_000, clip: 1e3, aggregation: { mode: 'secagg', degree: 2, threshold: 2 } };

describe('federated models', () => {
  const { parties, pooledTrain, pooledTest } = banks();

  test('logistic-regression and MLP gradients match finite differences', () => {
    numericGradientMatches(logisticRegression(6), pooledTrain);
    numericGradientMatches(mlp(6, 5), pooledTrain);
  });

  test('logistic regression trained federated (FedAvg, secure aggregation, no noise or clipping) is within 2 points of the pooled central model', async () => {
    const fed = await trainFederated({ ...base, rounds: 60 }, parties);
    const central = trainCentral(base, pooledTrain, 60);
    const accFed = accuracy(base, fed.weights, pooledTest);
    const accCentral = accuracy(base, central, pooledTest);
    assert.ok(accCentral > 0.8, `central accuracy ${accCentral}`);
    assert.ok(Math.abs(accFed - accCentral) <= TOLERANCE, `federated ${accFed} vs central ${accCentral}`);
    assert.ok(fed.history.every((h) => h.clipped === 0), 'no update was clipped');
    // The held-out accuracy aggregated under secure aggregation equals the pooled evaluation.
    assert.ok(Math.abs(fed.history.at(-1)!.accuracy - accFed) < 1e-9);
  });

  test('a small MLP trained federated with FedProx is within 2 points of the pooled central MLP', async () => {
    const cfg: TrainingConfig = { ...base, model: { kind: 'mlp', hidden: 8 }, algorithm: 'fedprox', proximalMu: 0.01, rounds: 80, learningRate: 1 };
    const fed = await trainFederated(cfg, parties);
    const central = trainCentral(cfg, pooledTrain, 80);
    const accFed = accuracy(cfg, fed.weights, pooledTest);
    const accCentral = accuracy(cfg, central, pooledTest);
    assert.ok(accCentral > 0.8, `central accuracy ${accCentral}`);
    assert.ok(Math.abs(accFed - accCentral) <= TOLERANCE, `federated ${accFed} vs central ${accCentral}`);
  });

  test('training carries on with the exact sum of the survivors when a bank drops out of a round', async () => {
    const fed = await trainFederated({ ...base, rounds: 4 }, parties, { dropAt: (r) => new Map(r === 2 ? [['bank-b', 'masked' as const]] : []) });
    assert.deepEqual(fed.history[1]!.dropouts, ['bank-b']);
    assert.deepEqual(fed.history[1]!.participants, ['bank-a', 'bank-c']);
    assert.ok(fed.history.at(-1)!.accuracy > 0.7);
  });
});
