/**
 * PostgreSQL datasets end to end (issue 7, docs/postgres.md): the demo workspace with its
 * data in a real PostgreSQL server (test/support/pg-demo.ts: least-privilege role, SELECT
 * only), queried through the full Gatehouse path — the same masks, row filters,
 * aggregation-only suppression, row caps, denials, differential privacy with its budget and
 * audit entries as the same workspace on DuckDB; and a workspace mixing a DuckDB dataset and
 * a PostgreSQL one refuses a join across them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { StoredAuditEntry, TransparencyLog } from '../src/audit/index.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { GatehouseError } from '../src/errors.ts';
import { startNode } from '../src/node/start.ts';
import type { Gatehouse, QueryResponse } from '../src/pipeline/gatehouse.ts';
import { auditShape, IVAN_REGION, IVAN_ROW_CAP, KEYS, PATIENTS, PURPOSE, readTruth, RHEA_MIN_GROUP, type Truth, type Who } from './support/conformance.ts';
import { createPgDemo, type PgDemo } from './support/pg-demo.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

interface Side { readonly gh: Gatehouse; readonly log: TransparencyLog; close(): Promise<void> }

let dir: string;
let cluster: PgCluster;
let truth: Truth;
let demo: PgDemo;
let duck: Side, pgSide: Side, mixed: Side;
const sides: Side[] = [];

async function open(name: string, wsDir: string): Promise<Side> {
  const node = await startNode({ workspaceDir: wsDir, auditDir: join(dir, `audit-${name}`), state: { kind: 'files', dir: join(dir, `state-${name}`) }, engineOptions: { poolSize: 2 }, demo: true });
  const s = { gh: node.gatehouse, log: node.audit, close: () => node.close() };
  sides.push(s);
  return s;
}

interface Result { readonly res: QueryResponse | null; readonly err: GatehouseError | null; readonly entry: StoredAuditEntry }

/** One request; asserts it appended exactly one audit entry, matching the outcome. */
async function ask(side: Side, who: Who, sql: string, purpose = PURPOSE[who]): Promise<Result> {
  const before = side.log.size;
  let res: QueryResponse | null = null;
  let err: GatehouseError | null = null;
  try {
    res = await side.gh.query({ credential: KEYS[who], source: '127.0.0.1', channel: 'test', sql, purpose });
  } catch (e) {
    assert.ok(e instanceof GatehouseError, String(e));
    err = e;
  }
  assert.equal(side.log.size, before + 1, 'one audit entry per request');
  const entry = side.log.leaf(before).entry;
  assert.equal(entry.action, 'query');
  assert.equal(entry.errorCode, err?.code ?? null);
  assert.equal(entry.decision === 'allow', res !== null);
  return { res, err, entry };
}

const answered = (r: Result): QueryResponse => { assert.ok(r.res, `expected an answer, got ${r.err?.code}: ${r.err?.message}`); return r.res; };
const column = (res: QueryResponse, name: string): unknown[] => { const i = res.columns.findIndex((c) => c.name === name); assert.ok(i >= 0); return res.rows.map((r) => r[i]); };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-pg-source-'));
  const duckWs = join(dir, 'ws-duckdb'), pgWs = join(dir, 'ws-postgres'), mixedWs = join(dir, 'ws-mixed');
  await createTestDemoWorkspace(duckWs, { patients: PATIENTS, keys: KEYS });
  cpSync(duckWs, pgWs, { recursive: true });
  cpSync(duckWs, mixedWs, { recursive: true });
  [cluster, truth] = await Promise.all([startPostgres(), readTruth(join(duckWs, 'data'))]);
  demo = await createPgDemo(cluster, pgWs);
  await createPgDemo(cluster, mixedWs, { datasets: ['claims'] });
  duck = await open('duckdb', duckWs);
  pgSide = await open('postgres', pgWs);
  mixed = await open('mixed', mixedWs);
});

