import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { TransparencyLog } from './log.ts';
import { startLocalWitness, witnessOptions } from './cli.ts';
import { verifyCosignedCheckpoint } from './witness.ts';
import { SIG_COSIGNATURE_V1, encodeVkey } from './note.ts';
import { generateEd25519 } from './keys.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

test('the demo\'s local witness cosigns every checkpoint the log publishes, and keeps its view across a restart', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const auditDir = join(d.dir, 'audit');
  const stateDir = join(d.dir, 'witness');
  let w = await startLocalWitness({ auditDir, stateDir, passphrase: TEST_PASSPHRASE });
  let log = await TransparencyLog.start(auditDir, { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 60_000, ...w.options });
  for (let i = 0; i < 6; i++) await log.append(record(i));
  const note = await log.checkpoint();
  const vkeys = log.publicKeys().vkeys;
  assert.equal(verifyCosignedCheckpoint(note, vkeys, [w.vkey], 1).size, 6);
  await log.close();
  await w.close();
  // Restart both: the witness remembers size 6 and cosigns the extension.
  w = await startLocalWitness({ auditDir, stateDir, passphrase: TEST_PASSPHRASE });
  t.after(() => w.close());
  log = await TransparencyLog.start(auditDir, { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 60_000, ...w.options });
  await log.append(record(6));
  assert.equal(verifyCosignedCheckpoint(await log.checkpoint(), vkeys, [w.vkey], 1).size, 7);
  await log.close();
});

test('serve flags --witness/--witness-key/--witness-quorum are checked before anything starts', () => {
  const key = encodeVkey('witness.example/w1', SIG_COSIGNATURE_V1, generateEd25519().publicKey);
  assert.deepEqual(witnessOptions(), {});
  assert.throws(() => witnessOptions(['http://w:7380'], []), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => witnessOptions([], [], '1'), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => witnessOptions(['file:///etc/passwd'], [key]), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => witnessOptions(['http://w:7380'], [key], '2'), { detail: 'AUDIT_INPUT_INVALID' });
  assert.throws(() => witnessOptions(['http://w:7380'], ['not a vkey']));
  const o = witnessOptions(['http://w:7380', 'https://w2.example'], [key, key], '1');
  assert.equal(o.witnessQuorum, 1);
  assert.equal(o.witnesses!.length, 2);
});
