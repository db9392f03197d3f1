import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { TransparencyLog } from './log.ts';
import { auditExport, auditKeys, auditProof, auditTail, auditVerify, auditVerifyReceipt, witnessCommand } from './cli.ts';
import { HttpWitnessClient, publishCheckpoint, verifyCosignedCheckpoint } from './witness.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

function sink() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => { text += c.toString(); });
  return { out, text: () => text };
}

test('the CLI exports, verifies an export and a receipt, prints proofs and tails the log', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  process.env.GATEHOUSE_KEY_PASSPHRASE = TEST_PASSPHRASE;
  t.after(() => { delete process.env.GATEHOUSE_KEY_PASSPHRASE; });
  const logDir = join(d.dir, 'log');
  const log = TransparencyLog.open(logDir);
  await Promise.all(Array.from({ length: 12 }, (_, i) => log.append(record(i))));
  writeFileSync(join(d.dir, 'receipt.json'), JSON.stringify(await log.receipt('4')));
  await log.close();

  const keys = sink();
  assert.equal(await auditKeys({ dir: logDir }, keys.out), 0);
  writeFileSync(join(d.dir, 'log.vkeys'), keys.text());

  const exp = sink();
  assert.equal(await auditExport({ dir: logDir, output: join(d.dir, 'export.jsonl') }, exp.out), 0);
  const ok = sink();
  assert.equal(await auditVerify({ export: join(d.dir, 'export.jsonl'), publicKey: join(d.dir, 'log.vkeys'), saveCheckpoint: join(d.dir, 'trusted.note') }, ok.out), 0);
  assert.match(ok.text(), /^OK: 12 entries verified/);
  assert.match(readFileSync(join(d.dir, 'trusted.note'), 'utf8'), /^gatehouse\.local\/audit\n12\n/);

  // Delete line 6 (entry 5): exit code 1 and the entry is named.
  const lines = readFileSync(join(d.dir, 'export.jsonl'), 'utf8').split('\n');
  writeFileSync(join(d.dir, 'tampered.jsonl'), lines.filter((_, i) => i !== 6).join('\n'));
  const bad = sink();
  assert.equal(await auditVerify({ export: join(d.dir, 'tampered.jsonl'), publicKey: join(d.dir, 'log.vkeys') }, bad.out), 1);
  assert.match(bad.text(), /deleted entry 5/);

  const r = sink();
  assert.equal(await auditVerifyReceipt({ receipt: join(d.dir, 'receipt.json'), publicKey: join(d.dir, 'log.vkeys') }, r.out), 0);
  assert.match(r.text(), /OK: entry 4 is included/);
  const receipt = JSON.parse(readFileSync(join(d.dir, 'receipt.json'), 'utf8'));
  receipt.leaf.entry.purpose = 'marketing';
  writeFileSync(join(d.dir, 'forged.json'), JSON.stringify(receipt));
  const f = sink();
  assert.equal(await auditVerifyReceipt({ receipt: join(d.dir, 'forged.json'), publicKey: join(d.dir, 'log.vkeys') }, f.out), 1);
  assert.match(f.text(), /FAILED AUDIT_PROOF_INVALID/);

  const p = sink();
  assert.equal(await auditProof({ dir: logDir, index: 3 }, p.out), 0);
  assert.equal(JSON.parse(p.text()).index, 3);
  const pBad = sink();
  assert.equal(await auditProof({ dir: logDir, first: 9, second: 2 }, pBad.out), 2);
  assert.match(pBad.text(), /AUDIT_PROOF_RANGE/);

  const tail = sink();
  assert.equal(await auditTail({ dir: logDir, limit: 3 }, tail.out), 0);
  assert.deepEqual(tail.text().trim().split('\n').map((l) => l.split('\t')[0]), ['9', '10', '11']);

  const usage = sink();
  assert.equal(await auditVerify({}, usage.out), 2);
});

test('the witness command serves cosignatures on 127.0.0.1 until stopped', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  process.env.GATEHOUSE_KEY_PASSPHRASE = TEST_PASSPHRASE;
  t.after(() => { delete process.env.GATEHOUSE_KEY_PASSPHRASE; });
  const log = TransparencyLog.open(join(d.dir, 'log'));
  await Promise.all(Array.from({ length: 5 }, (_, i) => log.append(record(i))));
  const controller = new AbortController();
  const out = sink();
  const done = witnessCommand({ stateDir: join(d.dir, 'w'), name: 'witness.partner.example/w1', logKey: log.publicKeys().vkeys, port: 0, signal: controller.signal }, out.out);
  while (!/witness vkey: /.test(out.text())) {
    assert.doesNotMatch(out.text(), /error/);
    await new Promise((r) => setTimeout(r, 10));
  }
  const url = /listening on (\S+)/.exec(out.text())![1]!;
  const vkey = /witness vkey: (\S+)/.exec(out.text())![1]!;
  assert.match(url, /^http:\/\/127\.0\.0\.1:/);
  const published = await publishCheckpoint(log, { witnesses: [new HttpWitnessClient(url, vkey)], quorum: 1 });
  assert.equal(verifyCosignedCheckpoint(published, log.publicKeys().vkeys, [vkey], 1).size, 5);
  controller.abort();
  assert.equal(await done, 0);
  await log.close();
});