after(async () => {
  for (const s of sides) await s.close();
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the demo workspace on PostgreSQL', () => {
  test('the workspace names a password-less URL and an environment variable, and the role can only read', async () => {
    const yaml = readFileSync(join(dir, 'ws-postgres', 'gatehouse.yaml'), 'utf8');
    assert.match(yaml, new RegExp(`postgres://${demo.role}@127\\.0\\.0\\.1:${cluster.port}/${demo.database}`));
    assert.ok(!yaml.includes(demo.password), 'the password is not in the workspace');
    assert.doesNotMatch(yaml, /parquet/);
    assert.deepEqual(Object.keys(demo.rows).sort(), ['claims', 'encounters', 'patients']);
    assert.equal(demo.rows.patients, truth.patients);
    assert.equal(demo.rows.claims, truth.totalClaims);
    const reader = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: demo.role, database: demo.database, password: demo.password });
    await reader.connect();
    try {
      const [{ rolsuper }] = (await reader.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).rows as [{ rolsuper: boolean }];
      assert.equal(rolsuper, false);
      await assert.rejects(reader.query("INSERT INTO public.claims (claim_id) VALUES (-1)"), /read-only transaction|permission denied/);
      await assert.rejects(reader.query('BEGIN READ WRITE; CREATE TABLE public.x (a int)'), /permission denied/);
      await reader.query('ROLLBACK');
    } finally {
      await reader.end();
    }
  });

  test('an insurer sees the last four digits of SSNs, the same digits as on DuckDB, only in its region', async () => {
    const sql = 'SELECT patient_id, ssn, region FROM patients ORDER BY patient_id';
    const onPg = answered(await ask(pgSide, 'ivan', sql));
    const onDuck = answered(await ask(duck, 'ivan', sql));
    assert.equal(onPg.rows.length, truth.usEastPatients);
    for (const s of column(onPg, 'ssn')) assert.match(String(s), /^\*+\d{4}$/);
    assert.deepEqual(new Set(column(onPg, 'region')), new Set([IVAN_REGION]));
    assert.deepEqual(onPg.rows, onDuck.rows);
  });

  test('an internal analyst sees keyed hashes of SSNs identical to those the DuckDB workspace gives for the same rows', async () => {
    const sql = 'SELECT patient_id, ssn FROM patients ORDER BY patient_id';
    const onPg = answered(await ask(pgSide, 'ada', sql));
    const onDuck = answered(await ask(duck, 'ada', sql));
    assert.equal(onPg.rows.length, truth.patients);
    for (const s of column(onPg, 'ssn')) assert.match(String(s), /^[0-9a-f]{64}$/);
    assert.deepEqual(onPg.rows, onDuck.rows);
    assert.equal(new Set(column(onPg, 'ssn')).size, truth.ssns.size, 'one hash per distinct SSN');
  });

  test('row filters hold on PostgreSQL against OR 1=1 and joins', async () => {
    const r = answered(await ask(pgSide, 'ivan', "SELECT region, count(*) AS n FROM patients WHERE region = 'us-west' OR 1=1 GROUP BY region"));
    assert.deepEqual(r.rows, [[IVAN_REGION, truth.usEastPatients]]);
    const j = answered(await ask(pgSide, 'ivan', 'SELECT count(*) AS n FROM claims c JOIN patients p ON p.patient_id = c.patient_id WHERE p.region <> c.region OR TRUE'));
    const d = answered(await ask(duck, 'ivan', 'SELECT count(*) AS n FROM claims c JOIN patients p ON p.patient_id = c.patient_id WHERE p.region <> c.region OR TRUE'));
    assert.deepEqual(j.rows, d.rows);
  });

  test('aggregation-only suppresses small groups and single patients on PostgreSQL as on DuckDB', async () => {
    const byZip = 'SELECT zip, count(*) AS n FROM patients GROUP BY zip';
    const onPg = answered(await ask(pgSide, 'rhea', byZip));
    for (const [, n] of onPg.rows) assert.ok(Number(n) >= RHEA_MIN_GROUP);
    assert.deepEqual(onPg.rows, answered(await ask(duck, 'rhea', byZip)).rows);
    // A single patient cannot be singled out: by id it is refused (unit ids are not filters
    // under aggregation-only), and both engines refuse it alike.
    const one = await ask(pgSide, 'rhea', `SELECT c.status, count(*) FROM patients p JOIN claims c ON c.patient_id = p.patient_id WHERE p.patient_id = ${truth.west.id} GROUP BY c.status`);
    assert.equal(one.err?.code, 'OBLIGATION_VIOLATION');
    assert.equal((await ask(duck, 'rhea', `SELECT c.status, count(*) FROM patients p JOIN claims c ON c.patient_id = p.patient_id WHERE p.patient_id = ${truth.west.id} GROUP BY c.status`)).err?.code, 'OBLIGATION_VIOLATION');
    const groups = answered(await ask(pgSide, 'rhea', 'SELECT status, count(*) AS n, round(avg(amount_paid), 2) AS paid FROM claims GROUP BY status ORDER BY status'));
    assert.deepEqual(groups.rows, answered(await ask(duck, 'rhea', 'SELECT status, count(*) AS n, round(avg(amount_paid), 2) AS paid FROM claims GROUP BY status ORDER BY status')).rows);
    const raw = await ask(pgSide, 'rhea', 'SELECT zip, sex FROM patients LIMIT 5');
    assert.equal(raw.err?.code, 'OBLIGATION_VIOLATION');
  });

  test('the row cap truncates a PostgreSQL result and refuses paging past it', async () => {
    assert.ok(truth.usEastClaims > IVAN_ROW_CAP, 'enough us-east claims to reach the cap');
    const r = answered(await ask(pgSide, 'ivan', 'SELECT claim_id FROM claims ORDER BY claim_id'));
    assert.equal(r.rows.length, IVAN_ROW_CAP);
    assert.equal(r.governance.truncated, true);
    assert.equal(r.governance.rowCap, IVAN_ROW_CAP);
    const paged = await ask(pgSide, 'ivan', `SELECT claim_id FROM claims ORDER BY claim_id OFFSET ${IVAN_ROW_CAP}`);
    assert.equal(paged.err?.code, 'ROW_CAP_EXCEEDED');
    assert.equal(paged.entry.decision, 'deny');
  });

  test('a dataset not granted is denied before PostgreSQL is asked, and audited as a denial', async () => {
    const r = await ask(pgSide, 'ivan', 'SELECT count(*) FROM encounters');
    assert.equal(r.err?.code, 'POLICY_DENIED');
    assert.equal(r.entry.decision, 'deny');
    assert.deepEqual(r.entry.datasets, ['encounters']);
  });

  test('a differentially private release on PostgreSQL is noisy, has intervals and charges the budget per query', async () => {
    const sql = 'SELECT department, count(*) AS n FROM encounters GROUP BY department';
    const first = answered(await ask(pgSide, 'rhea', sql));
    const second = answered(await ask(pgSide, 'rhea', sql));
    assert.equal(first.rows.length, 8, 'every public department group is released');
    assert.ok(first.intervals && first.intervals.length === 8);
    const p1 = first.governance.privacy!, p2 = second.governance.privacy!;
    assert.ok(p1 && p2, 'the governance block describes the privacy release');
    assert.equal(p1.epsilon, 1);
    assert.ok(p1.budget && p2.budget);
    assert.ok(p1.budget.spentEpsilon > 0 && p2.budget.spentEpsilon > p1.budget.spentEpsilon, `each query charges the budget: ${p1.budget.spentEpsilon} → ${p2.budget.spentEpsilon}`);
    assert.ok(p2.budget.spentEpsilon <= p2.budget.epsilon);
    // The same two releases on DuckDB charge exactly the same (the accountant does not depend on the engine).
    const d1 = answered(await ask(duck, 'rhea', sql)).governance.privacy!.budget!;
    const d2 = answered(await ask(duck, 'rhea', sql)).governance.privacy!.budget!;
    assert.deepEqual([d1.spentEpsilon, d2.spentEpsilon], [p1.budget.spentEpsilon, p2.budget.spentEpsilon]);
    assert.notDeepEqual(first.rows, second.rows, 'two releases draw fresh noise');
    first.rows.forEach((r, k) => {
      const iv = first.intervals![k]![1];
      assert.ok(iv && Number.isFinite(Number(r[1])) && iv[0] <= Number(r[1]) && Number(r[1]) <= iv[1], `the 95 % interval of ${String(r[0])} surrounds its noisy count`);
    });
  });

  test('every request leaves one audit entry with the same fields as the same request on DuckDB', async () => {
    const requests: [Who, string][] = [
      ['ivan', 'SELECT ssn, name FROM patients ORDER BY patient_id LIMIT 5'],
      ['ada', 'SELECT region, count(*) AS n FROM patients GROUP BY region ORDER BY region'],
      ['rhea', 'SELECT region, count(*) AS n FROM claims GROUP BY region ORDER BY region'],
      ['ivan', 'SELECT count(*) FROM encounters'],
      ['rhea', 'SELECT patient_id, count(*) FROM patients GROUP BY patient_id'],
      ['ada', "SELECT read_text('/etc/passwd')"],
      ['ivan', `SELECT claim_id FROM claims ORDER BY claim_id OFFSET ${IVAN_ROW_CAP}`],
    ];
    for (const [who, sql] of requests) {
      const a = await ask(pgSide, who, sql);
      const b = await ask(duck, who, sql);
      assert.deepEqual(auditShape(a.entry), auditShape(b.entry), sql);
      assert.equal(a.entry.channel, b.entry.channel);
      assert.equal(a.entry.resultDigest, b.entry.resultDigest, `${sql}: the released rows digest alike`);
      assert.equal(a.entry.reasons.length, b.entry.reasons.length, sql);
    }
  });
});

