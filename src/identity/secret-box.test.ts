import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretBox, resolveSecretPassphrase } from './secret-box.ts';

const box = SecretBox.create('correct passphrase for tests');
const plain = Buffer.from('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');

test('a sealed secret opens for its purpose and does not contain the plaintext', () => {
  const sealed = box.seal('totp:alice', plain);
  assert.match(sealed, /^gh-sb1\.[A-Za-z0-9_-]{11}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
  assert.ok(!sealed.includes(plain.toString()) && !sealed.includes(plain.toString('base64url')));
  assert.deepEqual(box.open('totp:alice', sealed), plain);
  assert.notEqual(box.seal('totp:alice', plain), sealed, 'a fresh IV each time');
});

test('a tampered ciphertext, tag, IV or a truncated tag is detected', () => {
  const sealed = box.seal('totp:alice', plain);
  const parts = sealed.split('.');
  const flip = (s: string) => { const b = Buffer.from(s, 'base64url'); b[0]! ^= 1; return b.toString('base64url'); };
  for (const i of [2, 3, 4]) {
    const p = [...parts];
    p[i] = flip(p[i]!);
    assert.throws(() => box.open('totp:alice', p.join('.')), { detail: 'IDENTITY_SECRET_TAMPERED', status: 500 });
  }
  const truncated = [...parts];
  truncated[3] = Buffer.from(parts[3]!, 'base64url').subarray(0, 4).toString('base64url');
  assert.throws(() => box.open('totp:alice', truncated.join('.')), { detail: 'IDENTITY_SECRET_TAMPERED' });
  assert.throws(() => box.open('totp:alice', 'garbage'), { detail: 'IDENTITY_SECRET_TAMPERED' });
});

test('a sealed secret cannot be moved to another purpose (another user)', () => {
  const sealed = box.seal('totp:alice', plain);
  assert.throws(() => box.open('totp:mallory', sealed), { detail: 'IDENTITY_SECRET_TAMPERED' });
});

test('reopening with the right passphrase works; a wrong passphrase is a typed error', () => {
  const sealed = box.seal('totp:alice', plain);
  assert.deepEqual(SecretBox.open(box.params, 'correct passphrase for tests').open('totp:alice', sealed), plain);
  assert.throws(() => SecretBox.open(box.params, 'wrong passphrase'), { detail: 'IDENTITY_SECRET_KEY_WRONG', status: 500 });
  const other = SecretBox.create('another passphrase');
  assert.throws(() => other.open('totp:alice', sealed), { detail: 'IDENTITY_SECRET_KEY_WRONG' });
});

test('without a passphrase there is no key, unless the demo passphrase is allowed', () => {
  const saved = process.env.GATEHOUSE_KEY_PASSPHRASE;
  delete process.env.GATEHOUSE_KEY_PASSPHRASE;
  try {
    assert.throws(() => resolveSecretPassphrase(undefined), { detail: 'IDENTITY_SECRET_KEY_UNAVAILABLE' });
    assert.match(resolveSecretPassphrase(undefined, true), /NOT-SECRET/);
    assert.equal(resolveSecretPassphrase('given'), 'given');
  } finally {
    if (saved !== undefined) process.env.GATEHOUSE_KEY_PASSPHRASE = saved;
  }
});

test('a closed box refuses to work', () => {
  const b = SecretBox.create('to be closed');
  b.close();
  assert.throws(() => b.seal('totp:x', plain), { detail: 'IDENTITY_STORE_UNAVAILABLE' });
});
