import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { seal, unseal } from './keys.ts';

test('a sealed secret opens with its key and purpose', () => {
  const kek = randomBytes(32);
  assert.deepEqual(unseal(kek, 'p', seal(kek, 'p', Buffer.from('secret'))), Buffer.from('secret'));
});

test('a truncated GCM tag is refused, however many bytes remain', () => {
  const kek = randomBytes(32);
  const s = seal(kek, 'p', Buffer.from('secret'));
  const tag = Buffer.from(s.tag, 'base64');
  for (const n of [4, 8, 12, 15]) {
    assert.throws(() => unseal(kek, 'p', { ...s, tag: tag.subarray(0, n).toString('base64') }));
  }
});

test('another purpose or a flipped ciphertext bit is refused', () => {
  const kek = randomBytes(32);
  const s = seal(kek, 'p', Buffer.from('secret'));
  assert.throws(() => unseal(kek, 'q', s));
  const ct = Buffer.from(s.ct, 'base64');
  ct[0]! ^= 1;
  assert.throws(() => unseal(kek, 'p', { ...s, ct: ct.toString('base64') }));
});

test('key files made by the synchronous openers open with the asynchronous ones, and a wrong passphrase is refused by both', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { sign, verify, createPublicKey } = await import('node:crypto');
  const { LogKeyring, PseudonymKeyring, loadOrCreateSealedEd25519, loadOrCreateSealedEd25519Async } = await import('./keys.ts');
  const dir = mkdtempSync(join(tmpdir(), 'gh-keys-'));
  try {
    const log = LogKeyring.open(join(dir, 'keys'), 'example.org/log', 'pass-1');
    const pseud = PseudonymKeyring.open(join(dir, 'pseud'), 'pass-1');
    const witness = loadOrCreateSealedEd25519(join(dir, 'witness.json'), 'pass-1', 'witness-key');
    const p = pseud.pseudonym('alice', '2026-12');
    const [log2, pseud2, witness2] = await Promise.all([
      LogKeyring.openAsync(join(dir, 'keys'), 'example.org/log', 'pass-1'),
      PseudonymKeyring.openAsync(join(dir, 'pseud'), 'pass-1'),
      loadOrCreateSealedEd25519Async(join(dir, 'witness.json'), 'pass-1', 'witness-key'),
    ]);
    assert.deepEqual(log2.history(), log.history());
    assert.equal(pseud2.pseudonym('alice', '2026-12'), p);
    const msg = Buffer.from('checkpoint');
    assert.ok(verify(null, msg, createPublicKey(witness), sign(null, msg, witness2)));
    await assert.rejects(LogKeyring.openAsync(join(dir, 'keys'), 'example.org/log', 'wrong'), /wrong passphrase or damaged key file/);
    await assert.rejects(loadOrCreateSealedEd25519Async(join(dir, 'witness.json'), 'wrong', 'witness-key'), /wrong passphrase or damaged key file/);
    // A file created asynchronously opens synchronously.
    const fresh = await PseudonymKeyring.openAsync(join(dir, 'pseud-new'), 'pass-2');
    const q = fresh.pseudonym('bob', '2026-12');
    assert.equal(PseudonymKeyring.open(join(dir, 'pseud-new'), 'pass-2').pseudonym('bob', '2026-12'), q);
    for (const k of [log, log2, pseud, pseud2, fresh]) k.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
