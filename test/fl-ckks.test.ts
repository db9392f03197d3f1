/**
 * CKKS aggregation: participants encrypt, the sum is computed without decryption, and the
 * designated key authority — never the coordinator — decrypts only a verified sum of enough
 * distinct participants, once per session.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CkksKeyAuthority, encryptUpdate, SLOTS, type CkksContribution } from '../src/fl/ckks/ckks.ts';
import { identities } from '../src/fl/secagg/simulate.ts';

const ids = ['bank-a', 'bank-b', 'bank-c', 'coordinator', 'key-authority'];
const { keys, pins } = identities(ids);
const length = SLOTS + 100;
const updates = new Map(['bank-a', 'bank-b', 'bank-c'].map((id, i) => [id, Float64Array.from({ length }, (_, j) => Math.sin(i * 1000 + j) * 3)]));
let ka: CkksKeyAuthority;
let contributions: CkksContribution[];
const session = () => `ckks-${randomBytes(6).toString('hex')}`;

describe('CKKS aggregation with a designated key authority', () => {
  let s: string;
  before(async () => {
    ka = await CkksKeyAuthority.create('key-authority', 'coordinator', pins);
    s = session();
    contributions = await Promise.all([...updates].map(([id, v]) => encryptUpdate(ka.publicKey, s, id, keys.get(id)!, v)));
  });

  test('the decrypted sum equals the sum of the updates to within 1e-6 per coordinate', async () => {
    const sum = await ka.decryptSum(s, contributions, 2);
    for (let j = 0; j < length; j++) {
      const want = [...updates.values()].reduce((acc, v) => acc + v[j]!, 0);
      assert.ok(Math.abs(sum[j]! - want) < 1e-6, `coordinate ${j}: ${sum[j]} vs ${want}`);
    }
    await assert.rejects(ka.decryptSum(s, contributions, 2), (e: any) => e.detail === 'FL_DECRYPTION_REFUSED');
  });

  test('the key authority refuses to decrypt one participant\'s update passed off as a sum', async () => {
    const s2 = session();
    const one = await encryptUpdate(ka.publicKey, s2, 'bank-a', keys.get('bank-a')!, updates.get('bank-a')!);
    await assert.rejects(ka.decryptSum(s2, [one], 1), (e: any) => e.detail === 'FL_DECRYPTION_REFUSED');
    await assert.rejects(ka.decryptSum(s2, [one, one], 2), (e: any) => e.detail === 'FL_DECRYPTION_REFUSED');
  });

  test('a contribution the coordinator forged or took from another session is refused', async () => {
    const s3 = session();
    const forged = await encryptUpdate(ka.publicKey, s3, 'bank-b', keys.get('coordinator')!, updates.get('bank-b')!);
    const a = await encryptUpdate(ka.publicKey, s3, 'bank-a', keys.get('bank-a')!, updates.get('bank-a')!);
    await assert.rejects(ka.decryptSum(s3, [a, forged], 2), (e: any) => e.detail === 'FL_MESSAGE_FORGED');
    await assert.rejects(ka.decryptSum(s3, [a, contributions[1]!], 2), (e: any) => e.detail === 'FL_MESSAGE_FORGED');
  });

  test('the coordinator cannot be the key authority', async () => {
    await assert.rejects(CkksKeyAuthority.create('coordinator', 'coordinator', pins), (e: any) => e.detail === 'FL_PARAMETERS_INVALID');
  });
});

describe('training with CKKS aggregation', () => {
  test('a model trained with CKKS aggregation matches the one trained with secure aggregation to within their fixed-point precision', async () => {
    const { inProcessCkks } = await import('../src/fl/ckks/in-process.ts');
    const { trainFederated } = await import('../src/fl/training/federated.ts');
    const { DEFAULTS } = await import('../src/fl/training/config.ts');
    const { FRAUD_FEATURES, fraudRows, splitHoldout, toDataset } = await import('../src/fl/models/synthetic.ts');
    const parties = [0, 1, 2].map((b) => { const { rows, labels } = fraudRows(300, b, 5); return { id: `bank-${b}`, ...splitHoldout(toDataset(rows, labels), 0.25) }; });
    const cfg = { ...DEFAULTS, features: [...FRAUD_FEATURES], rounds: 3, batchSize: 100_000, clip: 100 };
    const viaCkks = await trainFederated({ ...cfg, aggregation: { mode: 'ckks' } }, parties, { ckks: await inProcessCkks(3) });
    const viaSecAgg = await trainFederated({ ...cfg, aggregation: { mode: 'secagg', degree: 2, threshold: 2 } }, parties);
    // SecAgg's resolution here is 2^-22 on ω·Δ and on ω ≈ 225/100000, so ≈ 1e-4 relative per step; CKKS ≈ 1e-7.
    for (let j = 0; j < viaCkks.weights.length; j++) assert.ok(Math.abs(viaCkks.weights[j]! - viaSecAgg.weights[j]!) < 2e-4, `weight ${j}: ${viaCkks.weights[j]} vs ${viaSecAgg.weights[j]}`);
    assert.ok(Math.abs(viaCkks.history.at(-1)!.accuracy - viaSecAgg.history.at(-1)!.accuracy) < 1e-9);
  });
});
