/**
 * The identity stores' contract: the key cases of src/identity/*.test.ts run against the
 * embedded node:sqlite storage and against PostgreSQL (the same DriverIdentitySql on PgDriver, a real server), and
 * must give the same outcomes and error codes. "Another instance" is a second connection to
 * the same sqlite file, or a second pool on the same PostgreSQL schema (another node).
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { NO_DURABILITY_SETTINGS, startPostgres, type PgCluster } from './support/postgres.ts';
import { migrate } from '../src/sql/migrations.ts';
import { PgIdentitySql } from '../src/state/identity-sql.ts';
import { ApiKeyStore } from '../src/identity/api-keys.ts';
import { ConnectionPasswordStore } from '../src/identity/connection-passwords.ts';
import { ElevationStore, type ElevationStoreSettings } from '../src/identity/elevation.ts';
import { SessionService, type SessionServiceOptions } from '../src/identity/session.ts';
import { UserStore, type UserStoreOptions } from '../src/identity/user-store.ts';
import { generateTotp } from '../src/identity/totp.ts';

const PASSPHRASE = 'contract passphrase';
const PASSWORD = 'tidal-orbit-velvet-9';
/** A low scrypt cost (UserStoreOptions.scrypt): these tests are about sharing state, not the hash's cost. */
const SCRYPT = { N: 2 ** 10, r: 8, p: 1 } as const;
const T0 = new Date('2030-01-01T00:00:00Z');
const t0 = T0.getTime() / 1000;
const at = (sec: number): Date => new Date((t0 + sec) * 1000);

let cluster: PgCluster;
const pools: pg.Pool[] = [];
let schemas = 0;

// These tests are about semantics, not crashes: no fsync (support/postgres.ts NO_DURABILITY_SETTINGS).
before(async () => { cluster = await startPostgres({ settings: NO_DURABILITY_SETTINGS }); });
after(async () => {
  for (const p of pools) await p.end();
  await cluster?.stop();
});

/** Opens stores on one data set; `peer()` gives the same data through another connection or pool. */
interface Data {
  apiKeys(o?: { clock?: () => Date }): ApiKeyStore;
  connectionPasswords(o?: { clock?: () => Date }): ConnectionPasswordStore;
  elevation(o: ElevationStoreSettings): ElevationStore;
  sessions(o: Omit<SessionServiceOptions, 'path' | 'keyDir' | 'storage'>): Promise<SessionService>;
  users(o: UserStoreOptions): Promise<UserStore>;
  peer(): Data;
}

interface Impl { readonly name: string; open(t: TestContext): Promise<Data> }

const IMPLS: Impl[] = [
  {
    name: 'sqlite',
    async open(t) {
      const dir = mkdtempSync(join(tmpdir(), 'gh-id-contract-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const data = (): Data => ({
        apiKeys: (o) => track(t, ApiKeyStore.open(join(dir, 'api-keys.sqlite'), o)),
        connectionPasswords: (o) => track(t, ConnectionPasswordStore.open(join(dir, 'cp.sqlite'), o)),
        elevation: (o) => track(t, ElevationStore.open({ ...o, path: join(dir, 'elevation.sqlite') })),
        sessions: async (o) => track(t, await SessionService.open({ ...o, path: join(dir, 'sessions.sqlite'), keyDir: join(dir, 'keys') })),
        users: async (o) => track(t, await UserStore.open(join(dir, 'users.sqlite'), o)),
        peer: data,
      });
      return data();
    },
  },
  {
    name: 'postgres',
    async open(t) {
      const schema = `idc_${++schemas}`;
      const newPool = (): pg.Pool => {
        const pool = new pg.Pool({ connectionString: cluster.superuserUrl, max: 4 });
        pools.push(pool);
        return pool;
      };
      const first = newPool();
      const client = await first.connect();
      try { await migrate(client, schema); } finally { client.release(); }
      // A peer is a second pool on the same schema, as another node would have.
      const data = (pool: pg.Pool): Data => {
        const sql = new PgIdentitySql(pool, { schema });
        return {
          apiKeys: (o) => track(t, ApiKeyStore.openOn(sql, o)),
          connectionPasswords: (o) => track(t, ConnectionPasswordStore.openOn(sql, o)),
          elevation: (o) => track(t, ElevationStore.openOn(sql, o)),
          sessions: async (o) => track(t, await SessionService.open({ ...o, storage: sql })),
          users: async (o) => track(t, await UserStore.openOn(sql, o)),
          peer: () => data(newPool()),
        };
      };
      return data(first);
    },
  },
];

