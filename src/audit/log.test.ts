import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { TransparencyLog } from './log.ts';
import { verifyExport, verifyReceipt } from './verify.ts';
import { openCheckpoint, parseVkey } from './note.ts';
import { verifyConsistency, verifyInclusion } from './merkle.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

/**
 * Key files sealed at scrypt N=2^10 (TransparencyLogOptions.keyKdf): at the production cost
 * (N=2^15) the file spent most of its CPU deriving key-encryption keys for its ~40 logs. The
 * test of encryption at rest opens its log at the production default and checks it.
 */
const TEST_KDF = { N: 2 ** 10, r: 8, p: 1 } as const;
const open = (dir: string, extra = {}) => TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 50, keyKdf: TEST_KDF, ...extra });

async function exportLines(log: TransparencyLog, options = {}): Promise<string[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await log.export(out, options);
  out.end();
  return Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l !== '');
}

test('appends get consecutive auditIds and appends in one tick share one fsync', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  const first = await log.append(record(0));
  assert.equal(first.auditId, '0');
  const before = log.stats().batches;
  const ids = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(record(i + 1))));
  assert.deepEqual(ids.map((r) => r.auditId), Array.from({ length: 500 }, (_, i) => String(i + 1)));
  assert.equal(log.stats().batches - before, 1);
  await log.close();
});

test('a checkpoint covering new entries is signed within the checkpoint interval', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir, { checkpointIntervalMs: 100 });
  await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(record(i))));
  // Polled rather than slept: the checkpoint timer fires on its own (nothing here calls
  // checkpoint()), and the test fails unless it covers every entry within 3 × the interval.
  const covered = (): boolean => { const note = log.latestCheckpoint(); return note !== null && openCheckpoint(note, log.verifiers()).size === 10; };
  const deadline = performance.now() + 300;
  while (!covered() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const cp = openCheckpoint(log.latestCheckpoint()!, log.verifiers());
  assert.equal(cp.size, 10);
  await log.close();
});

test('entries, proofs and the signed checkpoint survive a reopen', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  let log = open(dir);
  await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(record(i))));
  const note1 = await log.checkpoint();
  await log.close();
  log = open(dir);
  assert.equal(log.size, 100);
  await Promise.all(Array.from({ length: 37 }, (_, i) => log.append(record(100 + i))));
  const note2 = await log.checkpoint();
  const [c1, c2] = [openCheckpoint(note1, log.verifiers()), openCheckpoint(note2, log.verifiers())];
  const p = log.consistencyProof(100, 137);
  verifyConsistency(100, 137, c1.root, c2.root, p.proof.map((h) => Buffer.from(h, 'base64')));
  const ip = log.inclusionProof(42);
  verifyInclusion(42, 137, Buffer.from(ip.leafHash, 'base64'), ip.proof.map((h) => Buffer.from(h, 'base64')), c2.root);
  await log.close();
});

test('a second process cannot open a log directory that is in use', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  assert.throws(() => open(dir), { detail: 'AUDIT_LOCKED' });
  await log.close();
});

test('proof requests with index >= size or first > second are rejected', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await Promise.all(Array.from({ length: 5 }, (_, i) => log.append(record(i))));
  await log.checkpoint();
  assert.throws(() => log.inclusionProof(5), { detail: 'AUDIT_PROOF_RANGE' });
  assert.throws(() => log.inclusionProof(0, 6), { detail: 'AUDIT_PROOF_RANGE' });
  assert.throws(() => log.consistencyProof(4, 3), { detail: 'AUDIT_PROOF_RANGE' });
  assert.throws(() => log.consistencyProof(1, 9), { detail: 'AUDIT_PROOF_RANGE' });
  assert.throws(() => log.inclusionProof(-1), { detail: 'AUDIT_PROOF_RANGE' });
  await log.close();
});

