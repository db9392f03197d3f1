/**
 * Differential privacy for federated training: the distributed discrete Gaussian's ρ agrees
 * with the accountant (and its own reference values), the summed noise shares have the
 * planned variance, updates are clipped, and each participant's budget is charged per round
 * through the ledger, all-or-nothing, until training stops with a clear error.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BudgetStore } from '../src/privacy/accounting/index.ts';
import { rhoDiscreteGaussian, toEpsilonDelta } from '../src/privacy/accounting/index.ts';
import { centralRho, clipL2, kairouzTau, noisyQuantise, planDp, rhoDistributedDiscreteGaussian } from '../src/fl/dp/distributed-gaussian.ts';
import { FRAUD_FEATURES, fraudRows, splitHoldout, toDataset } from '../src/fl/models/synthetic.ts';
import { dequantiseSum } from '../src/fl/secagg/quantize.ts';
import { DEFAULTS, type TrainingConfig } from '../src/fl/training/config.ts';
import { trainFederated, type LocalParty } from '../src/fl/training/federated.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('distributed discrete Gaussian: accounting', () => {
  test('with enough noise per share the sum costs exactly the central discrete Gaussian ρ = Δ²/(2σ²)', () => {
    assert.equal(kairouzTau(3, 100), 0);
    const rho = rhoDistributedDiscreteGaussian(1, 2, 10, 1);
    assert.ok(Math.abs(rho - rhoDiscreteGaussian(1, 20)) < 1e-15);
    assert.ok(rho >= rhoDiscreteGaussian(1, 20) * (1 - 1e-15) && Math.abs(rho - 0.025) < 1e-15);
  });

  test('a round at ρ = 0.025 shows the accountant\'s own reference ε, and 20 rounds compose to its ρ = 0.5 reference', () => {
    const rho = rhoDistributedDiscreteGaussian(1, 2, 10, 1);
    assert.ok(Math.abs(toEpsilonDelta(rho, 1e-6).epsilon - 1.014074254726128) < 1e-9);
    assert.ok(Math.abs(toEpsilonDelta(20 * rho, 1e-6).epsilon - 5.221534444530169) < 1e-8);
  });

  test('with tiny shares the distributed noise is charged more than the central ρ (the τ term of Kairouz et al. Thm 1)', () => {
    const central = rhoDiscreteGaussian(1, 3 * 0.05);
    const distributed = rhoDistributedDiscreteGaussian(1, 3, 0.05, 100);
    assert.ok(kairouzTau(3, 0.05) > 0);
    assert.ok(distributed > central, `${distributed} ≤ ${central}`);
  });

  test('a plan charges the accountant\'s ρ for σ² = t·s² at the integer-domain sensitivity', () => {
    const plan = planDp({ clip: 1, noiseMultiplier: 1.1 }, 3, 2, 7);
    assert.ok(Math.abs(plan.rho - centralRho(plan)) <= 1e-12 * plan.rho);
    assert.ok(plan.sensitivity >= 2 ** plan.quantiser.scaleBits);
    assert.ok(plan.shareSigma2 * plan.contributors >= plan.sigma2);
  });
});

describe('distributed discrete Gaussian: noise and clipping', () => {
  test('the sum of t noise shares has the planned variance σ² (within 5 %) and mean 0', () => {
    const plan = planDp({ clip: 1, noiseMultiplier: 0.5 }, 3, 3, 20_000);
    const d = 20_000;
    const sum = new Uint32Array(d);
    for (let p = 0; p < 3; p++) { const q = noisyQuantise(plan, new Float64Array(d)); for (let i = 0; i < d; i++) sum[i] += q[i]!; }
    const scale = 2 ** plan.quantiser.scaleBits;
    const real = dequantiseSum(plan.quantiser, sum);
    let m = 0; let v = 0;
    for (const x of real) { m += x * scale; v += (x * scale) ** 2; }
    m /= d; v = v / d - m * m;
    const sigma2 = plan.shareSigma2 * 3;
    assert.ok(Math.abs(v / sigma2 - 1) < 0.05, `variance ratio ${v / sigma2}`);
    assert.ok(Math.abs(m) < 4 * Math.sqrt(sigma2 / d));
  });

  test('an update longer than C is scaled to norm C; a shorter one is left alone', () => {
    const v = Float64Array.from([3, 4]);
    assert.equal(clipL2(v, 1), true);
    assert.ok(Math.abs(Math.hypot(v[0]!, v[1]!) - 1) < 1e-12);
    const w = Float64Array.from([0.3, 0.4]);
    assert.equal(clipL2(w, 1), false);
    assert.deepEqual([...w], [0.3, 0.4]);
  });
});

describe('distributed discrete Gaussian: budgets per participant dataset', () => {
  async function ledger(capRho: number, dataset: string): Promise<BudgetStore> {
    const dir = mkdtempSync(join(tmpdir(), 'fl-dp-'));
    dirs.push(dir);
    const s = await BudgetStore.open(join(dir, 'budgets.sqlite'));
    await s.defineBudget({ subject: 'org:fraud-consortium', dataset, capRho, window: null });
    return s;
  }
  function parties(ledgers: BudgetStore[]): LocalParty[] {
    return [0, 1, 2].map((b) => {
      const { rows, labels } = fraudRows(400, b, 9);
      return { id: `bank-${'abc'[b]}`, ...splitHoldout(toDataset(rows, labels), 0.25), budget: { ledger: ledgers[b]!, subject: 'org:fraud-consortium', dataset: `bank_${'abc'[b]}_transactions` } };
    });
  }
  const cfg: TrainingConfig = { ...DEFAULTS, features: [...FRAUD_FEATURES], rounds: 10, clip: 1, learningRate: 0.5, batchSize: 1_000_000, localEpochs: 1, aggregation: { mode: 'secagg', degree: 2, threshold: 2 }, dp: { noiseMultiplier: 1, delta: 1e-6 } };

  test('each round is charged to every participant dataset until a budget runs out, then training stops with a clear error and that round costs nobody anything', async () => {
    const rho = planDp({ clip: 1, noiseMultiplier: 1 }, 3, 2, 7).rho;
    const ledgers = [await ledger(10 * rho, 'bank_a_transactions'), await ledger(3.5 * rho, 'bank_b_transactions'), await ledger(10 * rho, 'bank_c_transactions')];
    const seen: number[] = [];
    await assert.rejects(trainFederated(cfg, parties(ledgers), { onRound: (p) => seen.push(p.round) }), (err: any) => {
      assert.equal(err.detail, 'FL_BUDGET_EXHAUSTED');
      assert.equal(err.code, 'BUDGET_EXHAUSTED');
      assert.match(err.message, /training stopped: privacy budget for dataset "bank_b_transactions" is insufficient/);
      return true;
    });
    assert.deepEqual(seen, [1, 2, 3]);
    for (const [i, l] of ledgers.entries()) {
      const status = await l.status('org:fraud-consortium', `bank_${'abc'[i]}_transactions`);
      // Three rounds charged everywhere; bank-a's charge for round 4 was refunded when bank-b's budget refused.
      assert.ok(Math.abs(status!.spentRho - 3 * rho) < 3e-9, `${i}: spent ${status!.spentRho}`);
      const charges = (await l.history({})).filter((e) => e.kind === 'charge');
      assert.ok(charges.length >= 3);
    }
  });

  test('the ε a round reports is the accountant\'s conversion of the ρ charged so far', async () => {
    const rho = planDp({ clip: 1, noiseMultiplier: 1 }, 3, 2, 7).rho;
    const ledgers = await Promise.all(['a', 'b', 'c'].map((b) => ledger(100 * rho, `bank_${b}_transactions`)));
    const r = await trainFederated({ ...cfg, rounds: 2 }, parties(ledgers));
    assert.ok(Math.abs(r.history[1]!.rho - 2 * rho) < 1e-12);
    assert.equal(r.history[1]!.epsilon, toEpsilonDelta(2 * rho, 1e-6).epsilon);
  });
});
