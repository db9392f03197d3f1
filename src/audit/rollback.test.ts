/**
 * The log cannot be quietly rewritten: an attacker with write access to the audit
 * directory puts back an older checkpoint.note and edits an entry the newer checkpoint
 * covered. The node must refuse to start (and so never re-sign the rewritten history),
 * whether the newer checkpoint is remembered in the node's state (the anchor) or by a
 * witness that cosigned it. And checkpoints are published only once witnesses cosign them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, openSync, readFileSync, readSync, rmSync, writeSync, closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { TransparencyLog, type TransparencyLogOptions } from './log.ts';
import { Witness, startWitnessServer, verifyCosignedCheckpoint } from './witness.ts';
import { generateEd25519 } from './keys.ts';
import { openCheckpoint } from './note.ts';
import { SqlCheckpointAnchor } from '../sql/tables/checkpoints.ts';
import { SqliteDriver } from '../sql/sqlite.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

const base: TransparencyLogOptions = { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 60_000 };

async function grow(log: TransparencyLog, n: number): Promise<string> {
  const from = log.size;
  for (let i = 0; i < n; i++) await log.append(record(from + i, { decision: 'allow', errorCode: null, rowsReturned: 10, purpose: 'research' }));
  return log.checkpoint();
}

/** Edits entry `index` in place and fixes its CRC, as an insider would. */
function editEntry(dir: string, index: number): void {
  const file = join(dir, 'entries.dat');
  const b = readFileSync(file);
  let at = 0;
  for (let i = 0; i < index; i++) at += 8 + b.readUInt32BE(at);
  const len = b.readUInt32BE(at);
  const payload = b.subarray(at + 8, at + 8 + len);
  const edited = Buffer.from(payload.toString('latin1').replace('"rowsReturned":10', '"rowsReturned":99'), 'latin1');
  assert.notDeepEqual(edited, payload);
  const h = Buffer.alloc(8); h.writeUInt32BE(len, 0); h.writeUInt32BE(crc32(edited), 4);
  const fd = openSync(file, 'r+'); writeSync(fd, h, 0, 8, at); writeSync(fd, edited, 0, len, at + 8); closeSync(fd);
}

/** Signs a checkpoint at 10, keeps a copy of it, grows to 30 and signs again. */
async function historyWithOldNote(dir: string, options: TransparencyLogOptions, open: (d: string, o: TransparencyLogOptions) => Promise<TransparencyLog> | TransparencyLog = TransparencyLog.open): Promise<string> {
  const log = await open(dir, options);
  await grow(log, 10);
  copyFileSync(join(dir, 'checkpoint.note'), join(dir, '..', 'old.note'));
  const note = await grow(log, 20);
  await log.close();
  return note;
}

test('an older checkpoint.note put back with an entry edited behind it is refused at start, not re-signed', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const dir = join(d.dir, 'audit');
  await historyWithOldNote(dir, base);
  copyFileSync(join(d.dir, 'old.note'), join(dir, 'checkpoint.note'));
  editEntry(dir, 20);
  assert.throws(() => TransparencyLog.open(dir, base), (e: Error & { detail?: string }) => e.detail === 'AUDIT_ROLLBACK_DETECTED' && /size 30/.test(e.message) && /restore/.test(e.message));
});

test('the anchor kept in the node state (SQL table) catches the rollback even when the audit directory is replaced wholesale', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const dir = join(d.dir, 'audit');
  mkdirSync(join(d.dir, 'state'));
  const driver = await SqliteDriver.open(join(d.dir, 'state', 'checkpoints.sqlite'));
  t.after(() => driver.close());
  const anchor = await SqlCheckpointAnchor.open(driver, 'gatehouse.local/audit');
  const options = { ...base, anchor };
  await historyWithOldNote(dir, options, TransparencyLog.start);
  assert.equal((await anchor.latest())!.size, 30);
  copyFileSync(join(d.dir, 'old.note'), join(dir, 'checkpoint.note'));
  editEntry(dir, 25);
  rmSync(join(dir, 'checkpoints.sqlite'), { force: true });
  await assert.rejects(TransparencyLog.start(dir, options), { detail: 'AUDIT_ROLLBACK_DETECTED' });
  // The synchronous open cannot consult an asynchronous anchor: it says so instead of skipping it.
  assert.throws(() => TransparencyLog.open(dir, options), { detail: 'AUDIT_INPUT_INVALID' });
});