test('a malformed record is rejected with AUDIT_RECORD_INVALID and nothing is appended', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await assert.rejects(log.append({ ...record(0), decision: 'maybe' as 'allow' }), { detail: 'AUDIT_RECORD_INVALID' });
  await assert.rejects(log.append({ ...record(0), time: 'yesterday' }), { detail: 'AUDIT_RECORD_INVALID' });
  await assert.rejects(log.append({ ...record(0), rowsReturned: -1 }), { detail: 'AUDIT_RECORD_INVALID' });
  assert.equal(log.size, 0);
  await log.close();
});

test('append after close fails closed with AUDIT_UNAVAILABLE', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await log.close();
  await assert.rejects(log.append(record(0)), { code: 'AUDIT_UNAVAILABLE' });
});

test('a receipt verifies offline and a tampered receipt does not', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(record(i))));
  const receipt = await log.receipt(ids[13]!.auditId);
  const vkeys = log.publicKeys().vkeys;
  assert.equal(verifyReceipt(JSON.parse(JSON.stringify(receipt)), vkeys.map(parseVkey)).index, 13);
  const tampered = JSON.parse(JSON.stringify(receipt));
  tampered.leaf.entry.decision = 'allow';
  tampered.leaf.entry.rowsReturned = 1_000_000;
  assert.throws(() => verifyReceipt(tampered, vkeys.map(parseVkey)), { detail: 'AUDIT_PROOF_INVALID' });
  const moved = { ...JSON.parse(JSON.stringify(receipt)), index: 12 };
  assert.throws(() => verifyReceipt(moved, vkeys.map(parseVkey)));
  await assert.rejects(log.receipt('999'), { detail: 'AUDIT_ENTRY_NOT_FOUND' });
  await assert.rejects(log.receipt('01'), { detail: 'AUDIT_ENTRY_NOT_FOUND' });
  await log.close();
});

test('after key rotation old checkpoints and receipts still verify with the key history', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await Promise.all(Array.from({ length: 8 }, (_, i) => log.append(record(i))));
  const oldReceipt = await log.receipt('3');
  const oldNote = await log.checkpoint();
  await log.rotateSigningKey();
  await Promise.all(Array.from({ length: 8 }, (_, i) => log.append(record(8 + i))));
  const newNote = await log.checkpoint();
  const keys = log.publicKeys();
  assert.equal(keys.vkeys.length, 2);
  assert.equal(keys.history[0]!.retiredAt !== null, true);
  const [oldKey, newKey] = keys.vkeys.map(parseVkey) as [ReturnType<typeof parseVkey>, ReturnType<typeof parseVkey>];
  assert.equal(openCheckpoint(oldNote, [oldKey]).size, 8);
  assert.equal(openCheckpoint(newNote, [newKey]).size, 16);
  assert.throws(() => openCheckpoint(newNote, [oldKey]), { detail: 'AUDIT_NOTE_UNVERIFIED' });
  verifyReceipt(oldReceipt, keys.vkeys.map(parseVkey));
  // Retired private keys are erased from the key file.
  const file = JSON.parse(readFileSync(join(dir, 'keys', 'log-signing-keys.json'), 'utf8'));
  assert.equal(file.keys.filter((k: { sealed?: unknown }) => k.sealed).length, 1);
  await log.close();
  // The log reopens with the new key and its history.
  const again = open(dir);
  assert.equal(again.publicKeys().vkeys.length, 2);
  await again.close();
});

test('private keys are encrypted at rest and a wrong passphrase fails without revealing it', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE }); // the production cost
  await log.close();
  const text = readFileSync(join(dir, 'keys', 'log-signing-keys.json'), 'utf8');
  assert.doesNotMatch(text, /PRIVATE KEY|MC4CAQ/);
  assert.match(text, /"kdf": "scrypt"/);
  assert.deepEqual((({ N, r, p }) => ({ N, r, p }))(JSON.parse(text).kdf), { N: 2 ** 15, r: 8, p: 1 }, 'sealed at the default scrypt cost');
  const secret = 'the-wrong-passphrase-123';
  try {
    TransparencyLog.open(dir, { passphrase: secret });
    assert.fail('opened with a wrong passphrase');
  } catch (e) {
    assert.equal((e as { detail: string | null }).detail, 'AUDIT_KEY_UNAVAILABLE');
    assert.doesNotMatch(String((e as Error).message) + String((e as Error).stack), new RegExp(secret));
  }
  assert.throws(() => TransparencyLog.open(dir, { passphrase: undefined, demo: false }), (e: { code?: string; detail?: string | null }) => e.detail === 'AUDIT_KEY_UNAVAILABLE' || e.code === undefined);
});

