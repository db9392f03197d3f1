import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ArtefactStore, verifyCertificateDigest } from './artefacts.ts';
import { open as openBlob } from './blob.ts';
import { DataKeyStore, wrapContext } from './data-keys.ts';
import { LocalKeyring, decodeWrappedKey } from './keyring.ts';

const PASS = 'artefact test passphrase';
const CSV = (tag: string) => Buffer.from(`patient_id,diagnosis\n${tag}-1,diabetes\n${tag}-2,asthma\n`);

async function setup(t: { after: (fn: () => void) => void }, now?: () => Date) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-artefacts-'));
  const keyring = await LocalKeyring.create(join(dir, 'keyring.json'), PASS);
  const keys = DataKeyStore.open(join(dir, 'data-keys.sqlite'), keyring, now ? { now } : {});
  const store = ArtefactStore.open({ dir: join(dir, 'artefacts'), keys, ...(now ? { now } : {}) });
  t.after(() => { store.close(); keys.close(); keyring.close(); rmSync(dir, { recursive: true, force: true }); });
  return { dir, keyring, keys, store };
}

function keyStoreBytes(dir: string): Buffer {
  const p = join(dir, 'data-keys.sqlite');
  return Buffer.concat([p, `${p}-wal`].filter(existsSync).map((f) => readFileSync(f)));
}

test('a stored result is encrypted under its own data key and reads back intact', async (t) => {
  const { store, dir } = await setup(t);
  const a = await store.put({ kind: 'result', owner: 'rhea', labels: { agreement: 'agr-1', dataset: 'claims' }, retainUntil: '2030-01-01T00:00:00Z', content: CSV('SECRETPATIENT'), mediaType: 'text/csv' });
  const b = await store.put({ kind: 'export', owner: 'ivan', labels: { agreement: 'agr-2' }, retainUntil: null, content: CSV('OTHER'), mediaType: 'text/csv' });
  assert.notEqual(a.keyId, b.keyId);
  const files = readdirSync(join(dir, 'artefacts', 'blobs'));
  assert.equal(files.length, 2);
  for (const f of files) assert.equal(readFileSync(join(dir, 'artefacts', 'blobs', f)).includes(Buffer.from('SECRETPATIENT')), false);
  const got = await store.get(a.id);
  assert.deepEqual(got.content, CSV('SECRETPATIENT'));
  assert.deepEqual([got.meta.owner, got.meta.labels, got.meta.retainUntil, got.meta.mediaType, got.meta.bytes], ['rhea', { agreement: 'agr-1', dataset: 'claims' }, '2030-01-01T00:00:00.000Z', 'text/csv', a.bytes]);
  assert.deepEqual((await store.list({ labels: { agreement: 'agr-1' } })).map((m) => m.id), [a.id]);
  assert.deepEqual((await store.list({ kind: 'export' })).map((m) => m.id), [b.id]);
  await assert.rejects(store.get('art_doesnotexist0000000'), { detail: 'ARTEFACT_NOT_FOUND' });
  await assert.rejects(store.get('../../etc/passwd'), { detail: 'ARTEFACT_NOT_FOUND' });
  await assert.rejects(store.put({ kind: 'result', owner: '', retainUntil: null, content: Buffer.alloc(1), mediaType: 'text/csv' }), { detail: 'KEY_INPUT_INVALID' });
  await assert.rejects(store.put({ kind: 'result', owner: 'x', retainUntil: 'next tuesday', content: Buffer.alloc(1), mediaType: 'text/csv' }), { detail: 'KEY_INPUT_INVALID' });
});

test('a tampered or swapped artefact file is refused with a clear error, never returned', async (t) => {
  const { store, dir } = await setup(t);
  const a = await store.put({ kind: 'result', owner: 'rhea', retainUntil: null, content: CSV('A'), mediaType: 'text/csv' });
  const b = await store.put({ kind: 'result', owner: 'rhea', retainUntil: null, content: CSV('B'), mediaType: 'text/csv' });
  const pa = join(dir, 'artefacts', 'blobs', `${a.id}.ghb`);
  const pb = join(dir, 'artefacts', 'blobs', `${b.id}.ghb`);
  // Swap: b's file where a's should be — encrypted under another key.
  const original = readFileSync(pa);
  writeFileSync(pa, readFileSync(pb));
  await assert.rejects(store.get(a.id), { detail: 'CIPHERTEXT_KEY_MISMATCH' });
  const bad = Buffer.from(original);
  bad[bad.length - 20]! ^= 1;
  writeFileSync(pa, bad);
  await assert.rejects(store.get(a.id), (e: any) => e.detail === 'CIPHERTEXT_TAMPERED' && e.message.includes(`${a.id}.ghb`));
  rmSync(pa);
  await assert.rejects(store.get(a.id), { detail: 'CIPHERTEXT_TAMPERED' });
});

