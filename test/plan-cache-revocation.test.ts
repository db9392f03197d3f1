/**
 * Revocation beats the plan cache (issue 15, invariant 6). The governed plan of a query is
 * kept per (workspace state, principal as decided, purpose, obligations, SQL)
 * (src/operations/query/plan-cache.ts). An attacker whose access is withdrawn replays the
 * very request that was just answered from that cache, on HTTP and on the wire: each
 * revocation — service key revoked, session logged out, grant revoked, agreement ended,
 * elevation revoked, workspace reloaded — must act on that very next request.
 *
 * Every scenario first proves the cache answered the second identical request (its hit
 * counter moved), so the denial after the revocation is the cache being bypassed, not a
 * request that never reached it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { apiKeyDigest } from '../src/identity/digest.ts';
import { planCacheTotals } from '../src/operations/query/plan-cache.ts';
import { codeOf, demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';
import type { NodeHttp } from '../src/node/http.ts';
import type { WireServer } from '../src/wire/server.ts';

const META = { source: '127.0.0.1', channel: 'test' } as const;
const as = (credential: string) => ({ credential, ...META });
const PW = 'correct horse battery staple 42';

let fx: Fixture<NodeHttp, WireServer>;

before(async () => {
  fx = await demoFixture({
    patients: 300, governance: true, http: true, wire: true,
    edit: (ws) => {
      const y = join(ws, 'gatehouse.yaml');
      writeFileSync(y, `${readFileSync(y, 'utf8')}\nidentity:\n  elevation:\n    roles:\n      claims-auditor: { approvers: [data-owners], maxMinutes: 120 }\n`);
    },
  });
});
after(async () => { await fx.close(); });

/** POST /v1/query over a real socket: the status and the error code (or null). */
async function overHttp(credential: string, sql: string, purpose: string): Promise<{ status: number; code: string | null; rows: unknown[][] }> {
  const res = await fetch(`http://127.0.0.1:${fx.http.port}/v1/query`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${credential}` }, body: JSON.stringify({ sql, purpose }),
  });
  const body = await res.json() as { rows?: unknown[][]; error?: { code: string } };
  return { status: res.status, code: body.error?.code ?? null, rows: body.rows ?? [] };
}

async function wireClient(user: string, password: string, purpose: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: fx.wire.port, user, password, database: 'gatehouse', options: `-c gatehouse.purpose=${purpose}` });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** The SQLSTATE a wire query failed with, or 'OK'. */
async function stateOf(p: Promise<unknown>): Promise<string> {
  try { await p; return 'OK'; } catch (err) { return (err as { code?: string }).code ?? 'NO_CODE'; }
}

/** Runs `twice` (two identical requests) and asserts the second was a plan-cache hit. */
async function servedFromCache(twice: () => Promise<void>): Promise<void> {
  const before = planCacheTotals().hits;
  await twice();
  assert.ok(planCacheTotals().hits > before, 'the identical request was answered from the plan cache');
}

async function elevate(): Promise<string> {
  const r = await fx.gh.requestElevation(as(KEYS.ivan), { role: 'claims-auditor', purpose: 'claims-audit', minutes: 60, justification: 'audit ticket AUD-7' });
  return (await fx.gh.approveElevation(as(KEYS.olivia), r.requestId)).grantId;
}

async function revokeOrgGrant(dataset: string, purpose: string): Promise<void> {
  const { grants } = await fx.gh.governanceOp(as(KEYS.olivia), 'grant.list', { org: 'keystone-mutual', dataset }) as { grants: { id: string; purpose: string }[] };
  const g = grants.find((x) => x.purpose === purpose);
  assert.ok(g, `keystone-mutual holds a ${dataset}/${purpose} grant`);
  await fx.gh.governanceOp(as(KEYS.olivia), 'grant.revoke', { id: g.id, reason: 'test: revoked between two cached requests' });
}

// First, while every demo key still works (the tests below revoke some).
describe('erasure beats the plan cache', () => {
  it('a subject erased between two identical cached requests is gone from the very next answer, on HTTP and the wire', async () => {
    const sql = 'SELECT patient_id, zip FROM patients ORDER BY patient_id LIMIT 5';
    let first: unknown[][] = [];
    await servedFromCache(async () => { first = (await overHttp(KEYS.ada, sql, 'operations')).rows; await overHttp(KEYS.ada, sql, 'operations'); });
    assert.ok(first.length > 0, 'the analyst sees rows before the erasure');
    const subject = String(first[0]![0]);
    await fx.gh.recordErasure(as(KEYS.olivia), { unit: 'patient_id', value: subject });
    const after = (await overHttp(KEYS.ada, sql, 'operations')).rows;
    assert.ok(after.every((r) => String(r[0]) !== subject), 'the erased subject is not in the next answer');
    const issued = await fx.gh.issueConnectionPassword(as(KEYS.ada), { name: 'cache-erasure' });
    const c = await wireClient('ada', issued.password, 'operations');
    try {
      const r = await c.query(sql);
      assert.ok(r.rows.every((row: Record<string, unknown>) => String(row.patient_id) !== subject), 'nor on the wire');
    } finally { await c.end().catch(() => undefined); }
    // The node then reads a copy without the subject (docs/erasure.md) on a new engine, which
    // starts a fresh plan cache: wait for that swap so the cache checks below do not race it.
    await fx.gh.settleErasedCopies();
    assert.ok((await overHttp(KEYS.ada, sql, 'operations')).rows.every((r) => String(r[0]) !== subject), 'nor once the engine reads the erased copy');
  });
});

describe('the wire protocol: a revocation acts on the next identical request on an open connection', () => {
  it('refuses the next query once the connection password is revoked', async () => {
    const issued = await fx.gh.issueConnectionPassword(as(KEYS.ada), { name: 'cache-test' });
    const c = await wireClient('ada', issued.password, 'operations');
    try {
      const sql = 'SELECT department, count(*) FROM encounters GROUP BY department';
      await servedFromCache(async () => { await c.query(sql); await c.query(sql); });
      await fx.gh.revokeConnectionPassword(as(KEYS.ada), 'cache-test');
      assert.notEqual(await stateOf(c.query(sql)), 'OK');
    } finally { await c.end().catch(() => undefined); }
  });

  it('refuses the next query once the partner organisation\'s grant is revoked', async () => {
    const issued = await fx.gh.issueConnectionPassword(as(KEYS.ivan), { name: 'cache-grant' });
    const c = await wireClient('ivan', issued.password, 'claims-processing');
    try {
      const sql = 'SELECT region, count(*) FROM patients GROUP BY region';
      await servedFromCache(async () => { await c.query(sql); await c.query(sql); });
      await revokeOrgGrant('patients', 'claims-processing');
      assert.equal(await stateOf(c.query(sql)), '42501');
    } finally { await c.end().catch(() => undefined); }
  });

  it('refuses the privileged purpose once the elevation is revoked', async () => {
    const grantId = await elevate();
    const issued = await fx.gh.issueConnectionPassword(as(KEYS.ivan), { name: 'cache-elevated' });
    const c = await wireClient('ivan', issued.password, 'claims-audit');
    try {
      const sql = 'SELECT facility_region, count(*) FROM encounters GROUP BY facility_region';
      await servedFromCache(async () => { await c.query(sql); await c.query(sql); });
      await fx.gh.revokeElevation(as(KEYS.olivia), grantId);
      assert.equal(await stateOf(c.query(sql)), '42501');
    } finally { await c.end().catch(() => undefined); }
  });

  it('answers under the reloaded workspace: a principal moved to another region sees only that region\'s rows', async () => {
    const issued = await fx.gh.issueConnectionPassword(as(KEYS.ivan), { name: 'cache-reload' });
    const c = await wireClient('ivan', issued.password, 'claims-processing');
    try {
      const sql = 'SELECT DISTINCT region FROM claims ORDER BY region';
      await servedFromCache(async () => {
        assert.deepEqual((await c.query(sql)).rows, [{ region: 'us-east' }]);
        await c.query(sql);
      });
      const y = join(fx.wsDir, 'gatehouse.yaml');
      const yaml = readFileSync(y, 'utf8');
      const moved = yaml.replace('attributes: { org: keystone-mutual, region: us-east }', 'attributes: { org: keystone-mutual, region: us-west }');
      assert.notEqual(moved, yaml);
      writeFileSync(y, moved);
      assert.equal((await fx.gh.reload()).changed, true);
      assert.deepEqual((await c.query(sql)).rows, [{ region: 'us-west' }]);
    } finally { await c.end().catch(() => undefined); }
  });
});

describe('HTTP: a revocation acts on the next identical request', () => {
  it('refuses a revoked service key', async () => {
    const k = await fx.gh.adminCreateKey(as(KEYS.olivia), { principal: 'ada', datasets: ['encounters'] });
    const sql = 'SELECT department, count(*) FROM encounters GROUP BY department';
    await servedFromCache(async () => {
      assert.equal((await overHttp(k.key, sql, 'operations')).status, 200);
      assert.equal((await overHttp(k.key, sql, 'operations')).status, 200);
    });
    await fx.gh.adminRevokeKey(as(KEYS.olivia), k.id);
    const r = await overHttp(k.key, sql, 'operations');
    assert.equal(r.status, 401);
    assert.equal(r.rows.length, 0);
  });

  it('refuses a session token after logout', async () => {
    await fx.gh.adminCreateUser(as(KEYS.olivia), { principal: 'ada', password: PW });
    const t = await fx.gh.login(as(''), { principal: 'ada', password: PW });
    const sql = 'SELECT facility_region, count(*) FROM encounters GROUP BY facility_region';
    await servedFromCache(async () => {
      assert.equal((await overHttp(t.accessToken, sql, 'operations')).status, 200);
      assert.equal((await overHttp(t.accessToken, sql, 'operations')).status, 200);
    });
    await fx.gh.logout(as(t.accessToken));
    assert.equal((await overHttp(t.accessToken, sql, 'operations')).code, 'AUTH_INVALID');
  });

  it('refuses the privileged purpose once the elevation is revoked', async () => {
    const grantId = await elevate();
    const sql = 'SELECT department, count(*) FROM encounters GROUP BY department';
    await servedFromCache(async () => {
      assert.equal((await overHttp(KEYS.ivan, sql, 'claims-audit')).status, 200);
      assert.equal((await overHttp(KEYS.ivan, sql, 'claims-audit')).status, 200);
    });
    await fx.gh.revokeElevation(as(KEYS.olivia), grantId);
    assert.equal((await overHttp(KEYS.ivan, sql, 'claims-audit')).code, 'POLICY_DENIED');
  });

  it('refuses the next query once the grant is revoked', async () => {
    const sql = 'SELECT status, count(*) FROM claims GROUP BY status';
    await servedFromCache(async () => {
      assert.equal((await overHttp(KEYS.ivan, sql, 'claims-processing')).status, 200);
      assert.equal((await overHttp(KEYS.ivan, sql, 'claims-processing')).status, 200);
    });
    await revokeOrgGrant('claims', 'claims-processing');
    assert.equal((await overHttp(KEYS.ivan, sql, 'claims-processing')).code, 'POLICY_DENIED');
  });

  it('refuses the next query once the partner\'s agreement is terminated', async () => {
    await elevate();
    const sql = 'SELECT facility_region, count(*) FROM encounters GROUP BY facility_region';
    await servedFromCache(async () => {
      assert.equal((await overHttp(KEYS.ivan, sql, 'claims-audit')).status, 200);
      assert.equal((await overHttp(KEYS.ivan, sql, 'claims-audit')).status, 200);
    });
    const { agreements } = await fx.gh.governanceOp(as(KEYS.olivia), 'agreement.list', { partner: 'keystone-mutual' }) as { agreements: { id: string }[] };
    assert.ok(agreements.length > 0);
    for (const a of agreements) await fx.gh.governanceOp(as(KEYS.olivia), 'agreement.terminate', { id: a.id, reason: 'test: ended between two cached requests' });
    const r = await overHttp(KEYS.ivan, sql, 'claims-audit');
    assert.equal(r.code, 'POLICY_DENIED');
    assert.equal(r.rows.length, 0);
  });

  it('never reuses a differentially private plan: each query draws its own contribution-bounding seed', async () => {
    const sql = 'SELECT department, count(*) FROM encounters GROUP BY department';
    const before = planCacheTotals();
    assert.equal((await overHttp(KEYS.rhea, sql, 'research')).status, 200);
    assert.equal((await overHttp(KEYS.rhea, sql, 'research')).status, 200);
    const after = planCacheTotals();
    assert.equal(after.hits, before.hits);
    assert.equal(after.misses, before.misses + 2);
  });

  it('refuses an API key the reloaded workspace no longer lists', async () => {
    const sql = 'SELECT department, count(*) FROM encounters GROUP BY department';
    await servedFromCache(async () => {
      assert.equal((await overHttp(KEYS.ada, sql, 'operations')).status, 200);
      assert.equal((await overHttp(KEYS.ada, sql, 'operations')).status, 200);
    });
    const y = join(fx.wsDir, 'gatehouse.yaml');
    const yaml = readFileSync(y, 'utf8');
    const edited = yaml.replace(`apiKeySha256: [${apiKeyDigest(KEYS.ada)}]`, 'apiKeySha256: []');
    assert.notEqual(edited, yaml);
    writeFileSync(y, edited);
    await fx.gh.reload();
    assert.equal((await overHttp(KEYS.ada, sql, 'operations')).code, 'AUTH_INVALID');
    assert.equal(await codeOf(fx.query('ada', sql)), 'AUTH_INVALID');
  });
});

