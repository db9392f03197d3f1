import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { HAS_ARGON2, LocalKeyring, decodeWrappedKey, encodeWrappedKey } from './keyring.ts';

const PASS = 'correct horse battery staple';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'gh-keyring-'));
}

test('a new keyring is a 0600 file protected by argon2id whose KEK wraps and unwraps a data key bound to its subject', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keyring.json');
  const kr = await LocalKeyring.create(path, PASS);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const file = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(file.kdf.alg, HAS_ARGON2 ? 'argon2id' : 'scrypt');
  if (HAS_ARGON2) assert.ok(file.kdf.memoryKiB >= 64 * 1024);
  assert.ok(!readFileSync(path, 'utf8').includes(PASS));
  const dek = randomBytes(32);
  const w = await kr.wrap(dek, 'dataset:claims');
  assert.equal(w.kekVersion, 'v1');
  assert.deepEqual(await kr.unwrap(w, 'dataset:claims'), dek);
  // Moved to another subject: authentication fails.
  await assert.rejects(kr.unwrap(w, 'dataset:patients'), { detail: 'WRAPPED_KEY_INVALID' });
  // Encoded form round-trips.
  assert.deepEqual(decodeWrappedKey(encodeWrappedKey(w)), w);
  kr.close();
  const again = await LocalKeyring.open(path, PASS);
  assert.deepEqual(await again.unwrap(w, 'dataset:claims'), dek);
  again.close();
});

test('a wrong passphrase is reported as a wrong passphrase, not as damage', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keyring.json');
  (await LocalKeyring.create(path, PASS)).close();
  await assert.rejects(LocalKeyring.open(path, 'Correct horse battery staple'), (e: any) => {
    assert.equal(e.detail, 'KEYRING_PASSPHRASE_WRONG');
    assert.ok(!e.message.includes('Correct horse'), 'the passphrase never appears in an error');
    assert.match(e.hint, /passphrase/);
    return true;
  });
});

test('a truncated, emptied or edited keyring file is reported as damaged, with a hint to restore it', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keyring.json');
  const kr = await LocalKeyring.create(path, PASS);
  await kr.rotate();
  kr.close();
  const good = readFileSync(path, 'utf8');
  const cases: [string, string][] = [
    ['truncated', good.slice(0, Math.floor(good.length / 2))],
    ['empty', ''],
    ['not a keyring', JSON.stringify({ hello: 'world' })],
  ];
  // An attacker who can write the file switches the active version back to v1 (the MAC catches it).
  const edited = JSON.parse(good);
  edited.active = 'v1';
  cases.push(['active version switched', JSON.stringify(edited)]);
  // ... or deletes the newest KEK.
  const dropped = JSON.parse(good);
  dropped.keks = dropped.keks.slice(0, 1);
  dropped.active = 'v1';
  cases.push(['a version deleted', JSON.stringify(dropped)]);
  // ... or asks for an absurd amount of KDF memory.
  const greedy = JSON.parse(good);
  if (greedy.kdf.alg === 'argon2id') greedy.kdf.memoryKiB = 2 ** 40; else greedy.kdf.N = 2 ** 40;
  cases.push(['absurd KDF parameters', JSON.stringify(greedy)]);
  // ... or flips one byte of a sealed KEK.
  const flipped = JSON.parse(good);
  const ct = Buffer.from(flipped.keks[0].sealed.ciphertext, 'base64url');
  ct[0]! ^= 1;
  flipped.keks[0].sealed.ciphertext = ct.toString('base64url');
  cases.push(['a sealed KEK altered', JSON.stringify(flipped)]);
  for (const [label, text] of cases) {
    writeFileSync(path, text);
    await assert.rejects(LocalKeyring.open(path, PASS), (e: any) => {
      assert.equal(e.detail, 'KEYRING_CORRUPT', label);
      assert.match(e.hint, /backup/);
      return true;
    }, label);
  }
  writeFileSync(path, good);
  (await LocalKeyring.open(path, PASS)).close();
});

test('a missing keyring and an existing one are distinct clear errors, and openOrCreate does the right thing', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'sub', 'keyring.json');
  await assert.rejects(LocalKeyring.open(path, PASS), { detail: 'KEYRING_NOT_FOUND' });
  const a = await LocalKeyring.openOrCreate(path, PASS);
  await assert.rejects(LocalKeyring.create(path, PASS), { detail: 'KEYRING_EXISTS' });
  const b = await LocalKeyring.openOrCreate(path, PASS);
  assert.equal(a.id, b.id);
  a.close();
  b.close();
});

test('rotation makes a new KEK active while old versions keep unwrapping; a retired version refuses with its own error', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keyring.json');
  const kr = await LocalKeyring.create(path, PASS);
  const dek = randomBytes(32);
  const old = await kr.wrap(dek, 'ctx');
  assert.equal(await kr.rotate(), 'v2');
  assert.equal(kr.activeVersion(), 'v2');
  const fresh = await kr.wrap(dek, 'ctx');
  assert.equal(fresh.kekVersion, 'v2');
  assert.deepEqual(await kr.unwrap(old, 'ctx'), dek);
  await assert.rejects(kr.retire('v2'), { detail: 'KEY_INPUT_INVALID' });
  await kr.retire('v1');
  await assert.rejects(kr.unwrap(old, 'ctx'), { detail: 'KEK_VERSION_RETIRED' });
  await assert.rejects(kr.unwrap({ ...old, kekVersion: 'v9' }, 'ctx'), { detail: 'KEK_VERSION_UNKNOWN' });
  await assert.rejects(kr.unwrap({ ...old, kekId: 'kr_someoneelse000' }, 'ctx'), { detail: 'KEYRING_MISMATCH' });
  // The retired KEK's material is gone from the file.
  const file = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(file.keks.find((k: any) => k.version === 'v1').sealed, null);
  assert.deepEqual(kr.versions().map((v) => [v.version, v.active, v.retiredAt !== null]), [['v1', false, true], ['v2', true, false]]);
  kr.close();
});

test('a keyring opened by another process sees a version rotated in after it opened', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keyring.json');
  const a = await LocalKeyring.create(path, PASS);
  const b = await LocalKeyring.open(path, PASS);
  await a.rotate();
  const w = await a.wrap(Buffer.alloc(32, 1), 'ctx');
  assert.deepEqual(await b.unwrap(w, 'ctx'), Buffer.alloc(32, 1));
  a.close();
  b.close();
});

test('changing the passphrase keeps every wrapped key readable and locks out the old passphrase', async (t) => {
  const dir = tmp();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keyring.json');
  const kr = await LocalKeyring.create(path, PASS);
  const w = await kr.wrap(Buffer.alloc(32, 7), 'ctx');
  await kr.changePassphrase('a new and longer passphrase');
  kr.close();
  await assert.rejects(LocalKeyring.open(path, PASS), { detail: 'KEYRING_PASSPHRASE_WRONG' });
  const again = await LocalKeyring.open(path, 'a new and longer passphrase');
  assert.deepEqual(await again.unwrap(w, 'ctx'), Buffer.alloc(32, 7));
  again.close();
});