test('principals are stored as keyed pseudonyms, searchable with the key, unlinkable once it is destroyed', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await Promise.all(Array.from({ length: 30 }, (_, i) => log.append({ ...record(i), subjects: ['patient-4711'] } as never)));
  await log.checkpoint();
  const raw = readFileSync(join(dir, 'entries.dat'), 'utf8');
  assert.doesNotMatch(raw, /partner\.example|patient-4711|10\.0\.0\./);
  const hits = await log.search({ principal: 'user-3@partner.example' });
  assert.ok(hits.length > 0);
  assert.ok(hits.every((h) => h.entry.principal === log.pseudonymsOf('user-3@partner.example')[0]));
  assert.equal((await log.search({ pseudonym: log.pseudonymsOf('patient-4711')[0]! })).length, 30);
  const [epoch] = log.pseudonymEpochs();
  log.destroyPseudonymKey(epoch!.epoch);
  assert.deepEqual(await log.search({ principal: 'user-3@partner.example' }), []);
  assert.deepEqual(log.pseudonymsOf('user-3@partner.example'), []);
  // The tree is untouched: the full export still verifies.
  const report = await verifyExport(await exportLines(log), { verifiers: log.verifiers() });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
  assert.doesNotMatch(readFileSync(join(dir, 'pseudonym-keys', 'pseudonym-keys.json'), 'utf8'), /"sealed"/);
  await log.close();
});

test('search filters by dataset, decision, purpose, action and time range', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await Promise.all(Array.from({ length: 60 }, (_, i) => log.append(record(i))));
  const all = await log.search({ limit: 1000 });
  assert.equal(all.length, 60);
  const claims = await log.search({ dataset: 'claims' });
  assert.equal(claims.length, 20);
  const denied = await log.search({ decision: 'deny', purpose: 'fraud-analytics' });
  assert.deepEqual(denied.map((h) => h.index), [0, 10, 20, 30, 40, 50]);
  const window = await log.search({ from: record(10).time, to: record(15).time });
  assert.deepEqual(window.map((h) => h.index), [10, 11, 12, 13, 14]);
  assert.equal((await log.search({ action: 'login' })).length, 0);
  assert.equal((await log.search({ limit: 7 })).length, 7);
  await assert.rejects(log.search({ from: 'not-a-time' }), { detail: 'AUDIT_INPUT_INVALID' });
  await log.close();
});

test('a torn trailing write is truncated on open and the log continues without a gap', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  let log = open(dir);
  await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(record(i))));
  await log.close();
  const size = statSync(join(dir, 'entries.dat')).size;
  // A record header promising 300 bytes followed by only 20.
  const torn = Buffer.alloc(28); torn.writeUInt32BE(300, 0);
  appendFileSync(join(dir, 'entries.dat'), torn);
  log = open(dir);
  assert.equal(log.size, 10);
  assert.equal(statSync(join(dir, 'entries.dat')).size, size);
  assert.equal((await log.append(record(10))).auditId, '10');
  await log.close();
  // A zero-filled tail (block allocated, never written) is also a torn write.
  appendFileSync(join(dir, 'entries.dat'), Buffer.alloc(4096));
  log = open(dir);
  assert.equal(log.size, 11);
  await log.close();
});

