import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SCRYPT, IdentityError, PasswordHashInvalid, PasswordPolicyViolation, checkPasswordPolicy, hashPassword,
  needsRehash, passwordPolicyViolations, verifyPassword, verifyPasswordDecoy,
} from './password.ts';

test('a password hash is a self-describing scrypt string with a fresh salt each time', async () => {
  const a = await hashPassword('blue-cactus-harbour-42');
  const b = await hashPassword('blue-cactus-harbour-42');
  assert.match(a, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, b);
  assert.equal(await verifyPassword('blue-cactus-harbour-42', a), true);
  assert.equal(await verifyPassword('blue-cactus-harbour-43', a), false);
  assert.equal(await verifyPassword('', a), false);
});

test('passwords are compared after NFKC normalisation', async () => {
  const h = await hashPassword('ｆｕｌｌｗｉｄｔｈ-passphrase');
  assert.equal(await verifyPassword('fullwidth-passphrase', h), true);
});

test('a hash made with a lower cost needs a rehash; the default does not', async () => {
  const weak = await hashPassword('blue-cactus-harbour-42', { N: 2 ** 14, r: 8, p: 1 });
  assert.equal(needsRehash(weak), true);
  assert.equal(await verifyPassword('blue-cactus-harbour-42', weak), true);
  assert.equal(needsRehash(await hashPassword('x'.repeat(12))), false);
  assert.equal(needsRehash(await hashPassword('x'.repeat(12)), { ...DEFAULT_SCRYPT, N: 2 ** 16 }), true);
});

test('malformed or absurd stored hashes are refused with a typed error', async () => {
  for (const bad of ['', 'bcrypt$x', 'scrypt$32768$8$1$salt', 'scrypt$1048577$8$1$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43), `scrypt$${2 ** 30}$8$1$AAAAAAAAAAAAAAAAAAAAAA$${'A'.repeat(43)}`, 'scrypt$32768$8$1$AAAA$' + 'A'.repeat(43)]) {
    await assert.rejects(verifyPassword('whatever-password', bad), (e: unknown) => e instanceof PasswordHashInvalid && e.detail === 'IDENTITY_PASSWORD_HASH_INVALID' && e.status === 500);
  }
});

test('the decoy verification always fails', async () => {
  assert.equal(await verifyPasswordDecoy('anything at all'), false);
});

test('the policy wants 12 characters, counted in code points', () => {
  assert.deepEqual(passwordPolicyViolations('short-pw1'), ['shorter than 12 characters']);
  assert.deepEqual(passwordPolicyViolations('🦊🐻🦉🐙🦊🐻🦉🐙🦊🐻🦉x'), []);
  assert.deepEqual(passwordPolicyViolations('🦊🐻🦉🐙🦊🐻'), ['shorter than 12 characters']);
  assert.deepEqual(passwordPolicyViolations('tidal-orbit-velvet'), []);
  assert.ok(passwordPolicyViolations('a'.repeat(1025)).includes('longer than 1024 characters'));
});

test('common passwords, their decorated stems, repeats and sequences are rejected', () => {
  for (const p of ['password1234', 'Password2024!', '!!letmein!!2024', '123456789012', 'qwertyuiop12', 'aaaaaaaaaaaa', 'abcdefghijklm', 'monkeymonkeymonkey', '123qwe123qwe', 'correcthorsebatterystaple']) {
    assert.notDeepEqual(passwordPolicyViolations(p), [], p);
  }
  assert.throws(() => checkPasswordPolicy('Password2024!'), (e: unknown) => e instanceof PasswordPolicyViolation && e instanceof IdentityError && e.detail === 'IDENTITY_PASSWORD_POLICY' && e.status === 400 && !e.message.includes('Password2024'));
});

test('a password containing the account name is rejected', () => {
  assert.deepEqual(passwordPolicyViolations('alice-rules-the-world', ['user:alice', 'alice']), ['contains the account name']);
  assert.deepEqual(passwordPolicyViolations('tidal-orbit-velvet', ['user:alice', 'alice']), []);
});
