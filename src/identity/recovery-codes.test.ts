import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RECOVERY_CODE_COUNT, generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.ts';

test('ten distinct codes of 80 bits in four groups of Crockford Base32', () => {
  const codes = generateRecoveryCodes();
  assert.equal(codes.length, RECOVERY_CODE_COUNT);
  assert.equal(new Set(codes).size, 10);
  for (const c of codes) assert.match(c, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
});

test('typed codes are normalised: case, spaces, dashes and look-alike letters', () => {
  assert.equal(normalizeRecoveryCode('7kq2 m9xd-4tpa h3wz'), '7KQ2M9XD4TPAH3WZ');
  assert.equal(normalizeRecoveryCode('OIL0-0000-0000-0000'), '0110000000000000');
  assert.equal(normalizeRecoveryCode('7KQ2-M9XD-4TPA-H3W'), null);
  assert.equal(normalizeRecoveryCode('7KQ2-M9XD-4TPA-H3WU'), null);
  assert.equal(normalizeRecoveryCode('123456'), null);
});

test('the stored hash is bound to the principal and to the canonical code', () => {
  const [code] = generateRecoveryCodes(1) as [string];
  const h = hashRecoveryCode('alice', code)!;
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.equal(hashRecoveryCode('alice', code.toLowerCase().replaceAll('-', ' ')), h);
  assert.notEqual(hashRecoveryCode('bob', code), h);
  assert.equal(hashRecoveryCode('alice', 'not a code'), null);
});
