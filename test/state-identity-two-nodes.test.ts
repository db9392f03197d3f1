/**
 * Two Gatehouse nodes' identity services on one PostgreSQL (issue 7): each node opens its own
 * state (its own pool, as two processes would) and its own IdentityService on it, with the
 * same key passphrase. What one node does, the other sees on the very next call.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type PgCluster } from './support/postgres.ts';
import { openPostgresState, type PostgresState } from '../src/state/postgres.ts';
import { identityStorageOf } from '../src/state/identity.ts';
import { IdentityService, type ElevationPolicy } from '../src/identity/service.ts';
import { generateTotp } from '../src/identity/totp.ts';
import { IdentityError } from '../src/identity/password.ts';

const PASSPHRASE = 'two-node identity passphrase';
const PASSWORD = 'harbour-lantern-quartz-42';
const POLICY: ElevationPolicy = { roles: ['claims-auditor'], maxMinutes: 120, isApprover: (a) => a === 'olga', canBreakGlass: () => false };

interface Node { state: PostgresState; ids: IdentityService }

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { detail?: string }).detail ?? String(err);
  }
  return 'ok';
}

describe('two nodes sharing identity state in PostgreSQL', () => {
  let pg: PgCluster;
  let dir: string;
  let a: Node;
  let b: Node;

  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'gh-identity-2n-'));
    const open = async (name: string): Promise<Node> => {
      const state = await openPostgresState({ url: pg.superuserUrl, maxConnections: 4 });
      const ids = await IdentityService.open({ stateDir: join(dir, name), demo: false, sessionTtlSec: 900, passphrase: PASSPHRASE, storage: identityStorageOf(state) });
      return { state, ids };
    };
    // Both nodes start at once: one creates the signing key and the secret-box parameters.
    [a, b] = await Promise.all([open('a'), open('b')]);
  });

  after(async () => {
    for (const n of [a, b]) {
      await n?.ids.close();
      await n?.state.close();
    }
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('both nodes use the one signing key, and the state directory holds no identity files', async () => {
    assert.equal(a.ids.backend, 'postgres');
    assert.deepEqual(a.ids.sessions.jwks(), b.ids.sessions.jwks());
    assert.equal(a.ids.sessions.jwks().keys.length, 1);
    assert.equal(existsSync(join(dir, 'a')), false);
    assert.equal(existsSync(join(dir, 'b')), false);
  });

  it('a session issued on node A verifies on node B; logging out on A refuses the very next request on B', async () => {
    await a.ids.users.createUser('rhea', PASSWORD, { by: 'admin' });
    const t = await a.ids.login('rhea', PASSWORD, null, '10.0.0.1');
    assert.equal((await b.ids.verify(t.accessToken)).principalId, 'rhea');
    assert.equal((await b.ids.verify(t.accessToken)).principalId, 'rhea', 'the second verify takes B\'s remembered signature check');
    assert.equal(await a.ids.sessions.revokeSession(t.sessionId, { reason: 'logout' }), true);
    assert.equal(await code(b.ids.verify(t.accessToken)), 'SESSION_REVOKED');
    assert.equal(await code(a.ids.verify(t.accessToken)), 'SESSION_REVOKED');
  });

  it('disabling an account on node A refuses its live session on node B at once', async () => {
    await a.ids.users.createUser('milo', PASSWORD, { by: 'admin' });
    const t = await b.ids.login('milo', PASSWORD, null, '10.0.0.2');
    assert.equal((await a.ids.verify(t.accessToken)).principalId, 'milo');
    assert.equal((await b.ids.verify(t.accessToken)).principalId, 'milo');
    await a.ids.users.disableUser('milo', { by: 'admin' });
    assert.equal(await code(b.ids.verify(t.accessToken)), 'IDENTITY_ACCOUNT_DISABLED');
    await a.ids.sessions.revokeAllFor('milo', { reason: 'user disabled' });
    await a.ids.users.enableUser('milo', { by: 'admin' });
    assert.equal(await code(b.ids.verify(t.accessToken)), 'SESSION_REVOKED');
  });

  it('a refresh token is spent once across both nodes, and its replay on the other node ends the session', async () => {
    const t = await a.ids.sessions.issue('rhea', { amr: ['pwd'] });
    const outcomes = await Promise.all([a, b, a, b].map((n) => code(n.ids.sessions.refresh(t.refreshToken))));
    assert.equal(outcomes.filter((o) => o === 'ok').length, 1, `outcomes: ${outcomes.join(', ')}`);
    for (const o of outcomes) if (o !== 'ok') assert.match(o, /^(REFRESH_TOKEN_REUSED|SESSION_REVOKED)$/);
    // The replays counted as theft: the whole session is gone on both nodes.
    assert.equal(await code(b.ids.verify(t.accessToken)), 'SESSION_REVOKED');

    const u = await b.ids.sessions.issue('rhea', { amr: ['pwd'] });
    const next = await a.ids.sessions.refresh(u.refreshToken);
    assert.equal((await b.ids.verify(next.accessToken)).sessionId, u.sessionId);
    assert.equal(await code(b.ids.sessions.refresh(u.refreshToken)), 'REFRESH_TOKEN_REUSED');
    assert.equal(await code(a.ids.verify(next.accessToken)), 'SESSION_REVOKED');
  });

  it('a TOTP code is accepted once across both nodes, and failed attempts on either node count towards one lockout', async () => {
    await a.ids.users.createUser('ana', PASSWORD, { by: 'admin' });
    const { secret } = await a.ids.users.beginTotpEnrolment('ana');
    await b.ids.users.confirmTotpEnrolment('ana', await generateTotp(secret));
    // The confirmation code's step is spent: the next step's code (inside the ±1 window) is not.
    const totp = await generateTotp(secret, { now: Date.now() + 30_000 });
    const logins = await Promise.all([a, b, a, b, a, b].map((n) => code(n.ids.login('ana', PASSWORD, totp, '10.0.1.1'))));
    assert.equal(logins.filter((o) => o === 'ok').length, 1, `outcomes: ${logins.join(', ')}`);
    for (const o of logins) if (o !== 'ok') assert.match(o, /^IDENTITY_(MFA_CODE_INVALID|ACCOUNT_LOCKED)$/);
    // Every refused replay counted (no lost increment), and five (the default threshold)
    // lock the account on both nodes.
    assert.equal((await a.ids.users.status('ana'))?.failedAttempts, logins.filter((o) => o === 'IDENTITY_MFA_CODE_INVALID').length);
    assert.ok((await b.ids.users.status('ana'))!.lockedUntil !== null);
    assert.equal(await code(b.ids.users.verifyPassword('ana', PASSWORD)), 'IDENTITY_ACCOUNT_LOCKED');

    // Wrong passwords racing on both nodes: no increment is lost.
    await a.ids.users.createUser('ivo', PASSWORD, { by: 'admin' });
    const wrong = await Promise.all([a, b, a, b].map((n) => code(n.ids.users.verifyPassword('ivo', 'not-the-password-1'))));
    assert.deepEqual(wrong, Array(4).fill('IDENTITY_CREDENTIALS_INVALID'));
    assert.equal((await b.ids.users.status('ivo'))?.failedAttempts, 4);
  });

  it('API keys and connection passwords issued on node A work on node B until A revokes them', async () => {
    const k = await a.ids.apiKeys.create({ principalId: 'svc-etl', scopes: { datasets: ['claims'], actions: ['query'] } });
    assert.equal((await b.ids.apiKeys.verify(k.key)).principalId, 'svc-etl');
    await a.ids.apiKeys.revoke(k.id);
    assert.equal(await code(b.ids.apiKeys.verify(k.key)), 'API_KEY_REVOKED');

    const now = Math.floor(Date.now() / 1000);
    const cp = await a.ids.connectionPasswords.issue('rhea', { mfaAt: now, expiresAt: now + 3600 });
    assert.equal((await b.ids.connectionPasswords.verifier('rhea'))?.id, cp.id);
    assert.deepEqual(await b.ids.connectionPasswords.resolve(cp.id), { id: cp.id, principalId: 'rhea', mfaAt: now });
    assert.equal(await a.ids.connectionPasswords.revokeAll('rhea'), 1);
    assert.equal(await code(b.ids.connectionPasswords.resolve(cp.id)), 'CONNECTION_PASSWORD_INVALID');
    assert.equal(await b.ids.connectionPasswords.verifier('rhea'), null);
  });

  it('an elevation approved on node A applies on node B, is approved only once, and a revocation on B ends it on A', async () => {
    const ea = a.ids.elevation(() => POLICY);
    const eb = b.ids.elevation(() => POLICY);
    const { request } = await eb.request({ principalId: 'rhea', role: 'claims-auditor', purpose: 'audit', durationMinutes: 30, justification: 'quarterly claims audit' });
    const approvals = await Promise.all([ea, eb].map((s) => s.approve(request.id, 'olga').then(() => 'ok', (e: { detail: string }) => e.detail)));
    assert.deepEqual(approvals.sort(), ['ELEVATION_ALREADY_DECIDED', 'ok']);
    const active = await eb.activeElevations('rhea');
    assert.deepEqual(active.map((g) => g.role), ['claims-auditor']);
    await eb.revoke(active[0]!.id, 'olga');
    assert.deepEqual(await ea.activeElevations('rhea'), []);
  });

  it('a signing-key rotation on node A is picked up by node B: old and new tokens verify on both', async () => {
    const old = await b.ids.sessions.issue('rhea', { amr: ['pwd'] });
    const kid = await a.ids.sessions.rotateSigningKey();
    const fresh = await a.ids.sessions.issue('rhea', { amr: ['pwd'] });
    assert.equal(JSON.parse(Buffer.from(fresh.accessToken.split('.')[0]!, 'base64url').toString()).kid, kid);
    assert.equal((await b.ids.sessions.verify(fresh.accessToken)).principalId, 'rhea');
    assert.equal((await a.ids.sessions.verify(old.accessToken)).principalId, 'rhea');
    // B signs with the new key within a second (it re-reads the active key at most once a second).
    await new Promise((r) => setTimeout(r, 1100));
    const fromB = await b.ids.sessions.issue('rhea', { amr: ['pwd'] });
    assert.equal(JSON.parse(Buffer.from(fromB.accessToken.split('.')[0]!, 'base64url').toString()).kid, kid);
    // The retired private key is erased from the database.
    const rows = await a.state.pool.query<{ kid: string; sealed: string | null }>('SELECT kid, sealed FROM gatehouse.identity_session_keys ORDER BY created_at');
    assert.deepEqual(rows.rows.map((r) => [r.kid === kid, r.sealed === null]), [[false, true], [true, false]]);
    assert.doesNotMatch(rows.rows[1]!.sealed!, /PRIVATE KEY|"d":/);
  });

  it('a node with another passphrase refuses to start instead of minting its own keys', async () => {
    const state = await openPostgresState({ url: pg.superuserUrl, maxConnections: 2 });
    try {
      const err = await IdentityService.open({ stateDir: join(dir, 'c'), demo: false, sessionTtlSec: 900, passphrase: 'another passphrase', storage: identityStorageOf(state) })
        .then(() => null, (e: unknown) => e);
      assert.ok(err instanceof IdentityError, String(err));
      assert.match(err.detail, /^IDENTITY_(SECRET_KEY_WRONG|KEY_UNAVAILABLE)$/);
      assert.ok(!String(err.message).includes('another passphrase'));
    } finally {
      await state.close();
    }
  });
});
