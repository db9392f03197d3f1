import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ApiKeyStore, assertScope, scopesPermit } from './api-keys.ts';

const T0 = new Date('2030-01-01T00:00:00Z');
const t0 = T0.getTime() / 1000;
const at = (sec: number): Date => new Date((t0 + sec) * 1000);

function setup(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'gh-apikeys-'));
  const path = join(dir, 'identity.db');
  const store = ApiKeyStore.open(path, { clock: () => T0 });
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  const snapshot = (): string => {
    const db = new DatabaseSync(path, { readOnly: true });
    try { return JSON.stringify(db.prepare('SELECT id, hex(hash) h, principal_id, scopes, created_at, expires_at, revoked_at, last_used_at FROM identity_api_keys ORDER BY id').all()); } finally { db.close(); }
  };
  const raw = (): Record<string, unknown>[] => {
    const db = new DatabaseSync(path, { readOnly: true });
    try { return db.prepare('SELECT * FROM identity_api_keys').all() as Record<string, unknown>[]; } finally { db.close(); }
  };
  return { store, path, snapshot, raw };
}

async function refused(fn: () => unknown, code: string, status = 401): Promise<void> {
  await assert.rejects(async () => fn(), (err: { detail?: string | null; status?: number }) => {
    assert.equal(err.detail, code);
    assert.equal(err.status, status);
    return true;
  });
}

test('a key is shown once, stored only as its SHA-256 digest, and verifies to its principal and scopes', async (t) => {
  const { store, raw } = setup(t);
  const { key, id } = await store.create({ principalId: 'svc-etl', scopes: { datasets: ['claims'], actions: ['query'] } });
  assert.match(key, /^gh_[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(key.slice(3), 'base64url').length, 32);
  const rows = raw();
  assert.equal(rows.length, 1);
  assert.ok(!JSON.stringify(rows, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64url') : v)).includes(key.slice(3)), 'the key is not stored');
  assert.deepEqual(Buffer.from(rows[0]!['hash'] as Uint8Array), createHash('sha256').update(key).digest());
  assert.deepEqual(await store.verify(key), { id, principalId: 'svc-etl', scopes: { datasets: ['claims'], actions: ['query'] } });
  const listed = await store.list('svc-etl');
  assert.equal(listed.length, 1);
  assert.deepEqual(Object.keys(listed[0]!).sort(), ['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'principalId', 'revokedAt', 'scopes']);
  assert.ok(!JSON.stringify(listed).includes(key.slice(3)));
});

test('last use is recorded for access reviews, at most once per resolution window', async (t) => {
  const { store } = setup(t);
  const { key, id } = await store.create({ principalId: 'svc', scopes: { actions: ['query'] } });
  assert.equal((await store.get(id)).lastUsedAt, null);
  await store.verify(key, { now: at(10) });
  assert.equal((await store.get(id)).lastUsedAt, t0 + 10);
  await store.verify(key, { now: at(30) });
  assert.equal((await store.get(id)).lastUsedAt, t0 + 10, 'within 60 s: no write');
  await store.verify(key, { now: at(75) });
  assert.equal((await store.get(id)).lastUsedAt, t0 + 75);
});

test('a stolen key is refused right after revocation, also through another connection, and refusals change nothing', async (t) => {
  const { store, path, snapshot } = setup(t);
  const { key, id } = await store.create({ principalId: 'svc', scopes: { datasets: ['*'], actions: ['query'] } });
  const other = ApiKeyStore.open(path);
  t.after(() => other.close());
  await other.verify(key, { now: at(1) });
  assert.equal(await store.revoke(id, { now: at(2) }), true);
  assert.equal(await store.revoke(id), false);
  const before = snapshot();
  await refused(() => store.verify(key, { now: at(3) }), 'API_KEY_REVOKED');
  await refused(() => other.verify(key, { now: at(3) }), 'API_KEY_REVOKED');
  assert.equal(snapshot(), before);
  await refused(() => store.revoke('key_nope'), 'API_KEY_NOT_FOUND', 404);
  assert.equal((await store.list('svc'))[0]!.revokedAt, t0 + 2);
});

test('an expired key is refused with its own code and nothing changes', async (t) => {
  const { store, snapshot } = setup(t);
  const { key } = await store.create({ principalId: 'svc', scopes: { actions: ['query'] }, expiresAt: at(3600) });
  assert.equal((await store.verify(key, { now: at(3599) })).principalId, 'svc');
  const before = snapshot();
  await refused(() => store.verify(key, { now: at(3600) }), 'API_KEY_EXPIRED');
  assert.equal(snapshot(), before);
  await refused(() => store.create({ principalId: 'svc', scopes: {}, expiresAt: at(-1) }), 'IDENTITY_INPUT_INVALID', 400);
});

test('guessed, truncated, altered and foreign keys are all API_KEY_INVALID', async (t) => {
  const { store, snapshot } = setup(t);
  const { key } = await store.create({ principalId: 'svc', scopes: { actions: ['query'] } });
  const before = snapshot();
  const last = key.at(-1) === 'A' ? 'B' : 'A';
  for (const k of ['', 'gh_', key.slice(0, -1), key.slice(0, -1) + last, key.replace('gh_', 'gx_'), 'gh_' + 'A'.repeat(43), key + 'A', ` ${key}`, 'ghr_' + key.slice(3)]) {
    await refused(() => store.verify(k), 'API_KEY_INVALID');
  }
  await refused(() => store.verify(42 as unknown as string), 'API_KEY_INVALID');
  assert.equal(snapshot(), before);
});

test('scopes bound what a key may do: absent permits nothing, "*" permits all', async (t) => {
  const { store } = setup(t);
  const v = await store.verify((await store.create({ principalId: 'svc', scopes: { datasets: ['claims'], actions: ['query', 'estimate'] } })).key);
  assert.doesNotThrow(() => assertScope(v, { dataset: 'claims', action: 'query' }));
  await refused(() => assertScope(v, { dataset: 'patients', action: 'query' }), 'API_KEY_SCOPE_DENIED', 403);
  await refused(() => assertScope(v, { dataset: 'claims', action: 'export' }), 'API_KEY_SCOPE_DENIED', 403);
  assert.equal(scopesPermit({ actions: ['query'] }, { dataset: 'claims' }), false);
  assert.equal(scopesPermit({ datasets: ['*'], actions: ['*'] }, { dataset: 'anything', action: 'anything' }), true);
  await refused(() => store.create({ principalId: 'svc', scopes: { datasets: ['ok', 'bad name with spaces'] } }), 'IDENTITY_INPUT_INVALID', 400);
});
