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