test('crypto-shredding: after destroy, a copy of the ciphertext taken from disk can no longer be decrypted by anything in the store, the keyring or any KEK', async (t) => {
  const { store, keys, keyring, dir } = await setup(t);
  const victim = await store.put({ kind: 'result', owner: 'rhea', labels: { agreement: 'agr-9' }, retainUntil: null, content: CSV('SHREDME'), mediaType: 'text/csv' });
  const keep = await store.put({ kind: 'result', owner: 'ada', labels: { agreement: 'agr-1' }, retainUntil: null, content: CSV('KEEP'), mediaType: 'text/csv' });
  // The attacker's copies, taken before destruction: the ciphertext file and (as in a backup) the wrapped key.
  const stolenCiphertext = readFileSync(join(dir, 'artefacts', 'blobs', `${victim.id}.ghb`));
  const db = new DatabaseSync(join(dir, 'data-keys.sqlite'));
  const stolenWrapped = (db.prepare('SELECT wrapped FROM data_keys WHERE key_id = ?').get(victim.keyId) as { wrapped: string }).wrapped;
  db.close();
  // Sanity: before destruction, the stolen copy is decryptable with the store's key.
  assert.deepEqual(openBlob(stolenCiphertext, await keys.unwrap(victim.keyId)), CSV('SHREDME'));

  const cert = await store.destroy({ labels: { agreement: 'agr-9' } }, 'agreement agr-9 terminated');
  assert.equal(cert.method, 'crypto-shredding: data keys destroyed');
  assert.equal(cert.count, 1);
  assert.equal(cert.artefacts[0]!.id, victim.id);
  assert.equal(cert.artefacts[0]!.keyId, victim.keyId);
  assert.equal(cert.artefacts[0]!.ciphertextSha256, victim.ciphertextSha256);
  assert.match(cert.artefacts[0]!.wrappedKeyDigest, /^[0-9a-f]{64}$/);
  assert.ok(verifyCertificateDigest(cert));
  assert.equal(verifyCertificateDigest({ ...cert, reason: 'something else' }), false);

  // 1. The store refuses, clearly.
  await assert.rejects(store.get(victim.id), (e: any) => e.detail === 'ARTEFACT_DESTROYED' && /agr-9 terminated/.test(e.message));
  await assert.rejects(keys.unwrap(victim.keyId), { detail: 'DATA_KEY_DESTROYED' });
  // 2. The file is gone, and the wrapped key is in neither the key database nor its WAL.
  assert.equal(existsSync(join(dir, 'artefacts', 'blobs', `${victim.id}.ghb`)), false);
  assert.equal(keyStoreBytes(dir).includes(Buffer.from(decodeWrappedKey(stolenWrapped).ciphertext)), false);
  // 3. No data key left in the store opens the stolen ciphertext.
  for (const k of await keys.list()) {
    const key = await keys.unwrap(k.keyId);
    assert.throws(() => openBlob(stolenCiphertext, key), { detail: 'CIPHERTEXT_TAMPERED' });
  }
  // 4. Even the stolen wrapped key (a backup) stops working once the KEK is rotated and the old version retired.
  await keyring.rotate();
  const report = await keys.rewrapAll({ retire: true });
  assert.deepEqual(report.retired, ['v1']);
  await assert.rejects(keyring.unwrap(decodeWrappedKey(stolenWrapped), wrapContext(victim.keyId, 'result', `result:${victim.id}`)), { detail: 'KEK_VERSION_RETIRED' });
  // The other artefact is untouched throughout.
  assert.deepEqual((await store.get(keep.id)).content, CSV('KEEP'));
});

test('destruction under legal hold is refused whole; retention lists what is past its date', async (t) => {
  let now = new Date('2026-01-01T00:00:00Z');
  const { store } = await setup(t, () => now);
  const old = await store.put({ kind: 'export', owner: 'ivan', labels: { agreement: 'agr-3' }, retainUntil: '2026-02-01T00:00:00Z', content: CSV('OLD'), mediaType: 'text/csv' });
  const held = await store.put({ kind: 'export', owner: 'ivan', labels: { agreement: 'agr-3' }, retainUntil: '2026-02-01T00:00:00Z', content: CSV('HELD'), mediaType: 'text/csv' });
  const later = await store.put({ kind: 'result', owner: 'ivan', labels: { agreement: 'agr-3' }, retainUntil: '2027-01-01T00:00:00Z', content: CSV('LATER'), mediaType: 'text/csv' });
  await store.put({ kind: 'result', owner: 'ivan', retainUntil: null, content: CSV('FOREVER'), mediaType: 'text/csv' });
  assert.deepEqual(await store.expired(), []);
  now = new Date('2026-03-01T00:00:00Z');
  assert.deepEqual((await store.expired()).map((m) => m.id).sort(), [old.id, held.id].sort());
  await store.setLegalHold(held.id, 'matter 2026-17');
  await assert.rejects(store.destroy({ labels: { agreement: 'agr-3' } }, 'agreement agr-3 terminated'), (e: any) => {
    assert.equal(e.detail, 'LEGAL_HOLD_ACTIVE');
    assert.deepEqual(e.held, [held.id]);
    return true;
  });
  // Nothing was destroyed.
  for (const id of [old.id, held.id, later.id]) assert.equal((await store.get(id)).meta.destroyedAt, null);
  await assert.rejects(store.destroy(['art_doesnotexist0000000', old.id], 'x'), { detail: 'ARTEFACT_NOT_FOUND' });
  assert.equal((await store.get(old.id)).meta.destroyedAt, null);
  // Release the hold: the whole agreement's artefacts go, with one certificate.
  await store.setLegalHold(held.id, null);
  const cert = await store.destroy({ labels: { agreement: 'agr-3' } }, 'agreement agr-3 terminated');
  assert.deepEqual(cert.artefacts.map((a) => a.id).sort(), [old.id, held.id, later.id].sort());
  assert.deepEqual(cert.selector, { filter: { labels: { agreement: 'agr-3' } } });
  assert.equal(cert.destroyedAt, '2026-03-01T00:00:00.000Z');
  // Destroying again by id is a no-op that says so.
  const again = await store.destroy([old.id], 'again');
  assert.deepEqual([again.count, again.alreadyDestroyed], [0, [old.id]]);
  assert.equal((await store.list()).length, 1);
  assert.equal((await store.list({ includeDestroyed: true })).length, 4);
});
