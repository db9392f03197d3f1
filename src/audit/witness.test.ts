import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { TransparencyLog } from './log.ts';
import {
  HttpWitnessClient, LocalWitnessClient, Witness, detectSplitView, formatAddCheckpointBody, publishCheckpoint,
  startWitnessServer, verifyCosignedCheckpoint, type WitnessClient,
} from './witness.ts';
import { generateEd25519 } from './keys.ts';
import { addSignatures, openCheckpoint, parseNote, type NoteSignature } from './note.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

const openLog = (dir: string) => TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 60_000 });
function makeWitness(stateDir: string, name: string, log: TransparencyLog): Witness {
  return new Witness({ name, privateKey: generateEd25519().privateKey, stateDir, logs: [{ origin: log.origin, vkeys: log.publicKeys().vkeys }] });
}
async function grow(log: TransparencyLog, n: number, over = {}) {
  const base = log.size;
  await Promise.all(Array.from({ length: n }, (_, i) => log.append(record(base + i, over))));
  return log.checkpoint();
}

test('a witness cosigns only consistent growth and answers a stale old size with a conflict', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const log = openLog(join(d.dir, 'log'));
  const w = makeWitness(join(d.dir, 'w'), 'witness.example/w1', log);
  const note5 = await grow(log, 5);
  const sig = await w.addCheckpoint(0, [], note5);
  assert.equal(verifyCosignedCheckpoint(addSignatures(note5, [sig]), log.publicKeys().vkeys, [w.vkey], 1).size, 5);
  const note9 = await grow(log, 4);
  const proof = log.consistencyProof(5, 9).proof.map((p) => Buffer.from(p, 'base64'));
  await assert.rejects(w.addCheckpoint(0, [], note9), { detail: 'AUDIT_WITNESS_CONFLICT', latestSize: 5 });
  await assert.rejects(w.addCheckpoint(5, proof.slice(1), note9), (e: { detail: string | null }) => e.detail === 'AUDIT_PROOF_LENGTH' || e.detail === 'AUDIT_PROOF_INVALID');
  const flipped = proof.map((p) => Buffer.from(p)); flipped[0]![0]! ^= 1;
  await assert.rejects(w.addCheckpoint(5, flipped, note9), { detail: 'AUDIT_PROOF_INVALID' });
  await w.addCheckpoint(5, proof, note9);
  assert.equal(w.latest(log.origin)!.size, 9);
  // A note whose known-key signature is bad is rejected outright.
  const bad = note9.replace(/(— \S+ )(.)/, (_m, p: string, c: string) => p + (c === 'A' ? 'B' : 'A'));
  await assert.rejects(w.addCheckpoint(9, [], bad), (e: { detail: string | null }) => e.detail === 'AUDIT_NOTE_SIGNATURE_INVALID' || e.detail === 'AUDIT_NOTE_MALFORMED' || e.detail === 'AUDIT_NOTE_UNVERIFIED');
  // An unknown log is refused.
  const other = openLog(join(d.dir, 'other'));
  await assert.rejects(w.addCheckpoint(0, [], await grow(other, 1)), (e: { detail: string | null }) => e.detail === 'AUDIT_WITNESS_UNKNOWN_LOG' || e.detail === 'AUDIT_NOTE_UNVERIFIED');
  w.close(); await log.close(); await other.close();
});

test('concurrent check-and-store never rolls the witness back', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const log = openLog(join(d.dir, 'log'));
  const w = makeWitness(join(d.dir, 'w'), 'witness.example/w1', log);
  const notes: string[] = [];
  for (let i = 0; i < 12; i++) notes.push(await grow(log, 3));
  const sizes = notes.map((n) => openCheckpoint(n, log.verifiers()).size);
  let held = 0;
  for (let round = 0; round < 4; round++) {
    // Everyone races from the size the witness holds, towards different (larger and smaller) trees.
    const attempts = notes.map((note, i) => {
      const size = sizes[i]!;
      const proof = size >= held && held > 0 ? log.consistencyProof(held, size).proof.map((p) => Buffer.from(p, 'base64')) : [];
      return w.addCheckpoint(held, proof, note).then(() => size, (e: { detail: string }) => e.detail);
    });
    const results = await Promise.all(attempts);
    const accepted = results.filter((r): r is number => typeof r === 'number');
    // Exactly one update from `held` can win; every other racer sees a conflict or a rejection.
    // (Re-submitting the held checkpoint itself is idempotent and changes nothing.)
    const grew = accepted.filter((s) => s > held);
    assert.equal(grew.length, held === sizes.at(-1) ? 0 : 1, JSON.stringify(results));
    const now = w.latest(log.origin)!.size;
    assert.ok(now >= held, `witness rolled back from ${held} to ${now}`);
    assert.equal(now, Math.max(...accepted));
    held = now;
  }
  w.close(); await log.close();
});