test('an older checkpoint.note alone (entries intact) is replaced by the anchored one and the log carries on consistently', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const dir = join(d.dir, 'audit');
  const note30 = await historyWithOldNote(dir, base);
  copyFileSync(join(d.dir, 'old.note'), join(dir, 'checkpoint.note'));
  const log = TransparencyLog.open(dir, base);
  assert.equal(log.latestCheckpoint(), note30);
  const note35 = await grow(log, 5);
  const cp30 = openCheckpoint(note30, log.verifiers()), cp35 = openCheckpoint(note35, log.verifiers());
  assert.equal(cp35.size, 35);
  assert.deepEqual(log.consistencyProof(30, 35), log.consistencyProof(cp30.size, cp35.size));
  await log.close();
});

async function witnessFor(d: string, logVkeys: string[], port = 0) {
  const witness = new Witness({ name: 'witness.partner.example/w1', privateKey: witnessKey, stateDir: join(d, 'witness'), logs: [{ origin: 'gatehouse.local/audit', vkeys: logVkeys }] });
  const server = await startWitnessServer(witness, { port });
  return { witness, server, close: async () => { await server.close(); witness.close(); } };
}
const witnessKey = generateEd25519().privateKey;

test('checkpoints are published only with the witness quorum: an unreachable witness makes checkpoint() fail with AUDIT_WITNESS_QUORUM and health not ready, and publishing resumes when it returns', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const dir = join(d.dir, 'audit');
  const vkeys = await (async () => { const l = TransparencyLog.open(dir, base); const v = l.publicKeys().vkeys; await l.close(); return v; })();
  let w = await witnessFor(d.dir, vkeys);
  const port = Number(new URL(w.server.url).port);
  const log = await TransparencyLog.start(dir, { ...base, witnesses: [{ url: w.server.url, key: w.witness.vkey }], witnessQuorum: 1 });
  const note = await grow(log, 8);
  assert.equal(verifyCosignedCheckpoint(note, vkeys, [w.witness.vkey], 1).size, 8);
  assert.equal(readFileSync(join(dir, 'checkpoint.note'), 'utf8'), note, 'the published checkpoint carries the cosignature');
  await w.close();
  await log.append(record(100));
  await assert.rejects(log.checkpoint(), { detail: 'AUDIT_WITNESS_QUORUM' });
  assert.equal(log.health().ready, false);
  assert.match(log.health().reason!, /AUDIT_WITNESS_QUORUM/);
  assert.equal(log.latestCheckpoint(), note, 'nothing uncosigned was published');
  w = await witnessFor(d.dir, vkeys, port);
  t.after(() => w.close());
  const note9 = await log.checkpoint();
  assert.equal(verifyCosignedCheckpoint(note9, vkeys, [w.witness.vkey], 1).size, 9);
  assert.deepEqual(log.health(), { ready: true, reason: null });
  await log.close();
});

test('a witness that cosigned a newer checkpoint makes the node refuse to start on a rolled-back directory whose anchor was deleted too', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const dir = join(d.dir, 'audit');
  const vkeys = await (async () => { const l = TransparencyLog.open(dir, base); const v = l.publicKeys().vkeys; await l.close(); return v; })();
  const w = await witnessFor(d.dir, vkeys);
  t.after(() => w.close());
  const options = { ...base, witnesses: [{ url: w.server.url, key: w.witness.vkey }] };
  await historyWithOldNote(dir, options, TransparencyLog.start);
  assert.equal(w.witness.latest('gatehouse.local/audit')!.size, 30);
  copyFileSync(join(d.dir, 'old.note'), join(dir, 'checkpoint.note'));
  rmSync(join(dir, 'checkpoints.sqlite'));
  editEntry(dir, 22);
  await assert.rejects(TransparencyLog.start(dir, options), (e: Error & { detail?: string }) => e.detail === 'AUDIT_ROLLBACK_DETECTED' && /witness/.test(e.message));
});