describe('a workspace mixing a DuckDB dataset and a PostgreSQL dataset', () => {
  test('refuses a join across the engines with SQL_UNSUPPORTED, naming both, and audits it', async () => {
    const r = await ask(mixed, 'ada', 'SELECT p.region, count(*) AS n FROM patients p JOIN claims c ON c.patient_id = p.patient_id GROUP BY p.region');
    assert.equal(r.err?.code, 'SQL_UNSUPPORTED');
    assert.match(r.err!.message, /patients \(in .*\) and claims \(in .*\); a query can only combine datasets that live in the same database/);
    assert.match(r.err!.hint ?? '', /query each database separately/);
    assert.doesNotMatch(r.err!.message, new RegExp(demo.password.replace(/[^\w]/g, '.')));
    assert.equal(r.entry.decision, 'error');
    const sub = await ask(mixed, 'ada', 'SELECT count(*) FROM patients WHERE patient_id IN (SELECT patient_id FROM claims)');
    assert.equal(sub.err?.code, 'SQL_UNSUPPORTED', 'a subquery across engines is a join too');
  });

  test('answers single-engine queries on either side exactly as the all-DuckDB workspace', async () => {
    for (const [who, sql] of [
      ['ada', 'SELECT status, count(*) AS n, round(sum(amount_paid), 2) AS paid FROM claims GROUP BY status ORDER BY status'],
      ['ivan', 'SELECT claim_id, region, amount_billed FROM claims ORDER BY claim_id LIMIT 20'],
      ['ada', 'SELECT patient_id, ssn FROM patients ORDER BY patient_id LIMIT 20'],
      ['ivan', 'SELECT count(*) AS n FROM patients'],
      ['rhea', 'SELECT e.department, count(*) AS n FROM encounters e GROUP BY e.department'],
    ] as [Who, string][]) {
      const m = answered(await ask(mixed, who, sql));
      const d = answered(await ask(duck, who, sql));
      assert.deepEqual(m.columns.map((c) => c.name), d.columns.map((c) => c.name), sql);
      if (who !== 'rhea') assert.deepEqual(m.rows, d.rows, sql); // rhea's encounters are DP: noisy
    }
  });
});
