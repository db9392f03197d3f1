import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SignJWT } from 'jose';
import { SessionService, type SessionServiceOptions } from './session.ts';

const ISS = 'https://gatehouse.test';
const AUD = 'gatehouse';
const T0 = new Date('2030-01-01T00:00:00Z');
const t0 = Math.floor(T0.getTime() / 1000);
const at = (sec: number): Date => new Date((t0 + sec) * 1000);

async function setup(t: { after: (fn: () => void) => void }, extra: Partial<SessionServiceOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-session-'));
  const options: SessionServiceOptions = { path: join(dir, 'identity.db'), keyDir: join(dir, 'keys'), passphrase: 'test-passphrase', issuer: ISS, audience: AUD, clock: () => T0, ...extra };
  const svc = await SessionService.open(options);
  t.after(async () => { await svc.close(); rmSync(dir, { recursive: true, force: true }); });
  /** Every row of the session tables, read through a second connection. */
  const snapshot = (): string => {
    const db = new DatabaseSync(options.path!, { readOnly: true });
    try {
      return JSON.stringify([db.prepare('SELECT * FROM identity_sessions ORDER BY sid').all(), db.prepare('SELECT hex(hash) h, sid, issued_at, expires_at, used_at FROM identity_refresh_tokens ORDER BY h').all()]);
    } finally { db.close(); }
  };
  return { dir, options, svc, snapshot };
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const parts = (jwt: string) => {
  const [h, p, s] = jwt.split('.') as [string, string, string];
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>, payload: JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>, h, p, s };
};

async function rejects(p: Promise<unknown>, code: string, status = 401): Promise<void> {
  await assert.rejects(p, (err: { detail?: string | null; status?: number }) => {
    assert.equal(err.detail, code);
    assert.equal(err.status, status);
    return true;
  });
}

test('an issued access token verifies to its principal, session, amr and MFA time, with the documented claims', async (t) => {
  const { svc, dir } = await setup(t);
  const tokens = await svc.issue('alice', { amr: ['pwd', 'otp'], mfaAt: t0 - 10 });
  assert.match(tokens.refreshToken, /^ghr_[A-Za-z0-9_-]{43}$/);
  assert.equal(tokens.expiresAt, t0 + 900);
  const v = await svc.verify(tokens.accessToken, { now: at(60) });
  assert.deepEqual(v, { principalId: 'alice', sessionId: tokens.sessionId, amr: ['pwd', 'otp'], mfaAt: t0 - 10, expiresAt: t0 + 900 });
  const { header, payload } = parts(tokens.accessToken);
  assert.deepEqual(header, { alg: 'EdDSA', typ: 'at+jwt', kid: svc.jwks().keys[0]!.kid });
  assert.deepEqual(Object.keys(payload).sort(), ['amr', 'aud', 'exp', 'iat', 'iss', 'mfa_at', 'nbf', 'sid', 'sub']);
  assert.equal(payload['iss'], ISS);
  assert.equal(payload['aud'], AUD);
  // The private key is sealed at rest: no PEM, no raw key in the key directory.
  const files = readdirSync(join(dir, 'keys'));
  assert.equal(files.length, 2);
  for (const f of files) assert.doesNotMatch(readFileSync(join(dir, 'keys', f), 'utf8'), /PRIVATE KEY|"d":/);
});

test('a session without MFA carries no mfa_at and reports mfaAt null', async (t) => {
  const { svc } = await setup(t);
  const tokens = await svc.issue('bob', { amr: ['pwd'] });
  assert.equal(parts(tokens.accessToken).payload['mfa_at'], undefined);
  assert.equal((await svc.verify(tokens.accessToken)).mfaAt, null);
});