test('the owner publishes only with k-of-n cosignatures', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const log = openLog(join(d.dir, 'log'));
  const ws = [1, 2, 3].map((i) => makeWitness(join(d.dir, `w${i}`), `witness${i}.example/w`, log));
  const clients: WitnessClient[] = ws.map((w) => new LocalWitnessClient(w));
  const offline: WitnessClient = { name: ws[2]!.name, vkey: ws[2]!.vkey, addCheckpoint: async () => { throw new Error('connection refused'); } };
  await grow(log, 10);
  const published = await publishCheckpoint(log, { witnesses: [clients[0]!, clients[1]!, offline], quorum: 2 });
  const vkeys = ws.map((w) => w.vkey);
  assert.equal(verifyCosignedCheckpoint(published, log.publicKeys().vkeys, vkeys, 2).size, 10);
  assert.throws(() => verifyCosignedCheckpoint(published, log.publicKeys().vkeys, vkeys, 3), { detail: 'AUDIT_WITNESS_QUORUM' });
  await grow(log, 5);
  await assert.rejects(publishCheckpoint(log, { witnesses: [clients[0]!, offline, offline], quorum: 2 }), { detail: 'AUDIT_WITNESS_QUORUM' });
  // The third witness joins late: its first checkpoint needs no proof, later ones do.
  const again = await publishCheckpoint(log, { witnesses: clients, quorum: 3 });
  assert.equal(parseNote(again).signatures.length, 4);
  // A witness that lies (signs with another key) does not count.
  const liar: WitnessClient = { name: ws[0]!.name, vkey: ws[0]!.vkey, addCheckpoint: async (o, p, n) => (await clients[1]!.addCheckpoint(o, p, n)).map((s) => ({ ...s, name: ws[0]!.name, keyId: Buffer.from(parseNote(again).signatures[1]!.keyId) })) };
  await grow(log, 1);
  await assert.rejects(publishCheckpoint(log, { witnesses: [liar, clients[1]!], quorum: 2 }), { detail: 'AUDIT_WITNESS_QUORUM' });
  for (const w of ws) w.close();
  await log.close();
});

test('unknown signatures on a note are ignored and a bad signature from a known witness rejects it', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const log = openLog(join(d.dir, 'log'));
  const w1 = makeWitness(join(d.dir, 'w1'), 'witness1.example/w', log);
  const stranger = makeWitness(join(d.dir, 'w2'), 'stranger.example/w', log);
  const note = await grow(log, 3);
  const s1 = await w1.addCheckpoint(0, [], note);
  const s2 = await stranger.addCheckpoint(0, [], note);
  const both = addSignatures(note, [s2, s1]);
  assert.equal(verifyCosignedCheckpoint(both, log.publicKeys().vkeys, [w1.vkey], 1).size, 3);
  const forgedSig: NoteSignature = { ...s1, sig: Buffer.from(s1.sig.map((b, i) => (i === 20 ? b ^ 1 : b))) };
  assert.throws(() => verifyCosignedCheckpoint(addSignatures(note, [forgedSig]), log.publicKeys().vkeys, [w1.vkey], 1), { detail: 'AUDIT_NOTE_SIGNATURE_INVALID' });
  w1.close(); stranger.close(); await log.close();
});

