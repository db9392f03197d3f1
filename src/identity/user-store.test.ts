import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { UserStore, type UserStoreOptions } from './user-store.ts';
import { generateTotp } from './totp.ts';
import { DEFAULT_SCRYPT, IdentityError } from './password.ts';

const PASSPHRASE = 'user-store test passphrase';
const PASSWORD = 'tidal-orbit-velvet-9';
const T0 = Date.parse('2030-01-01T00:00:10Z');
/**
 * A low scrypt cost for every store but the timing test's: these tests are about lockout,
 * MFA and sealing, not the hash's cost, and at the production cost (DEFAULT_SCRYPT, ~0.1 s a
 * hash) the file spent most of its CPU hashing. The same code hashes and verifies either way.
 */
const TEST_SCRYPT = { N: 2 ** 10, r: 8, p: 1 } as const;

async function fixture(options: Partial<UserStoreOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-users-'));
  const path = join(dir, 'users.db');
  const clock = { now: T0 };
  const open = (extra: Partial<UserStoreOptions> = {}) => UserStore.open(path, { passphrase: PASSPHRASE, clock: () => new Date(clock.now), scrypt: TEST_SCRYPT, ...options, ...extra });
  const store = await open();
  return { dir, path, clock, store, open };
}

/** Resolves to the IdentityError a promise rejects with. */
async function refusal(p: Promise<unknown>): Promise<IdentityError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof IdentityError, `expected an IdentityError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a refusal');
}

async function enrolled(f: Awaited<ReturnType<typeof fixture>>, id = 'contractor:ana') {
  await f.store.createUser(id, PASSWORD, { by: 'admin:olu' });
  const { secret } = await f.store.beginTotpEnrolment(id);
  const { recoveryCodes } = await f.store.confirmTotpEnrolment(id, await generateTotp(secret, { now: f.clock.now }));
  return { id, secret, recoveryCodes };
}

test('a user is created, logs in with the password, and every step returns an audit description', async () => {
  const f = await fixture();
  const created = await f.store.createUser('analyst:bo', PASSWORD, { by: 'admin:olu' });
  assert.deepEqual(created, { action: 'identity.user.create', outcome: 'success', principalId: 'analyst:bo', at: new Date(T0).toISOString(), actor: 'admin:olu' });
  const ok = await f.store.verifyPassword('analyst:bo', PASSWORD, { address: '192.0.2.1' });
  assert.equal(ok.mfaEnrolled, false);
  assert.equal(ok.audit.outcome, 'success');
  const st = await f.store.status('analyst:bo');
  assert.equal(st?.lastLoginAt, new Date(T0).toISOString());
  assert.equal(await f.store.status('nobody'), null);
  assert.equal((await refusal(f.store.createUser('analyst:bo', PASSWORD))).detail, 'IDENTITY_USER_EXISTS');
  assert.equal((await refusal(f.store.createUser('analyst:cy', 'password2024'))).detail, 'IDENTITY_PASSWORD_POLICY');
  await f.store.setPassword('analyst:bo', 'new-tidal-orbit-velvet', { by: 'admin:olu' });
  assert.equal((await refusal(f.store.verifyPassword('analyst:bo', PASSWORD))).detail, 'IDENTITY_CREDENTIALS_INVALID');
  await f.store.close();
});

test('an unknown user is indistinguishable from a wrong password: same error, similar time, same lockout', async () => {
  // The production cost: the times compared are those a real login takes.
  const f = await fixture({ scrypt: DEFAULT_SCRYPT });
  await f.store.createUser('analyst:bo', PASSWORD);
  const time = async (id: string) => {
    const t = performance.now();
    const e = await refusal(f.store.verifyPassword(id, 'wrong-password-123'));
    return { e, ms: performance.now() - t };
  };
  // Interleaved, so load on the machine falls on both alike; medians, so one stall does not decide.
  // (3 failures each stay under the lockout threshold.)
  const known: { e: IdentityError; ms: number }[] = [];
  const unknown: { e: IdentityError; ms: number }[] = [];
  for (let i = 0; i < 3; i++) { known.push(await time('analyst:bo')); unknown.push(await time('analyst:zz')); }
  for (const { e } of [...known, ...unknown]) {
    assert.deepEqual(e.toJSON(), { code: 'AUTH_INVALID', message: 'invalid principal or password', hint: null, reasons: ['IDENTITY_CREDENTIALS_INVALID'] });
    assert.equal(e.status, 401);
  }
  const median = (xs: { ms: number }[]) => [...xs].sort((a, b) => a.ms - b.ms)[Math.floor(xs.length / 2)]!.ms;
  const ratio = median(unknown) / median(known);
  assert.ok(ratio > 0.5 && ratio < 2, `unknown/known time ratio ${ratio.toFixed(2)}`);
  // The audit (operators only) knows the difference.
  assert.equal(known[0]!.e.audit?.reason, 'wrong_password');
  assert.equal(unknown[0]!.e.audit?.reason, 'unknown_account');
  // Unknown accounts lock exactly like real ones.
  for (let i = 0; i < 2; i++) { await time('analyst:bo'); await time('analyst:zz'); }
  const a = await refusal(f.store.verifyPassword('analyst:bo', PASSWORD));
  const b = await refusal(f.store.verifyPassword('analyst:zz', PASSWORD));
  assert.deepEqual(a.toJSON(), b.toJSON());
  assert.equal(a.detail, 'IDENTITY_ACCOUNT_LOCKED');
  await f.store.close();
});

test('a brute-force burst locks the account and the lock backs off exponentially; a success resets it', async () => {
  const f = await fixture();
  await f.store.createUser('analyst:bo', PASSWORD);
  for (let i = 1; i <= 5; i++) {
    const e = await refusal(f.store.verifyPassword('analyst:bo', `guess-number-${i}-xx`));
    assert.equal(e.detail, 'IDENTITY_CREDENTIALS_INVALID');
    assert.equal(e.audit?.details?.failures, i);
  }
  // Locked: even the right password is refused, without being checked, for a minute.
  const locked = await refusal(f.store.verifyPassword('analyst:bo', PASSWORD));
  assert.equal(locked.detail, 'IDENTITY_ACCOUNT_LOCKED');
  assert.equal(locked.status, 429);
  assert.equal(locked.retryAfterSeconds, 60);
  assert.equal((await f.store.status('analyst:bo'))?.lockedUntil, new Date(T0 + 60_000).toISOString());
  f.clock.now += 60_000;
  await refusal(f.store.verifyPassword('analyst:bo', 'guess-number-6-xx'));
  assert.equal((await refusal(f.store.verifyPassword('analyst:bo', PASSWORD))).retryAfterSeconds, 120);
  f.clock.now += 120_000;
  await f.store.verifyPassword('analyst:bo', PASSWORD);
  const st = await f.store.status('analyst:bo');
  assert.equal(st?.failedAttempts, 0);
  assert.equal(st?.lockedUntil, null);
  await f.store.close();
});

test('one address trying many accounts is rate-limited', async () => {
  const f = await fixture({ rateLimit: { burst: 3, perMinute: 1 } });
  for (const id of ['a:1', 'a:2', 'a:3']) await refusal(f.store.verifyPassword(id, 'spray-password-2024', { address: '198.51.100.9' }));
  const e = await refusal(f.store.verifyPassword('a:4', 'spray-password-2024', { address: '198.51.100.9' }));
  assert.equal(e.detail, 'IDENTITY_RATE_LIMITED');
  assert.equal(e.retryAfterSeconds, 60);
  assert.equal(e.audit?.details?.address, '198.51.100.9');
  assert.equal((await refusal(f.store.verifyPassword('a:4', 'spray-password-2024', { address: '198.51.100.10' }))).detail, 'IDENTITY_CREDENTIALS_INVALID');
  await f.store.close();
});

test('a disabled user is refused even with the right password, and enabled again', async () => {
  const f = await fixture();
  await f.store.createUser('analyst:bo', PASSWORD);
  assert.equal((await f.store.disableUser('analyst:bo', { by: 'admin:olu' })).action, 'identity.user.disable');
  const e = await refusal(f.store.verifyPassword('analyst:bo', PASSWORD));
  assert.equal(e.detail, 'IDENTITY_ACCOUNT_DISABLED');
  assert.equal((await refusal(f.store.verifyPassword('analyst:bo', 'wrong-password-123'))).detail, 'IDENTITY_CREDENTIALS_INVALID');
  await f.store.enableUser('analyst:bo', { by: 'admin:olu' });
  await f.store.verifyPassword('analyst:bo', PASSWORD);
  assert.equal((await refusal(f.store.disableUser('nobody', { by: 'admin:olu' }))).detail, 'IDENTITY_USER_NOT_FOUND');
  await f.store.close();
});

test('TOTP enrolment is inactive until confirmed; the confirming code cannot be replayed; each step is accepted once', async () => {
  const f = await fixture();
  await f.store.createUser('contractor:ana', PASSWORD);
  const { secret, otpauthUri } = await f.store.beginTotpEnrolment('contractor:ana');
  assert.match(otpauthUri, /^otpauth:\/\/totp\/Gatehouse:contractor%3Aana\?|^otpauth:\/\/totp\/Gatehouse:contractor:ana\?/);
  assert.equal((await f.store.status('contractor:ana'))?.mfaEnrolmentPending, true);
  const code = await generateTotp(secret, { now: f.clock.now });
  assert.equal((await refusal(f.store.verifySecondFactor('contractor:ana', code))).detail, 'IDENTITY_MFA_NOT_ENROLLED');
  assert.equal((await f.store.verifyPassword('contractor:ana', PASSWORD)).mfaEnrolled, false);
  const wrong = code === '000000' ? '111111' : '000000';
  assert.equal((await refusal(f.store.confirmTotpEnrolment('contractor:ana', wrong))).detail, 'IDENTITY_MFA_CODE_INVALID');
  const { recoveryCodes, audit } = await f.store.confirmTotpEnrolment('contractor:ana', code);
  assert.equal(recoveryCodes.length, 10);
  assert.ok(!JSON.stringify(audit).includes(secret) && !JSON.stringify(audit).includes(recoveryCodes[0]!));
  assert.equal((await f.store.verifyPassword('contractor:ana', PASSWORD)).mfaEnrolled, true);
  // The code used to confirm is spent.
  const replay = await refusal(f.store.verifySecondFactor('contractor:ana', code));
  assert.equal(replay.detail, 'IDENTITY_MFA_CODE_INVALID');
  assert.equal(replay.audit?.reason, 'totp_replayed');
  // The next step's code works once.
  f.clock.now += 30_000;
  const next = await generateTotp(secret, { now: f.clock.now });
  assert.equal((await f.store.verifySecondFactor('contractor:ana', next)).method, 'totp');
  assert.equal((await refusal(f.store.verifySecondFactor('contractor:ana', next))).audit?.reason, 'totp_replayed');
  // A code two steps ahead is outside the window.
  const far = await generateTotp(secret, { now: f.clock.now + 60_000 });
  assert.equal((await refusal(f.store.verifySecondFactor('contractor:ana', far))).audit?.reason, 'totp_mismatch');
  assert.equal((await refusal(f.store.beginTotpEnrolment('contractor:ana'))).detail, 'IDENTITY_MFA_ALREADY_ENROLLED');
  await f.store.close();
});

test('a TOTP enrolment not confirmed in time expires', async () => {
  const f = await fixture();
  await f.store.createUser('contractor:ana', PASSWORD);
  const { secret } = await f.store.beginTotpEnrolment('contractor:ana');
  f.clock.now += 11 * 60_000;
  const code = await generateTotp(secret, { now: f.clock.now });
  assert.equal((await refusal(f.store.confirmTotpEnrolment('contractor:ana', code))).detail, 'IDENTITY_MFA_ENROLMENT_NOT_PENDING');
  await f.store.close();
});

test('recovery codes work once each, in any typed form', async () => {
  const f = await fixture();
  const { id, recoveryCodes } = await enrolled(f);
  const first = await f.store.verifySecondFactor(id, recoveryCodes[0]!.toLowerCase().replaceAll('-', ' '));
  assert.equal(first.method, 'recovery_code');
  assert.equal(first.recoveryCodesLeft, 9);
  const again = await refusal(f.store.verifySecondFactor(id, recoveryCodes[0]!));
  assert.equal(again.detail, 'IDENTITY_MFA_CODE_INVALID');
  assert.equal(again.audit?.reason, 'recovery_code_used');
  assert.equal((await refusal(f.store.verifySecondFactor(id, 'AAAA-BBBB-CCCC-DDDD'))).audit?.reason, 'recovery_code_unknown');
  assert.equal((await f.store.verifySecondFactor(id, recoveryCodes[1]!)).recoveryCodesLeft, 8);
  await f.store.close();
});

test('second-factor failures lock the account, and a correct password does not reset them', async () => {
  const f = await fixture();
  const { id, secret } = await enrolled(f);
  const good = await generateTotp(secret, { now: f.clock.now + 30_000 });
  const bad = String((Number(good) + 1) % 1_000_000).padStart(6, '0');
  for (let i = 0; i < 3; i++) await refusal(f.store.verifySecondFactor(id, bad));
  await f.store.verifyPassword(id, PASSWORD);
  for (let i = 0; i < 2; i++) await refusal(f.store.verifySecondFactor(id, bad));
  const e = await refusal(f.store.verifySecondFactor(id, good));
  assert.equal(e.detail, 'IDENTITY_ACCOUNT_LOCKED');
  await f.store.close();
});

test('concurrent verifications of one TOTP code accept it exactly once (one store, and two stores on one file)', async () => {
  const f = await fixture();
  const { id, secret } = await enrolled(f);
  f.clock.now += 30_000;
  const code1 = await generateTotp(secret, { now: f.clock.now });
  const same = await Promise.allSettled(Array.from({ length: 8 }, () => f.store.verifySecondFactor(id, code1)));
  assert.equal(same.filter((r) => r.status === 'fulfilled').length, 1);
  // The seven refused replays count as failures and locked the account: wait it out.
  assert.equal((await f.store.status(id))?.failedAttempts, 5);
  const other = await f.open();
  f.clock.now += 5 * 60_000;
  const code2 = await generateTotp(secret, { now: f.clock.now });
  const both = await Promise.allSettled([f.store, other, f.store, other].map((s) => s.verifySecondFactor(id, code2)));
  assert.equal(both.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of both) if (r.status === 'rejected') assert.equal((r.reason as IdentityError).detail, 'IDENTITY_MFA_CODE_INVALID');
  await other.close();
  await f.store.close();
});

test('concurrent uses of one recovery code succeed once', async () => {
  const f = await fixture();
  const { id, recoveryCodes } = await enrolled(f);
  const other = await f.open();
  const rs = await Promise.allSettled([f.store, other, f.store, other].map((s) => s.verifySecondFactor(id, recoveryCodes[3]!)));
  assert.equal(rs.filter((r) => r.status === 'fulfilled').length, 1);
  await other.close();
  await f.store.close();
});

test('an MFA reset needs a second administrator: self-requests, self-approval and user approval are refused', async () => {
  const f = await fixture();
  const { id, secret } = await enrolled(f);
  assert.equal((await refusal(f.store.approveMfaReset(id, 'admin:kim'))).detail, 'IDENTITY_MFA_RESET_NOT_REQUESTED');
  const self = await refusal(f.store.requestMfaReset(id, id));
  assert.equal(self.detail, 'IDENTITY_MFA_RESET_FORBIDDEN');
  assert.equal(self.status, 403);
  const req = await f.store.requestMfaReset(id, 'admin:olu');
  assert.equal(req.actor, 'admin:olu');
  assert.equal((await f.store.status(id))?.mfaResetRequest?.requestedBy, 'admin:olu');
  const selfApproved = await refusal(f.store.approveMfaReset(id, 'admin:olu'));
  assert.equal(selfApproved.detail, 'IDENTITY_MFA_RESET_FORBIDDEN');
  assert.equal(selfApproved.audit?.reason, 'requester_approval');
  assert.equal((await refusal(f.store.approveMfaReset(id, id))).audit?.reason, 'self_approval');
  assert.equal((await f.store.status(id))?.mfaEnrolled, true, 'nothing changed');
  const approved = await f.store.approveMfaReset(id, 'admin:kim');
  assert.deepEqual(approved.details, { requestedBy: 'admin:olu' });
  const st = await f.store.status(id);
  assert.equal(st?.mfaEnrolled, false);
  assert.equal(st?.recoveryCodesLeft, 0);
  assert.equal(st?.mfaResetRequest, null);
  const code = await generateTotp(secret, { now: f.clock.now + 30_000 });
  assert.equal((await refusal(f.store.verifySecondFactor(id, code))).detail, 'IDENTITY_MFA_NOT_ENROLLED');
  // The user enrols again with a new secret.
  const again = await f.store.beginTotpEnrolment(id);
  assert.notEqual(again.secret, secret);
  await f.store.close();
});

test('an MFA reset request expires after a day', async () => {
  const f = await fixture();
  const { id } = await enrolled(f);
  await f.store.requestMfaReset(id, 'admin:olu');
  f.clock.now += 24 * 3_600_000;
  assert.equal((await refusal(f.store.approveMfaReset(id, 'admin:kim'))).detail, 'IDENTITY_MFA_RESET_NOT_REQUESTED');
  await f.store.close();
});

test('TOTP secrets are sealed on disk; tampering is detected; a wrong passphrase is a typed error', async () => {
  const f = await fixture();
  const { id, secret } = await enrolled(f);
  const pending = await (async () => { await f.store.createUser('contractor:eve', PASSWORD); return (await f.store.beginTotpEnrolment('contractor:eve')).secret; })();
  for (const file of [f.path, `${f.path}-wal`]) {
    if (!existsSync(file)) continue;
    const bytes = readFileSync(file);
    for (const s of [secret, pending]) {
      assert.ok(!bytes.includes(Buffer.from(s)), `${s} in ${file}`);
      assert.ok(!bytes.includes(Buffer.from(s).toString('base64')), `${s} (base64) in ${file}`);
    }
  }
  await f.store.close();
  await assert.rejects(f.open({ passphrase: 'not the passphrase' }), { detail: 'IDENTITY_SECRET_KEY_WRONG' });
  // Flip one ciphertext byte in the row.
  const db = new DatabaseSync(f.path);
  const { totp_secret_sealed: sealed } = db.prepare('SELECT totp_secret_sealed FROM users WHERE principal_id = ?').get(id) as { totp_secret_sealed: string };
  const parts = sealed.split('.');
  const ct = Buffer.from(parts[4]!, 'base64url');
  ct[0]! ^= 0x01;
  parts[4] = ct.toString('base64url');
  db.prepare('UPDATE users SET totp_secret_sealed = ? WHERE principal_id = ?').run(parts.join('.'), id);
  // ... and move Eve's pending secret into Ana's pending slot.
  db.close();
  const store = await f.open();
  const code = await generateTotp(secret, { now: f.clock.now + 30_000 });
  assert.equal((await refusal(store.verifySecondFactor(id, code))).detail, 'IDENTITY_SECRET_TAMPERED');
  await store.close();
});

test('a sealed secret moved to another user\'s row does not open', async () => {
  const f = await fixture();
  await enrolled(f, 'contractor:ana');
  const { secret: eveSecret } = await enrolled(f, 'contractor:eve');
  await f.store.close();
  const db = new DatabaseSync(f.path);
  db.exec("UPDATE users SET totp_secret_sealed = (SELECT totp_secret_sealed FROM users WHERE principal_id = 'contractor:eve') WHERE principal_id = 'contractor:ana'");
  db.close();
  const store = await f.open();
  const code = await generateTotp(eveSecret, { now: f.clock.now + 30_000 });
  assert.equal((await refusal(store.verifySecondFactor('contractor:ana', code))).detail, 'IDENTITY_SECRET_TAMPERED');
  await store.close();
});

test('audit descriptions never contain passwords, codes or secrets', async () => {
  const f = await fixture();
  const { id, secret, recoveryCodes } = await enrolled(f);
  const events = [
    (await refusal(f.store.verifyPassword(id, 'a-wrong-password-77'))).audit,
    (await f.store.verifyPassword(id, PASSWORD)).audit,
    (await refusal(f.store.verifySecondFactor(id, '123456'))).audit,
    (await f.store.verifySecondFactor(id, recoveryCodes[0]!)).audit,
    await f.store.requestMfaReset(id, 'admin:olu'),
  ];
  const text = JSON.stringify(events);
  for (const s of [PASSWORD, 'a-wrong-password-77', secret, recoveryCodes[0]!, recoveryCodes[0]!.replaceAll('-', ''), '123456', PASSPHRASE]) assert.ok(!text.includes(s), s);
  await f.store.close();
});
