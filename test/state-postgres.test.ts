/**
 * openPostgresState: versioned, idempotent migrations (also when several nodes start at
 * once), refusal of a schema newer than this code, a bounded pool, clear errors without
 * secrets, and fail-closed behaviour when PostgreSQL goes away.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { TransparencyLog } from '../src/audit/log.ts';
import { TEST_PASSPHRASE, record } from '../src/audit/testing/fixtures.ts';
import { openPostgresState, SCHEMA_VERSION } from '../src/state/postgres.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
let admin: pg.Pool;

before(async () => {
  cluster = await startPostgres();
  admin = new pg.Pool({ connectionString: cluster.superuserUrl, max: 2 });
});
after(async () => {
  await admin?.end();
  await cluster?.stop();
});

const urlWithoutPassword = (c: PgCluster): string => `postgres://postgres@127.0.0.1:${c.port}/postgres`;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('opening creates the gatehouse schema at the current version; opening again changes nothing', async () => {
  const s1 = await openPostgresState({ url: urlWithoutPassword(cluster), password: cluster.superuserPassword });
  assert.deepEqual([s1.schema, s1.schemaVersion], ['gatehouse', SCHEMA_VERSION]);
  await s1.close();
  const s2 = await openPostgresState({ url: cluster.superuserUrl });
  await s2.close();
  const versions = await admin.query('SELECT version FROM gatehouse.schema_version ORDER BY version');
  assert.deepEqual(versions.rows.map((r) => r.version), Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
  const tables = await admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'gatehouse' ORDER BY 1");
  assert.deepEqual(tables.rows.map((r) => r.table_name), [
    'airlock_requests', 'airlock_reviews', 'artefact_blobs', 'artefacts', 'attestation_challenges', 'attestation_evidence',
    'audit_checkpoint', 'audit_checkpoints', 'audit_entries', 'audit_head', 'budget_charges', 'budget_ledger', 'budget_losses', 'budget_targets', 'budget_windows', 'budgets',
    'data_keys', 'destroyed_keys', 'erasures',
    'gov_access_requests', 'gov_agreement_datasets', 'gov_agreement_purposes', 'gov_agreements', 'gov_audit_reports', 'gov_certifications',
    'gov_classification_proposals', 'gov_documents', 'gov_finding_notes', 'gov_findings', 'gov_grants', 'gov_incidents', 'gov_legal_holds',
    'gov_orgs', 'gov_retention_rules', 'gov_settings', 'gov_signatures', 'gov_training',
    'identity_api_keys', 'identity_connection_passwords', 'identity_elevation_grants', 'identity_elevation_requests', 'identity_login_failures',
    'identity_meta', 'identity_mfa_reset_requests', 'identity_recovery_codes', 'identity_refresh_tokens', 'identity_session_keys',
    'identity_sessions', 'identity_users',
    'job_approvals', 'job_runs', 'job_signers', 'jobs',
    'schema_version',
  ]);
});

test('eight nodes starting at once on an empty database apply each migration exactly once', async () => {
  const states = await Promise.all(Array.from({ length: 8 }, () => openPostgresState({ url: cluster.superuserUrl, schema: 'race', maxConnections: 2 })));
  for (const s of states) assert.equal(s.schemaVersion, SCHEMA_VERSION);
  await Promise.all(states.map((s) => s.close()));
  const versions = await admin.query('SELECT version FROM race.schema_version ORDER BY version');
  assert.deepEqual(versions.rows.map((r) => r.version), Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
});

test('a schema written by a newer Gatehouse is refused with a clear error, and nothing is changed', async () => {
  await admin.query('CREATE SCHEMA future');
  await admin.query('CREATE TABLE future.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  await admin.query('INSERT INTO future.schema_version (version) VALUES (1), ($1)', [SCHEMA_VERSION + 1]);
  await assert.rejects(openPostgresState({ url: cluster.superuserUrl, schema: 'future' }), (e: Error & { code?: string; detail?: string | null }) => {
    assert.equal(e.detail, 'STATE_SCHEMA_TOO_NEW');
    assert.match(e.message, new RegExp(`version ${SCHEMA_VERSION + 1}, but this Gatehouse knows versions up to ${SCHEMA_VERSION}: upgrade Gatehouse`));
    return true;
  });
  const tables = await admin.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'future'");
  assert.deepEqual(tables.rows.map((r) => r.table_name), ['schema_version']);
});

test('malformed configuration is refused before connecting', async () => {
  for (const [opts, pattern] of [
    [{ url: 'mysql://x@y/z' }, /postgres:\/\//],
    [{ url: 'postgres://[::1' }, /not a valid URL/],
    [{ url: cluster.superuserUrl, schema: 'Robert"); DROP SCHEMA public; --' }, /schema must be/],
    [{ url: cluster.superuserUrl, schema: 'pg_catalog' }, /schema must be/],
    [{ url: cluster.superuserUrl, maxConnections: 0 }, /maxConnections/],
    [{ url: cluster.superuserUrl, maxConnections: 1000 }, /maxConnections/],
    [{ url: cluster.superuserUrl, statementTimeoutMs: -1 }, /statementTimeoutMs/],
  ] as const) {
    await assert.rejects(openPostgresState(opts as never), (e: Error & { code?: string; detail?: string | null }) => e.detail === 'STATE_CONFIG_INVALID' && pattern.test(e.message));
  }
});

test('an unreachable server or a wrong password fails with STATE_UNAVAILABLE, naming the server but never the password', async () => {
  const secret = 'hunter2-very-secret';
  await assert.rejects(openPostgresState({ url: `postgres://postgres:${secret}@127.0.0.1:1/postgres`, connectTimeoutMs: 1000 }), (e: Error & { code?: string; detail?: string | null }) => {
    assert.equal(e.detail, 'STATE_UNAVAILABLE');
    assert.match(e.message, /127\.0\.0\.1:1\/postgres/);
    assert.ok(!e.message.includes(secret) && !String(e.stack).includes(secret));
    return true;
  });
  await assert.rejects(openPostgresState({ url: urlWithoutPassword(cluster), password: secret }), (e: Error & { code?: string; detail?: string | null }) => {
    assert.equal(e.detail, 'STATE_UNAVAILABLE');
    assert.match(e.message, /password authentication failed/);
    assert.ok(!e.message.includes(secret));
    return true;
  });
});

test('the pool is bounded: 60 concurrent charges on a node with maxConnections 3 never hold more than 3 connections', async () => {
  const state = await openPostgresState({ url: cluster.superuserUrl, schema: 'bounded', maxConnections: 3 });
  try {
    await state.budgets.defineBudget({ subject: 'org:acme', dataset: 'd', capRho: 100, window: null });
    let peak = 0;
    let done = false;
    const sampler = (async () => {
      while (!done) {
        const r = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'gatehouse' AND datname = 'postgres'");
        peak = Math.max(peak, r.rows[0].n);
        await new Promise((res) => setTimeout(res, 2));
      }
    })();
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => state.budgets.charge({ subject: 'org:acme', dataset: 'd', rho: 0.5, queryId: `q${i}` })));
    done = true;
    await sampler;
    assert.ok(outcomes.every((o) => o.ok));
    assert.ok(peak >= 1 && peak <= 3, `peak connections ${peak}`);
    assert.ok(state.pool.totalCount <= 3);
  } finally {
    await state.close();
  }
});

test('when PostgreSQL goes away, audit appends and budget charges fail closed, and nothing is acknowledged', { timeout: 60_000 }, async (t) => {
  const own = await startPostgres();
  t.after(() => own.stop());
  const state = await openPostgresState({ url: own.superuserUrl, connectTimeoutMs: 1000 });
  const dir = tempDir(t);
  const log = await TransparencyLog.openOn(state.auditStorage, {
    keyDir: join(dir, 'keys'), pseudonymKeyDir: join(dir, 'pk'), passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 60_000,
  });
  await state.budgets.defineBudget({ subject: 'org:acme', dataset: 'd', capRho: 1, window: null });
  assert.equal((await log.append(record(1))).auditId, '0');
  await own.stop();
  await assert.rejects(log.append(record(2)), { code: 'AUDIT_UNAVAILABLE' });
  await assert.rejects(state.budgets.charge({ subject: 'org:acme', dataset: 'd', rho: 0.1, queryId: 'q' }), { detail: 'BUDGET_STORE_UNAVAILABLE' });
  await assert.rejects(log.checkpoint(), { code: 'AUDIT_UNAVAILABLE' });
  assert.equal(log.size, 1);
  await log.close().catch(() => undefined);
  await state.close();
});

test('throughput: one node appends 5,000 audit entries and two nodes 2 × 2,500 (figures printed)', { timeout: 120_000 }, async (t) => {
  const open = async (schema: string, dir: string) => {
    const state = await openPostgresState({ url: cluster.superuserUrl, schema, maxConnections: 4 });
    const log = await TransparencyLog.openOn(state.auditStorage, {
      keyDir: join(dir, 'keys'), pseudonymKeyDir: join(dir, 'pk'), passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 200,
    });
    return { state, log };
  };
  const dir = tempDir(t);
  const one = await open('perf1', dir);
  let start = performance.now();
  // 50 waves of 100 concurrent appends (as 100 concurrent requests would).
  for (let w = 0; w < 50; w++) await Promise.all(Array.from({ length: 100 }, (_, i) => one.log.append(record(w * 100 + i))));
  const single = 5000 / ((performance.now() - start) / 1000);
  await one.log.close();
  await one.state.close();

  const a = await open('perf2', dir);
  const b = await open('perf2', dir);
  start = performance.now();
  await Promise.all([a, b].map(async (n) => {
    for (let w = 0; w < 25; w++) await Promise.all(Array.from({ length: 100 }, (_, i) => n.log.append(record(w * 100 + i))));
  }));
  const dual = 5000 / ((performance.now() - start) / 1000);
  await a.log.refresh();
  assert.equal(a.log.size, 5000);
  for (const n of [a, b]) { await n.log.close(); await n.state.close(); }
  t.diagnostic(`audit appends on PostgreSQL: one node ${Math.round(single)}/s, two nodes together ${Math.round(dual)}/s`);
  console.log(`# audit appends on PostgreSQL: one node ${Math.round(single)}/s, two nodes together ${Math.round(dual)}/s`);
});