test('hostile access tokens are each refused with their own code and change nothing in the store', async (t) => {
  const { svc, snapshot, options } = await setup(t);
  const good = await svc.issue('alice', { amr: ['pwd', 'otp'], mfaAt: t0 });
  const { h, p, s, payload } = parts(good.accessToken);
  const before = snapshot();

  // Forged signature: the payload changed to another principal, the signature kept.
  await rejects(svc.verify(`${h}.${b64({ ...payload, sub: 'mallory' })}.${s}`), 'TOKEN_SIGNATURE_INVALID');
  // A flipped bit in the signature.
  const sig = Buffer.from(s, 'base64url'); sig[0]! ^= 1;
  await rejects(svc.verify(`${h}.${p}.${sig.toString('base64url')}`), 'TOKEN_SIGNATURE_INVALID');
  // alg: none, unsigned.
  await rejects(svc.verify(`${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`), 'TOKEN_ALG_NOT_ALLOWED');
  // Algorithm confusion: HS256 keyed with the Ed25519 public key (raw bytes and the JWK's x).
  const kid = svc.jwks().keys[0]!.kid!;
  const x = svc.jwks().keys[0]!.x!;
  for (const secret of [Buffer.from(x, 'base64url'), Buffer.from(x), Buffer.from(JSON.stringify(svc.jwks().keys[0]))]) {
    const hh = b64({ alg: 'HS256', typ: 'at+jwt', kid });
    const mac = createHmac('sha256', secret).update(`${hh}.${p}`).digest('base64url');
    await rejects(svc.verify(`${hh}.${p}.${mac}`), 'TOKEN_ALG_NOT_ALLOWED');
  }
  // Correctly signed by a key Gatehouse never had, under an unknown kid and under ours.
  const stranger = generateKeyPairSync('ed25519').privateKey;
  const forge = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) => new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid, ...header }).sign(stranger);
  await rejects(svc.verify(await forge(payload, { kid: 'not-a-gatehouse-key' })), 'TOKEN_KEY_UNKNOWN');
  await rejects(svc.verify(await forge(payload, { kid: undefined })), 'TOKEN_KEY_UNKNOWN');
  await rejects(svc.verify(await forge(payload)), 'TOKEN_SIGNATURE_INVALID');
  // Expired, not yet valid (beyond the 5 s tolerance).
  await rejects(svc.verify(good.accessToken, { now: at(900 + 6) }), 'TOKEN_EXPIRED');
  await rejects(svc.verify(good.accessToken, { now: at(-6) }), 'TOKEN_NOT_YET_VALID');
  // Wrong issuer, wrong audience, wrong typ: the same keys, another deployment's config.
  const other = await SessionService.open({ ...options, issuer: 'https://evil.test' });
  const otherAud = await SessionService.open({ ...options, audience: 'another-app' });
  t.after(async () => { await other.close(); await otherAud.close(); });
  await rejects(other.verify(good.accessToken), 'TOKEN_ISSUER_INVALID');
  await rejects(otherAud.verify(good.accessToken), 'TOKEN_AUDIENCE_INVALID');
  // Not a JWT at all.
  for (const junk of ['', 'abc', 'a.b.c', `${h}.${p}`, 'x'.repeat(10_000)]) await rejects(svc.verify(junk), 'TOKEN_MALFORMED');

  assert.equal(snapshot(), before, 'verification never writes');
  // And the real token is still fine.
  assert.equal((await svc.verify(good.accessToken)).principalId, 'alice');
});

test('a revoked session is refused on the very next verify, also through another connection to the database (as another process would)', async (t) => {
  const { svc, options } = await setup(t);
  const a = await svc.issue('alice', { amr: ['pwd', 'otp'], mfaAt: t0 });
  const b = await svc.issue('alice', { amr: ['pwd', 'otp'], mfaAt: t0 });
  const c = await svc.issue('carol', { amr: ['pwd', 'otp'], mfaAt: t0 });
  const peer = await SessionService.open(options);
  t.after(() => peer.close());
  await peer.verify(a.accessToken);

  assert.equal(await svc.revokeSession(a.sessionId), true);
  assert.equal(await svc.revokeSession(a.sessionId), false, 'revoking twice reports no change');
  await rejects(svc.verify(a.accessToken), 'SESSION_REVOKED');
  await rejects(peer.verify(a.accessToken), 'SESSION_REVOKED');
  await rejects(svc.refresh(a.refreshToken), 'SESSION_REVOKED');
  await rejects(svc.stepUp(a.sessionId, t0), 'SESSION_REVOKED');

  // A disabled or deleted user: every session goes, other principals' stay.
  assert.equal(await peer.revokeAllFor('alice'), 1);
  await rejects(svc.verify(b.accessToken), 'SESSION_REVOKED');
  assert.equal((await svc.verify(c.accessToken)).principalId, 'carol');
  assert.deepEqual(await svc.sessionsOf('alice'), []);

  // Revocations survive a restart.
  await svc.close();
  const reopened = await SessionService.open(options);
  t.after(() => reopened.close());
  await rejects(reopened.verify(a.accessToken), 'SESSION_REVOKED');
  await rejects(reopened.verify(b.accessToken), 'SESSION_REVOKED');
});

