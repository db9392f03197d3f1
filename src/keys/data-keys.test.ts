import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DataKeyStore } from './data-keys.ts';
import { LocalKeyring, decodeWrappedKey } from './keyring.ts';

const PASS = 'data-key test passphrase';

async function setup(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-datakeys-'));
  const keyring = await LocalKeyring.create(join(dir, 'keyring.json'), PASS);
  const store = DataKeyStore.open(join(dir, 'data-keys.sqlite'), keyring);
  t.after(() => { store.close(); keyring.close(); rmSync(dir, { recursive: true, force: true }); });
  return { dir, keyring, store, dbPath: join(dir, 'data-keys.sqlite') };
}

function storedBytes(dbPath: string): Buffer {
  return Buffer.concat([dbPath, `${dbPath}-wal`].filter(existsSync).map((p) => readFileSync(p)));
}

function wrappedOf(dbPath: string, keyId: string): string {
  const db = new DatabaseSync(dbPath);
  try {
    return (db.prepare('SELECT wrapped FROM data_keys WHERE key_id = ?').get(keyId) as { wrapped: string }).wrapped;
  } finally { db.close(); }
}

test('each subject gets its own random AES-256 key, stored only wrapped, listed by kind and label', async (t) => {
  const { store, dbPath } = await setup(t);
  const a = await store.create({ subject: 'dataset:claims', kind: 'dataset', labels: { dataset: 'claims' } });
  const b = await store.create({ subject: 'result:r1', kind: 'result', labels: { agreement: 'agr-7', dataset: 'claims' } });
  const ka = await store.unwrap(a.keyId);
  const kb = await store.unwrap(b.keyId);
  assert.equal(ka.length, 32);
  assert.notDeepEqual(ka, kb);
  // The plaintext key is nowhere in the store's files.
  assert.equal(storedBytes(dbPath).includes(ka), false);
  assert.deepEqual((await store.list({ kind: 'result' })).map((k) => k.keyId), [b.keyId]);
  assert.deepEqual((await store.list({ label: { dataset: 'claims' } })).map((k) => k.keyId).sort(), [a.keyId, b.keyId].sort());
  assert.deepEqual((await store.list({ label: { agreement: 'agr-7' } })).map((k) => k.subject), ['result:r1']);
  await assert.rejects(store.create({ subject: '', kind: 'dataset' }), { detail: 'KEY_INPUT_INVALID' });
  await assert.rejects(store.create({ subject: 'x', kind: 'bogus' as 'dataset' }), { detail: 'KEY_INPUT_INVALID' });
  await assert.rejects(store.unwrap('dk_nope'), { detail: 'DATA_KEY_NOT_FOUND' });
});

test('a wrapped key copied onto another row (an attacker editing the store) does not unwrap', async (t) => {
  const { store, dbPath, keyring } = await setup(t);
  const victim = await store.create({ subject: 'result:victim', kind: 'result' });
  const mine = await store.create({ subject: 'result:mine', kind: 'result' });
  const fresh = DataKeyStore.open(dbPath, keyring); // no cache
  t.after(() => fresh.close());
  const db = new DatabaseSync(dbPath);
  db.prepare('UPDATE data_keys SET wrapped = ? WHERE key_id = ?').run(wrappedOf(dbPath, victim.keyId), mine.keyId);
  db.close();
  await assert.rejects(fresh.unwrap(mine.keyId), { detail: 'WRAPPED_KEY_INVALID' });
});

test('destroying a key deletes its wrapped bytes from the database file and the WAL, leaves a tombstone, and every store refuses it at once', async (t) => {
  const { store, dbPath, keyring } = await setup(t);
  const other = DataKeyStore.open(dbPath, keyring); // "another process" with the key cached
  t.after(() => other.close());
  const k = await store.create({ subject: 'export:e1', kind: 'export', labels: { agreement: 'agr-1' } });
  await store.create({ subject: 'export:e2', kind: 'export' });
  assert.equal((await other.unwrap(k.keyId)).length, 32);
  const wrapped = wrappedOf(dbPath, k.keyId);
  const ct = decodeWrappedKey(wrapped).ciphertext;
  assert.ok(storedBytes(dbPath).includes(Buffer.from(ct)), 'before: the wrapped key is on disk');
  const rec = await store.destroy(k.keyId, 'agreement agr-1 terminated');
  assert.equal(rec.wrappedKeyDigest, createHash('sha256').update(wrapped).digest('hex'));
  assert.deepEqual([rec.subject, rec.kind, rec.labels, rec.reason], ['export:e1', 'export', { agreement: 'agr-1' }, 'agreement agr-1 terminated']);
  const after = storedBytes(dbPath);
  assert.equal(after.includes(Buffer.from(ct)), false, 'after: no copy of the wrapped key in the db or WAL');
  assert.equal(after.includes(Buffer.from(ct.slice(0, 16))), false);
  await assert.rejects(store.unwrap(k.keyId), (e: any) => e.detail === 'DATA_KEY_DESTROYED' && e.destroyedAt === rec.destroyedAt);
  await assert.rejects(other.unwrap(k.keyId), { detail: 'DATA_KEY_DESTROYED' });
  await assert.rejects(async () => await store.destroy(k.keyId, 'again'), { detail: 'DATA_KEY_DESTROYED' });
  await assert.rejects(async () => await store.destroy('dk_unknown', 'x'), { detail: 'DATA_KEY_NOT_FOUND' });
  assert.deepEqual(await store.destruction(k.keyId), rec);
  const s = await store.status();
  assert.deepEqual([s.live, s.destroyed, s.byKind], [1, 1, { export: 1 }]);
});

test('after a KEK rotation, rewrapAll moves every key to the new version while readers keep working, then the old version is erased', async (t) => {
  const { store, keyring, dbPath } = await setup(t);
  const ids: string[] = [];
  const keys = new Map<string, Buffer>();
  for (let i = 0; i < 250; i++) {
    const { keyId } = await store.create({ subject: `result:${i}`, kind: 'result' });
    ids.push(keyId);
    keys.set(keyId, await store.unwrap(keyId));
  }
  const oldWrapped = wrappedOf(dbPath, ids[0]!);
  await keyring.rotate();
  assert.deepEqual((await store.status()).byKekVersion, { v1: 250 });
  const reader = DataKeyStore.open(dbPath, keyring, { cacheSize: 0 });
  t.after(() => reader.close());
  let reads = 0;
  let stop = false;
  const readLoop = (async () => {
    while (!stop) {
      const id = ids[reads % ids.length]!;
      assert.deepEqual(await reader.unwrap(id), keys.get(id));
      reads++;
      await new Promise<void>((r) => setImmediate(r));
    }
  })();
  const report = await store.rewrapAll({ batchSize: 20, retire: true });
  stop = true;
  await readLoop;
  assert.equal(report.rewrapped, 250);
  assert.deepEqual(report.retired, ['v1']);
  assert.ok(reads > 10, `readers ran during the rewrap (${reads} reads)`);
  assert.deepEqual((await store.status()).byKekVersion, { v2: 250 });
  for (const id of ids) assert.deepEqual(await reader.unwrap(id), keys.get(id));
  // A copy of the store from before the rotation (a backup) is now useless.
  await assert.rejects(keyring.unwrap(decodeWrappedKey(oldWrapped), `data-key\n${ids[0]}\nresult\nresult:0`), { detail: 'KEK_VERSION_RETIRED' });
});
