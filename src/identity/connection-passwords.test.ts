import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionPasswordStore, scramVerifier } from './connection-passwords.ts';

test('the SCRAM-SHA-256 verifier reproduces the RFC 7677 example exchange', async () => {
  const v = scramVerifier('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
  const clientFirstBare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const clientFinalNoProof = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalNoProof}`;
  const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
  const clientSignature = createHmac('sha256', Buffer.from(v.storedKey, 'base64')).update(authMessage).digest();
  const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSignature[i]!));
  assert.equal(createHash('sha256').update(clientKey).digest('base64'), v.storedKey);
  const serverSignature = createHmac('sha256', Buffer.from(v.serverKey, 'base64')).update(authMessage).digest('base64');
  assert.equal(serverSignature, '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
});

test('a connection password is stored only as a verifier, replaces the previous one and stops at expiry or revocation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cp-'));
  let now = new Date('2026-11-22T10:00:00Z');
  const store = ConnectionPasswordStore.open(join(dir, 'cp.sqlite'), { clock: () => now });
  try {
    const t0 = Math.floor(now.getTime() / 1000);
    const first = await store.issue('rhea', { mfaAt: t0 - 30, expiresAt: t0 + 3600 });
    assert.equal(first.username, 'rhea');
    assert.ok(first.password.length >= 43);
    const v1 = (await store.verifier('rhea'))!;
    assert.deepEqual(v1.verifier, scramVerifier(first.password, Buffer.from(v1.verifier.salt, 'base64')));
    assert.deepEqual(await store.resolve(first.id), { id: first.id, principalId: 'rhea', mfaAt: t0 - 30 });

    const second = await store.issue('rhea', { mfaAt: null, expiresAt: t0 + 3600 });
    assert.equal((await store.verifier('rhea'))!.id, second.id);
    await assert.rejects(async () => store.resolve(first.id), /no longer valid/);
    assert.equal(await store.verifier('nobody'), null);

    now = new Date(now.getTime() + 3601_000);
    assert.equal(await store.verifier('rhea'), null);
    await assert.rejects(async () => store.resolve(second.id), /no longer valid/);

    const third = await store.issue('rhea', { mfaAt: null, expiresAt: Math.floor(now.getTime() / 1000) + 60 });
    assert.equal(await store.revokeAll('rhea'), 1);
    await assert.rejects(async () => store.resolve(third.id), /no longer valid/);
    await assert.rejects(async () => store.resolve('cp_forged'), /no longer valid/);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