test('refresh rotates the refresh token, and reusing a spent one revokes the whole session family', async (t) => {
  const { svc, snapshot } = await setup(t);
  const first = await svc.issue('alice', { amr: ['pwd', 'otp'], mfaAt: t0 });
  const second = await svc.refresh(first.refreshToken, { now: at(600) });
  assert.notEqual(second.refreshToken, first.refreshToken);
  assert.equal(second.sessionId, first.sessionId);
  assert.equal(second.expiresAt, t0 + 600 + 900);
  const v = await svc.verify(second.accessToken, { now: at(601) });
  assert.deepEqual([v.principalId, v.mfaAt, v.amr], ['alice', t0, ['pwd', 'otp']]);
  const third = await svc.refresh(second.refreshToken, { now: at(700) });

  // The thief replays the first token: the session dies, for the thief and the victim alike.
  await rejects(svc.refresh(first.refreshToken, { now: at(800) }), 'REFRESH_TOKEN_REUSED');
  await rejects(svc.verify(third.accessToken, { now: at(801) }), 'SESSION_REVOKED');
  await rejects(svc.refresh(third.refreshToken, { now: at(802) }), 'SESSION_REVOKED');
  assert.equal((await svc.session(first.sessionId))!.revokedReason, 'refresh token reused');

  // Unknown, malformed and expired refresh tokens change nothing.
  const fresh = await svc.issue('bob', { amr: ['pwd'] });
  const before = snapshot();
  await rejects(svc.refresh('ghr_' + 'A'.repeat(43)), 'REFRESH_TOKEN_INVALID');
  await rejects(svc.refresh('not a token'), 'REFRESH_TOKEN_INVALID');
  await rejects(svc.refresh(fresh.refreshToken, { now: at(8 * 3600) }), 'REFRESH_TOKEN_EXPIRED');
  assert.equal(snapshot(), before);
});

test('no token outlives the absolute session lifetime', async (t) => {
  const { svc } = await setup(t, { sessionTtlSec: 1000, refreshTtlSec: 800 });
  const a = await svc.issue('alice', { amr: ['pwd'] });
  const b = await svc.refresh(a.refreshToken, { now: at(700) });
  assert.equal(b.expiresAt, t0 + 1000, 'capped at the session end');
  await rejects(svc.refresh(b.refreshToken, { now: at(1000) }), 'SESSION_EXPIRED');
  await rejects(svc.stepUp(a.sessionId, t0 + 999, { now: at(1000) }), 'SESSION_EXPIRED');
});

test('step-up records a new MFA event and issues a token with the fresh mfa_at; later refreshes keep it', async (t) => {
  const { svc } = await setup(t);
  const a = await svc.issue('alice', { amr: ['pwd'] });
  assert.equal((await svc.verify(a.accessToken)).mfaAt, null);
  const up = await svc.stepUp(a.sessionId, t0 + 100, { amr: ['pwd', 'otp'], now: at(100) });
  const v = await svc.verify(up.accessToken, { now: at(101) });
  assert.deepEqual([v.mfaAt, v.amr, v.sessionId], [t0 + 100, ['pwd', 'otp'], a.sessionId]);
  const r = await svc.refresh(a.refreshToken, { now: at(200) });
  assert.equal((await svc.verify(r.accessToken, { now: at(201) })).mfaAt, t0 + 100);
  await rejects(svc.stepUp('no-such-session', t0), 'SESSION_NOT_FOUND');
  await rejects(svc.stepUp(a.sessionId, t0 + 3600, { now: at(200) }), 'IDENTITY_INPUT_INVALID', 400);
});

test('after key rotation new tokens use the new key, old tokens still verify, and the old private key is erased', async (t) => {
  const { svc, options } = await setup(t);
  const old = await svc.issue('alice', { amr: ['pwd'] });
  const oldKid = parts(old.accessToken).header['kid'];
  const peer = await SessionService.open(options);
  t.after(() => peer.close());
  const newKid = await svc.rotateSigningKey();
  assert.notEqual(newKid, oldKid);
  assert.equal(existsSync(join(options.keyDir!, `session-signing-${oldKid}.json`)), false);
  const fresh = await svc.issue('alice', { amr: ['pwd'] });
  assert.equal(parts(fresh.accessToken).header['kid'], newKid);
  assert.equal((await svc.verify(old.accessToken)).principalId, 'alice');
  // Another process picks the new public key up from the key index.
  assert.equal((await peer.verify(fresh.accessToken)).principalId, 'alice');
  assert.deepEqual(svc.keyHistory().map((k) => [k.kid, k.retiredAt !== null]), [[oldKid, true], [newKid, false]]);
});

test('a wrong passphrase or a missing private key refuses to open instead of minting a new key', async (t) => {
  const { svc, options } = await setup(t);
  await svc.close();
  await assert.rejects(async () => SessionService.open({ ...options, passphrase: 'wrong' }), { detail: 'IDENTITY_KEY_UNAVAILABLE' });
  const kid = svc.jwks().keys[0]!.kid!;
  rmSync(join(options.keyDir!, `session-signing-${kid}.json`));
  await assert.rejects(async () => SessionService.open(options), { detail: 'IDENTITY_KEY_UNAVAILABLE' });
});

test('the public JWKS verifies a session token with nothing but node:crypto and the published Ed25519 public key', async (t) => {
  const { svc } = await setup(t);
  const a = await svc.issue('alice', { amr: ['pwd'] });
  const { h, p, s } = parts(a.accessToken);
  const pub = createPublicKey({ key: svc.jwks().keys[0] as never, format: 'jwk' });
  const { verify } = await import('node:crypto');
  assert.equal(verify(null, Buffer.from(`${h}.${p}`), pub, Buffer.from(s, 'base64url')), true);
});