function track<T extends { close(): unknown }>(t: TestContext, store: T): T {
  t.after(async () => { await store.close(); });
  return store;
}

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as { detail?: string }).detail ?? String(err);
  }
  return 'ok';
}

const SESSION = { passphrase: PASSPHRASE, issuer: 'https://gatehouse.test', audience: 'gatehouse' } as const;
const APPROVERS: Record<string, readonly string[]> = { 'dataset-admin': ['olga', 'ada'] };
const ELEVATION: ElevationStoreSettings = { isApprover: (who, role) => (APPROVERS[role] ?? []).includes(who), maxDurationMinutes: 120 };

for (const impl of IMPLS) {
  describe(`identity stores on ${impl.name}`, () => {
    it('an API key verifies on another instance, is refused there right after revocation, and expired or forged keys get their own codes', async (t) => {
      const d = await impl.open(t);
      const store = d.apiKeys({ clock: () => T0 });
      const other = d.peer().apiKeys({ clock: () => T0 });
      const { key, id } = await store.create({ principalId: 'svc', scopes: { datasets: ['claims'], actions: ['query'] } });
      assert.deepEqual(await other.verify(key, { now: at(10) }), { id, principalId: 'svc', scopes: { datasets: ['claims'], actions: ['query'] } });
      assert.equal((await store.get(id)).lastUsedAt, t0 + 10);
      await other.verify(key, { now: at(30) });
      assert.equal((await store.get(id)).lastUsedAt, t0 + 10, 'within 60 s: no write');
      assert.equal(await store.revoke(id, { now: at(40) }), true);
      assert.equal(await other.revoke(id), false);
      assert.equal(await code(other.verify(key, { now: at(41) })), 'API_KEY_REVOKED');
      assert.equal(await code(other.revoke('key_nope')), 'API_KEY_NOT_FOUND');
      const exp = await store.create({ principalId: 'svc', scopes: { actions: ['query'] }, expiresAt: at(3600) });
      assert.equal(await code(other.verify(exp.key, { now: at(3600) })), 'API_KEY_EXPIRED');
      assert.equal(await code(other.verify('gh_' + 'A'.repeat(43))), 'API_KEY_INVALID');
      assert.equal(await code(store.create({ principalId: 'svc', scopes: {}, expiresAt: at(-1) })), 'IDENTITY_INPUT_INVALID');
      assert.deepEqual((await other.list('svc')).map((k) => [k.id === id, k.revokedAt]).sort(), [[false, null], [true, t0 + 40]]);
    });

    it('a connection password replaces the previous one, resolves on another instance and stops at revocation or expiry', async (t) => {
      const d = await impl.open(t);
      let now = T0;
      const store = d.connectionPasswords({ clock: () => now });
      const other = d.peer().connectionPasswords({ clock: () => now });
      const first = await store.issue('rhea', { mfaAt: t0 - 30, expiresAt: t0 + 3600 });
      assert.deepEqual(await other.resolve(first.id), { id: first.id, principalId: 'rhea', mfaAt: t0 - 30 });
      const second = await other.issue('rhea', { mfaAt: null, expiresAt: t0 + 3600 });
      assert.equal((await store.verifier('rhea'))?.id, second.id);
      assert.equal(await code(store.resolve(first.id)), 'CONNECTION_PASSWORD_INVALID');
      now = at(3601);
      assert.equal(await other.verifier('rhea'), null);
      assert.equal(await code(other.resolve(second.id)), 'CONNECTION_PASSWORD_INVALID');
      const third = await store.issue('rhea', { mfaAt: null, expiresAt: t0 + 7200 });
      assert.equal(await other.revokeAll('rhea'), 1);
      assert.equal(await code(store.resolve(third.id)), 'CONNECTION_PASSWORD_INVALID');
    });

    it('an elevation is approved exactly once when two instances race, self-approval is refused, and revocation ends it everywhere', async (t) => {
      const d = await impl.open(t);
      const a = d.elevation(ELEVATION);
      const b = d.peer().elevation(ELEVATION);
      const { request } = await a.request({ principalId: 'rhea', role: 'dataset-admin', purpose: 'incident-review', durationMinutes: 30, justification: 'INC-1234' }, T0);
      assert.equal(await code(b.approve(request.id, 'rhea', at(60))), 'ELEVATION_SELF_APPROVAL');
      const { request: own } = await a.request({ principalId: 'ada', role: 'dataset-admin', purpose: 'x', justification: 'mine' }, T0);
      assert.equal(await code(b.approve(own.id, 'ada', at(60))), 'ELEVATION_SELF_APPROVAL');
      assert.equal(await code(b.approve(request.id, 'ivan', at(60))), 'ELEVATION_NOT_APPROVER');
      const outcomes = await Promise.all([a.approve(request.id, 'olga', at(60)), b.approve(request.id, 'ada', at(60))].map((p) => code(p)));
      assert.deepEqual(outcomes.sort(), ['ELEVATION_ALREADY_DECIDED', 'ok']);
      const active = await b.activeElevations('rhea', at(120));
      assert.equal(active.length, 1);
      assert.equal(await b.hasRole('rhea', 'dataset-admin', at(60 + 30 * 60)), false, 'expired by itself');
      await a.revoke(active[0]!.id, 'olga', null, at(130));
      assert.deepEqual(await b.activeElevations('rhea', at(131)), []);
      assert.equal(await code(b.revoke(active[0]!.id, 'olga', null, at(132))), 'ELEVATION_ALREADY_REVOKED');
      assert.equal(await code(a.breakGlass({ principalId: 'rhea', role: 'dataset-admin', justification: 'short' }, T0)), 'ELEVATION_JUSTIFICATION_REQUIRED');
      assert.equal((await b.getRequest(request.id))?.status, 'approved');
    });

    it('sessions: a token verifies on another instance, revocation and refresh-token reuse are seen there, and a refresh is spent once', async (t) => {
      const d = await impl.open(t);
      const svc = await d.sessions({ ...SESSION, clock: () => T0 });
      const peer = await d.peer().sessions({ ...SESSION, clock: () => T0 });
      const a = await svc.issue('alice', { amr: ['pwd', 'otp'], mfaAt: t0 - 10 });
      assert.deepEqual(await peer.verify(a.accessToken, { now: at(60) }), { principalId: 'alice', sessionId: a.sessionId, amr: ['pwd', 'otp'], mfaAt: t0 - 10, expiresAt: t0 + 900 });
      assert.equal(await peer.revokeSession(a.sessionId), true);
      assert.equal(await svc.revokeSession(a.sessionId), false);
      assert.equal(await code(svc.verify(a.accessToken, { now: at(61) })), 'SESSION_REVOKED');
      assert.equal(await code(svc.refresh(a.refreshToken, { now: at(62) })), 'SESSION_REVOKED');

      const b = await svc.issue('bob', { amr: ['pwd'] });
      const racing = await Promise.all([svc, peer, svc, peer].map((s) => code(s.refresh(b.refreshToken, { now: at(100) }))));
      assert.equal(racing.filter((o) => o === 'ok').length, 1, racing.join(', '));
      assert.equal(await code(peer.verify(b.accessToken, { now: at(101) })), 'SESSION_REVOKED', 'the replays revoked the session');
      assert.equal((await svc.session(b.sessionId))?.revokedReason, 'refresh token reused');

      const c = await svc.issue('carol', { amr: ['pwd'] });
      const c2 = await peer.refresh(c.refreshToken, { now: at(200) });
      assert.equal((await svc.verify(c2.accessToken, { now: at(201) })).sessionId, c.sessionId);
      assert.equal(await code(svc.refresh('ghr_' + 'A'.repeat(43))), 'REFRESH_TOKEN_INVALID');
      assert.equal(await code(svc.refresh(c2.refreshToken, { now: at(8 * 3600 + 200) })), 'REFRESH_TOKEN_EXPIRED');
      assert.equal(await peer.revokeAllFor('carol', { now: at(300) }), 1);
      assert.deepEqual(await svc.sessionsOf('carol', { now: at(301) }), []);
      const up = await svc.issue('dan', { amr: ['pwd'] });
      const stepped = await peer.stepUp(up.sessionId, t0 + 5, { amr: ['pwd', 'otp'], now: at(5) });
      assert.equal((await svc.verify(stepped.accessToken, { now: at(6) })).mfaAt, t0 + 5);
      assert.equal(await code(svc.stepUp('no-such-session', t0)), 'SESSION_NOT_FOUND');
    });

    it('sessions: a rotated key is picked up by another instance, and a wrong passphrase refuses to open', async (t) => {
      const d = await impl.open(t);
      const svc = await d.sessions({ ...SESSION, clock: () => T0 });
      const peer = await d.peer().sessions({ ...SESSION, clock: () => T0 });
      const old = await svc.issue('alice', { amr: ['pwd'] });
      const kid = await svc.rotateSigningKey();
      const fresh = await svc.issue('alice', { amr: ['pwd'] });
      assert.equal((await peer.verify(fresh.accessToken)).principalId, 'alice');
      assert.equal((await peer.verify(old.accessToken)).principalId, 'alice');
      assert.deepEqual(svc.keyHistory().map((k) => k.retiredAt !== null), [true, false]);
      assert.equal(svc.keyHistory()[1]!.kid, kid);
      assert.equal(await code(d.peer().sessions({ ...SESSION, passphrase: 'wrong' })), 'IDENTITY_KEY_UNAVAILABLE');
    });

    it('users: TOTP codes and recovery codes are accepted once across instances, and lockout counters lose no failure', async (t) => {
      const d = await impl.open(t);
      const clock = { now: T0.getTime() };
      const o: UserStoreOptions = { passphrase: PASSPHRASE, clock: () => new Date(clock.now), scrypt: SCRYPT };
      const store = await d.users(o);
      const other = await d.peer().users(o);
      await store.createUser('ana', PASSWORD, { by: 'admin' });
      assert.equal(await code(other.createUser('ana', PASSWORD, { by: 'admin' })), 'IDENTITY_USER_EXISTS');
      const { secret } = await store.beginTotpEnrolment('ana');
      const { recoveryCodes } = await other.confirmTotpEnrolment('ana', await generateTotp(secret, { now: clock.now }));
      clock.now += 30_000;
      const totp = await generateTotp(secret, { now: clock.now });
      const once = await Promise.all([store, other, store, other].map((s) => code(s.verifySecondFactor('ana', totp))));
      assert.equal(once.filter((x) => x === 'ok').length, 1, once.join(', '));
      assert.equal((await other.status('ana'))?.failedAttempts, 3);
      const rc = await Promise.all([store, other, store].map((s) => code(s.verifySecondFactor('ana', recoveryCodes[0]!))));
      assert.equal(rc.filter((x) => x === 'ok').length, 1, rc.join(', '));

      await store.createUser('ivo', PASSWORD, { by: 'admin' });
      const wrong = await Promise.all([store, other, store, other].map((s) => code(s.verifyPassword('ivo', 'not-the-password-1'))));
      assert.deepEqual(wrong, Array(4).fill('IDENTITY_CREDENTIALS_INVALID'));
      assert.equal((await store.status('ivo'))?.failedAttempts, 4);
      assert.equal(await code(other.verifyPassword('ivo', 'not-the-password-1')), 'IDENTITY_CREDENTIALS_INVALID');
      assert.equal(await code(store.verifyPassword('ivo', PASSWORD)), 'IDENTITY_ACCOUNT_LOCKED', 'the fifth failure locked it for every instance');
      assert.equal(await code(other.verifyPassword('nobody', PASSWORD)), 'IDENTITY_CREDENTIALS_INVALID');
    });

    it('users: disable, the two-person MFA reset and a wrong passphrase behave the same', async (t) => {
      const d = await impl.open(t);
      const o: UserStoreOptions = { passphrase: PASSPHRASE, scrypt: SCRYPT };
      const store = await d.users(o);
      const other = await d.peer().users(o);
      await store.createUser('eve', PASSWORD, { by: 'admin' });
      await other.disableUser('eve', { by: 'admin' });
      assert.equal(await code(store.verifyPassword('eve', PASSWORD)), 'IDENTITY_ACCOUNT_DISABLED');
      await store.enableUser('eve', { by: 'admin' });
      assert.equal((await other.verifyPassword('eve', PASSWORD)).mfaEnrolled, false);
      const { secret } = await store.beginTotpEnrolment('eve');
      await store.confirmTotpEnrolment('eve', await generateTotp(secret));
      assert.equal(await code(other.requestMfaReset('eve', 'eve')), 'IDENTITY_MFA_RESET_FORBIDDEN');
      await other.requestMfaReset('eve', 'admin:olu');
      assert.equal(await code(store.approveMfaReset('eve', 'admin:olu')), 'IDENTITY_MFA_RESET_FORBIDDEN');
      await store.approveMfaReset('eve', 'admin:ada');
      assert.equal((await other.status('eve'))?.mfaEnrolled, false);
      assert.equal(await code(other.approveMfaReset('eve', 'admin:ada')), 'IDENTITY_MFA_RESET_NOT_REQUESTED');
      assert.equal(await code(d.peer().users({ passphrase: 'not the passphrase', scrypt: SCRYPT })), 'IDENTITY_SECRET_KEY_WRONG');
    });
  });
}