test('a log that shows two different histories to two witnesses is caught', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const honest = openLog(join(d.dir, 'a'));
  await honest.close();
  // The malicious owner runs a second log with the same origin and signing key.
  cpSync(join(d.dir, 'a', 'keys'), join(d.dir, 'b', 'keys'), { recursive: true });
  cpSync(join(d.dir, 'a', 'pseudonym-keys'), join(d.dir, 'b', 'pseudonym-keys'), { recursive: true });
  const a = openLog(join(d.dir, 'a'));
  const b = openLog(join(d.dir, 'b'));
  const w1 = makeWitness(join(d.dir, 'w1'), 'witness1.example/w', a);
  const w2 = makeWitness(join(d.dir, 'w2'), 'witness2.example/w', a);
  const c1 = new LocalWitnessClient(w1);
  const c2 = new LocalWitnessClient(w2);
  await grow(a, 8);
  await grow(b, 8, { action: 'hidden-export' });
  // Each view gets one cosignature; neither reaches a 2-of-2 quorum.
  const viewA = await publishCheckpoint(a, { witnesses: [c1], quorum: 1 });
  const viewB = await publishCheckpoint(b, { witnesses: [c2], quorum: 1 });
  await assert.rejects(publishCheckpoint(a, { witnesses: [c1, c2], quorum: 2 }), { detail: 'AUDIT_WITNESS_QUORUM' });
  await assert.rejects(publishCheckpoint(b, { witnesses: [c1, c2], quorum: 2 }), { detail: 'AUDIT_WITNESS_QUORUM' });
  // Comparing what the two witnesses hold exposes the fork.
  assert.throws(() => detectSplitView(w1.latest(a.origin)!.checkpoint, w2.latest(a.origin)!.checkpoint, a.publicKeys().vkeys), { detail: 'AUDIT_SPLIT_VIEW' });
  assert.throws(() => detectSplitView(viewA, viewB, a.publicKeys().vkeys), { detail: 'AUDIT_SPLIT_VIEW' });
  // Once B grows, no consistency proof from A's view exists.
  const noteB = await grow(b, 4);
  assert.throws(() => detectSplitView(viewA, noteB, a.publicKeys().vkeys, b.consistencyProof(8, 12).proof), { detail: 'AUDIT_SPLIT_VIEW' });
  detectSplitView(viewB, noteB, a.publicKeys().vkeys, b.consistencyProof(8, 12).proof);
  await assert.rejects(w1.addCheckpoint(8, b.consistencyProof(8, 12).proof.map((p) => Buffer.from(p, 'base64')), noteB), { detail: 'AUDIT_PROOF_INVALID' });
  w1.close(); w2.close(); await a.close(); await b.close();
});

test('the HTTP witness speaks tlog-witness add-checkpoint, including 409 with the held size', async (t) => {
  const d = tempDir(); t.after(d.cleanup);
  const log = openLog(join(d.dir, 'log'));
  const w = makeWitness(join(d.dir, 'w'), 'witness.example/w1', log);
  const server = await startWitnessServer(w);
  t.after(() => server.close());
  const client = new HttpWitnessClient(server.url, w.vkey);
  await grow(log, 4);
  const published = await publishCheckpoint(log, { witnesses: [client], quorum: 1 });
  verifyCosignedCheckpoint(published, log.publicKeys().vkeys, [w.vkey], 1);
  const note = await grow(log, 2);
  const res = await fetch(`${server.url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointBody(0, [], note) });
  assert.equal(res.status, 409);
  assert.equal(res.headers.get('content-type'), 'text/x.tlog.size');
  assert.equal((await res.text()).trim(), '4');
  const garbage = await fetch(`${server.url}/add-checkpoint`, { method: 'POST', body: 'hello' });
  assert.equal(garbage.status, 400);
  const badProof = await fetch(`${server.url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointBody(4, [Buffer.alloc(32)], note) });
  assert.equal(badProof.status, 422);
  // A stale owner learns the held size from the 409 and retries with the right proof.
  assert.equal(verifyCosignedCheckpoint(await publishCheckpoint(log, { witnesses: [client], quorum: 1 }), log.publicKeys().vkeys, [w.vkey], 1).size, 6);
  w.close(); await log.close();
});