test('a corrupted record followed by valid ones refuses to open instead of dropping acknowledged entries', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir, { checkpointIntervalMs: 60_000 });
  await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(record(i))));
  // Crash before any checkpoint: nothing is trusted, everything is replayed on open.
  const bytes = readFileSync(join(dir, 'entries.dat'));
  await log.close();
  writeFileSync(join(dir, 'checkpoint.note'), '');
  bytes[40] = bytes[40]! ^ 0xff;
  writeFileSync(join(dir, 'entries.dat'), bytes);
  for (const f of readdirSync(dir)) if (f === 'checkpoint.note') writeFileSync(join(dir, f), '');
  assert.throws(() => open(dir), (e: { code?: string; detail?: string | null }) => e.detail === 'AUDIT_STORE_CORRUPT' || e.detail === 'AUDIT_NOTE_MALFORMED');
});

test('the log refuses to open when stored entries no longer match its last signed checkpoint, and rebuilds a damaged derived tree', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await Promise.all(Array.from({ length: 16 }, (_, i) => log.append(record(i))));
  const signedRoot = log.rootAt(16);
  await log.checkpoint();
  await log.close();
  // Rewrite a stored tree node: derived data, recomputed from the verified entries on open.
  const p = join(dir, 'tree-04.dat'); // the stored root node of the 16-leaf tree
  const b = readFileSync(p); b[0] = b[0]! ^ 1; writeFileSync(p, b);
  const repaired = open(dir);
  assert.ok(repaired.rootAt(16).equals(signedRoot));
  await repaired.close();
  // Truncating entries below the signed size is caught.
  const e = readFileSync(join(dir, 'entries.dat'));
  writeFileSync(join(dir, 'entries.dat'), e.subarray(0, 100));
  assert.throws(() => open(dir), { detail: 'AUDIT_STORE_CORRUPT' });
});

test('a full export verifies, and the verifier names modified entries tampered in storage', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(record(i))));
  const good = await exportLines(log);
  const verifiers = log.verifiers();
  assert.equal((await verifyExport(good, { verifiers })).ok, true);
  // Rewrite entry 7 on disk with a valid checksum (an insider editing storage).
  const leaf = log.leaf(7);
  await log.close();
  const path = join(dir, 'entries.dat');
  const data = readFileSync(path);
  const original = Buffer.from(JSON.stringify(leaf).length ? '' : '');
  void original;
  const needle = Buffer.from('"decision":"allow"');
  let pos = 0;
  for (let i = 0; i < 7; i++) pos += 8 + data.readUInt32BE(pos);
  const at = data.indexOf(needle, pos);
  assert.ok(at > 0 && at < pos + 8 + data.readUInt32BE(pos));
  Buffer.from('"decision":"deny!"').copy(data, at);
  const { crc32 } = await import('node:zlib');
  data.writeUInt32BE(crc32(data.subarray(pos + 8, pos + 8 + data.readUInt32BE(pos))), pos + 4);
  writeFileSync(path, data);
  // The log itself refuses to open (and so to serve) the edited store.
  assert.throws(() => open(dir), { detail: 'AUDIT_STORE_CORRUPT' });
  // An export edited the same way in transit is caught by the offline verifier.
  const edited = good.map((l) => (l.startsWith('{"index":7,') ? l.replace('"decision":"allow"', '"decision":"deny!"') : l));
  assert.notDeepEqual(edited, good);
  const report = await verifyExport(edited, { verifiers });
  assert.equal(report.ok, false);
  assert.deepEqual(report.problems.map((p) => [p.kind, p.index]), [['modified', 7]]);
});

test('the verifier names deleted, reordered, inserted and truncated entries in an export', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = open(dir);
  await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(record(i))));
  const lines = await exportLines(log);
  const verifiers = log.verifiers();
  const [header, ...rest] = lines;
  const entries = rest.slice(0, -1);
  const end = (n: number) => JSON.stringify({ type: 'end', count: n });
  const kinds = async (ls: string[]) => (await verifyExport(ls, { verifiers })).problems.map((p) => `${p.kind}:${p.index}`);

  const deleted = entries.filter((_, i) => i !== 12);
  assert.deepEqual(await kinds([header!, ...deleted, end(29)]), ['deleted:12']);

  const reordered = entries.slice(); [reordered[5], reordered[6]] = [reordered[6]!, reordered[5]!];
  assert.deepEqual(await kinds([header!, ...reordered, end(30)]), ['reordered:5']);

  const forged = JSON.parse(entries[9]!); forged.leaf.entry.action = 'export'; forged.leaf.index = 10;
  const inserted = [...entries.slice(0, 10), JSON.stringify(forged), ...entries.slice(10)];
  assert.deepEqual(await kinds([header!, ...inserted, end(31)]), ['inserted:10']);

  const duplicated = [...entries.slice(0, 10), entries[3]!, ...entries.slice(10)];
  assert.deepEqual(await kinds([header!, ...duplicated, end(31)]), ['inserted:3']);

  assert.deepEqual(await kinds([header!, ...entries.slice(0, 25), end(25)]), ['truncated:25']);
  assert.deepEqual(await kinds([header!, ...entries.slice(0, 25)]), ['truncated:undefined', 'truncated:25']);

  const renumbered = JSON.parse(entries[4]!); renumbered.leaf.index = 17; renumbered.leaf.entry.rowsReturned = 0;
  assert.deepEqual(await kinds([header!, ...entries.slice(0, 4), JSON.stringify(renumbered), ...entries.slice(5), end(30)]), ['modified:4']);

  const badProof = JSON.parse(entries[2]!); badProof.proof = [...badProof.proof, badProof.proof[0]];
  assert.deepEqual(await kinds([header!, ...entries.slice(0, 2), JSON.stringify(badProof), ...entries.slice(3), end(30)]), ['modified:2']);
  await log.close();
});

test('against a trusted checkpoint the verifier reports truncation (rollback) and forks', async (t) => {
  const a = tempDir(); const b = tempDir(); t.after(() => { a.cleanup(); b.cleanup(); });
  const log = open(a.dir);
  await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(record(i))));
  const trusted20 = await log.checkpoint();
  await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(record(20 + i))));
  const full = await exportLines(log);
  const verifiers = log.verifiers();
  assert.equal((await verifyExport(full, { verifiers, trusted: trusted20 })).ok, true);
  const trusted30 = await log.checkpoint();
  await log.close();

  // A rolled-back server: a log with only 20 entries, signed with the same key.
  const { cpSync } = await import('node:fs');
  cpSync(join(a.dir, 'keys'), join(b.dir, 'keys'), { recursive: true });
  cpSync(join(a.dir, 'pseudonym-keys'), join(b.dir, 'pseudonym-keys'), { recursive: true });
  const fork = open(b.dir);
  await Promise.all(Array.from({ length: 20 }, (_, i) => fork.append(record(i))));
  const rolledBack = await exportLines(fork);
  const r1 = await verifyExport(rolledBack, { verifiers, trusted: trusted30 });
  assert.deepEqual(r1.problems.map((p) => p.kind), ['truncated']);
  // The same key signs a different history: entry 5 differs.
  await Promise.all(Array.from({ length: 10 }, (_, i) => fork.append(record(20 + i, i === 0 ? { action: 'rewritten' } : {}))));
  const forked = await exportLines(fork);
  const r2 = await verifyExport(forked, { verifiers, trusted: trusted30 });
  assert.deepEqual(r2.problems.map((p) => p.kind), ['forked']);
  await fork.close();
});

test('an export signed by an unknown key or with a bad signature is rejected', async (t) => {
  const a = tempDir(); const b = tempDir(); t.after(() => { a.cleanup(); b.cleanup(); });
  const log = open(a.dir);
  const other = open(b.dir);
  await log.append(record(0));
  const lines = await exportLines(log);
  const r = await verifyExport(lines, { verifiers: other.verifiers() });
  assert.deepEqual(r.problems.map((p) => p.kind), ['checkpoint']);
  const header = JSON.parse(lines[0]!);
  header.checkpoint = header.checkpoint.replace(/ (\S{8})(\S)/, (_m: string, a1: string, c: string) => ` ${a1}${c === 'A' ? 'B' : 'A'}`);
  const r2 = await verifyExport([JSON.stringify(header), ...lines.slice(1)], { verifiers: log.verifiers() });
  assert.equal(r2.ok, false);
  await log.close(); await other.close();
});
