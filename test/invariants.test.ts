/**
 * The ten security invariants of DESIGN.md, one describe block each, named as in the design.
 * Each test would fail if its invariant broke.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { codeOf, demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';
import { DuckDbEngine } from '../src/engine/duckdb.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { bindQuery } from '../src/query/bind.ts';
import { parseSql, loadParser } from '../src/query/parse.ts';
import { govern } from '../src/query/govern/index.ts';
import { renderSelect } from '../src/query/render/sql.ts';
import { duckdbDialect } from '../src/query/render/duckdb.ts';
import { WorkspaceInvalid } from '../src/workspace/load.ts';
import type { AuditSink } from '../src/audit/types.ts';

let fx: Fixture;
let rawSsns: Set<string>;

before(async () => {
  fx = await demoFixture();
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const r = await c.runAndReadAll(`SELECT ssn FROM read_parquet('${join(fx.wsDir, 'data', 'patients.parquet')}')`);
  rawSsns = new Set(r.getRowsJS().map((x) => String(x[0])));
  c.closeSync();
  db.closeSync();
});
after(async () => { await fx.close(); });

function leaksSsn(v: unknown): string | null {
  const text = JSON.stringify(v);
  for (const s of rawSsns) if (text.includes(s)) return s;
  return null;
}

describe('invariant 1: default deny', () => {
  it('denies a principal that no policy permits, for the purpose it declared', async () => {
    assert.equal(await codeOf(fx.query('ivan', 'SELECT count(*) FROM encounters')), 'POLICY_DENIED');
    assert.equal(await codeOf(fx.query('rhea', 'SELECT count(*) FROM patients', 'operations')), 'POLICY_DENIED');
  });

  it('keeps a column the source has but the catalog does not list invisible, even to SELECT *', async () => {
    const local = await demoFixture({
      patients: 300,
      edit: (ws) => {
        const y = join(ws, 'gatehouse.yaml');
        writeFileSync(y, readFileSync(y, 'utf8').replace(/^\s+phone: .*\n/m, ''));
      },
    });
    try {
      assert.equal(await codeOf(local.query('ada', 'SELECT phone FROM patients')), 'SQL_UNKNOWN_COLUMN');
      const r = await local.query('ada', 'SELECT * FROM patients LIMIT 1');
      assert.ok(!r.columns.some((c) => c.name === 'phone'));
      assert.ok(!/\(\d{3}\) 555-/.test(JSON.stringify(r.rows)));
    } finally {
      await local.close();
    }
  });

  it('denies every dataset of a query when any one is denied', async () => {
    assert.equal(await codeOf(fx.query('ivan', 'SELECT c.claim_id FROM claims c JOIN encounters e ON e.encounter_id = c.encounter_id')), 'POLICY_DENIED');
  });
});

describe('invariant 2: no raw SQL reaches an engine', () => {
  before(async () => { await loadParser(); });

  it('renders only quoted identifiers and escaped literals from the IR', async () => {
    const l = await loadWorkspace(fx.wsDir);
    const ws = l.workspace;
    const bound = bindQuery(parseSql(`SELECT name AS "we""ird", 'it''s; DROP TABLE x; --' AS s FROM patients p WHERE p.region = 'us-east'`), { dataset: (n) => ws.datasets.get(n) });
    const g = govern(bound, { principal: ws.principals.get('ada')!, datasets: ws.datasets, obligations: new Map([['patients', []]]), rowFilters: l.rowFilters, defaultRowCap: 10 });
    const sql = renderSelect(g.query, duckdbDialect({ sourceOf: (d) => `"gh_ds_${d}"`, hashKey: ws.hashKey }));
    assert.match(sql, /AS "we""ird"/);
    assert.match(sql, /'it''s; DROP TABLE x; --'/);
    assert.match(sql, /FROM "gh_ds_patients"/);
    assert.doesNotMatch(sql, /SELECT \*/);
  });

  it('rejects syntax it does not know instead of passing it through', async () => {
    for (const sql of [
      'VALUES (1), (2)',
      'SELECT * FROM patients TABLESAMPLE SYSTEM (10)',
      'SELECT region FROM patients FOR UPDATE',
      'SELECT ARRAY[1,2]',
      "SELECT 'a' SIMILAR TO 'b'",
      'WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r',
    ]) {
      const code = await codeOf(fx.query('ada', sql));
      assert.ok(['SQL_UNSUPPORTED', 'SQL_SYNTAX'].includes(code), `${sql} → ${code}`);
    }
  });

  it('cannot reach the engine\'s own table names', async () => {
    assert.equal(await codeOf(fx.query('ada', 'SELECT * FROM gh_ds_patients')), 'SQL_UNKNOWN_DATASET');
    assert.equal(await codeOf(fx.query('ada', 'SELECT * FROM main.gh_ds_patients')), 'SQL_UNKNOWN_DATASET', 'only the public schema names datasets');
  });
});

describe('invariant 3: masks apply at every reference', () => {
  const probes: [string, string][] = [
    ['WHERE', `SELECT count(*) FROM patients WHERE ssn = '%SSN%'`],
    ['LIKE', `SELECT count(*) FROM patients WHERE ssn LIKE '%PREFIX%%'`],
    ['JOIN', `SELECT count(*) FROM patients a JOIN patients b ON a.ssn = b.ssn AND a.patient_id <> b.patient_id WHERE a.ssn = '%SSN%'`],
    ['GROUP BY', `SELECT ssn, count(*) FROM patients GROUP BY ssn HAVING ssn = '%SSN%'`],
    ['ORDER BY', `SELECT ssn FROM patients ORDER BY ssn LIMIT 50`],
    ['CASE', `SELECT count(*) FROM patients WHERE CASE WHEN ssn = '%SSN%' THEN TRUE ELSE FALSE END`],
    ['window', `SELECT ssn, row_number() OVER (PARTITION BY ssn ORDER BY ssn) FROM patients LIMIT 20`],
    ['subquery', `SELECT count(*) FROM patients WHERE patient_id IN (SELECT patient_id FROM patients WHERE ssn = '%SSN%')`],
    ['CTE', `WITH s AS (SELECT ssn FROM patients) SELECT count(*) FROM s WHERE ssn = '%SSN%'`],
    ['derived table', `SELECT x FROM (SELECT ssn AS x FROM patients) t WHERE x LIKE '%PREFIX%%' LIMIT 5`],
    ['function', `SELECT substr(ssn, 1, 3), length(ssn), replace(ssn, '-', '') FROM patients LIMIT 20`],
  ];
  for (const [where, template] of probes) {
    it(`never lets a predicate or expression in ${where} see a raw SSN`, async () => {
      const ssn = [...rawSsns][7]!;
      const sql = template.replace('%SSN%', ssn).replace('%PREFIX%', ssn.slice(0, 6));
      const r = await fx.query('ivan', sql);
      assert.equal(leaksSsn(r), null);
      if (/count\(\*\)/.test(sql) && !/GROUP BY/.test(sql)) assert.deepEqual(r.rows, [[0]], 'a predicate on the raw value must match nothing');
      if (/GROUP BY/.test(sql)) assert.equal(r.rows.length, 0);
    });
  }

  it('hashes consistently across datasets so joins on a hashed key still work', async () => {
    const local = await demoFixture({
      patients: 300,
      edit: (ws) => {
        const y = join(ws, 'gatehouse.yaml');
        writeFileSync(y, readFileSync(y, 'utf8').replace('masks: { ssn: hash }', 'masks: { ssn: hash, patient_id: hash }'));
      },
    });
    try {
      const joined = await local.query('ada', 'SELECT count(*) FROM patients p JOIN encounters e ON e.patient_id = p.patient_id');
      const plain = await local.query('ada', 'SELECT count(*) FROM encounters');
      assert.deepEqual(joined.rows, plain.rows);
      const ids = await local.query('ada', 'SELECT patient_id FROM patients LIMIT 3');
      for (const [id] of ids.rows) assert.match(String(id), /^[0-9a-f]{64}$/);
    } finally {
      await local.close();
    }
  });
});

describe('invariant 4: engines are locked down', () => {
  let engine: DuckDbEngine;
  before(async () => { engine = await DuckDbEngine.open((await loadWorkspace(fx.wsDir)).workspace, { poolSize: 1 }); });
  after(async () => { await engine.close(); });

  it('cannot read files even when SQL reaches it directly', async () => {
    for (const sql of ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM read_text('/etc/hostname')", "SELECT * FROM '/etc/passwd'", "SELECT * FROM glob('/*')"]) {
      await assert.rejects(engine.run(sql, { timeoutMs: 5000 }), (e: Error) => !/root:x/.test(e.message));
    }
  });

  it('cannot change its configuration, attach databases or load extensions', async () => {
    for (const sql of ['SET enable_external_access = true', 'SET lock_configuration = false', "ATTACH '/tmp/x.duckdb' AS x", 'INSTALL httpfs', 'LOAD httpfs']) {
      await assert.rejects(engine.run(sql, { timeoutMs: 5000 }), (e: unknown) => e instanceof Error, sql);
    }
    const r = await engine.run("SELECT current_setting('enable_external_access'), current_setting('lock_configuration')", { timeoutMs: 5000 });
    assert.deepEqual(r.rows, [[false, true]]);
  });

  it('stops a statement that runs past the timeout', async () => {
    const t0 = Date.now();
    await assert.rejects(engine.run('SELECT count(*) FROM range(100000000000) a', { timeoutMs: 300 }), (e: { code?: string }) => e.code === 'QUERY_TIMEOUT');
    assert.ok(Date.now() - t0 < 5000);
  });
});

describe('invariant 5: no bulk export by the back door', () => {
  it('caps rows and says the result was truncated', async () => {
    const r = await fx.query('ivan', 'SELECT claim_id FROM claims');
    assert.equal(r.rows.length, 1000);
    assert.equal(r.governance.truncated, true);
  });

  it('refuses OFFSET paging past the cap', async () => {
    assert.equal(await codeOf(fx.query('ivan', 'SELECT claim_id FROM claims ORDER BY claim_id LIMIT 10 OFFSET 1000')), 'ROW_CAP_EXCEEDED');
    const r = await fx.query('ivan', 'SELECT claim_id FROM claims ORDER BY claim_id LIMIT 500 OFFSET 900');
    assert.equal(r.rows.length, 100);
  });

  it('holds aggregation-only for row-level, raw-value and nested queries', async () => {
    for (const sql of [
      'SELECT * FROM encounters',
      'SELECT max(cost) FROM encounters',
      'SELECT count(*) FROM (SELECT * FROM encounters) t',
      'SELECT diagnosis, sum(CASE WHEN encounter_id = 1 THEN cost END) FROM encounters GROUP BY diagnosis',
    ]) assert.equal(await codeOf(fx.query('rhea', sql)), 'OBLIGATION_VIOLATION', sql);
    const r = await fx.query('rhea', 'SELECT encounter_id, count(*) FROM encounters GROUP BY encounter_id');
    assert.equal(r.rows.length, 0, 'groups of one patient never leave the engine');
  });
});

describe('invariant 6: revocation is immediate', () => {
  it('denies the very next request after a policy is removed and reloaded', async () => {
    const local = await demoFixture({ patients: 300 });
    try {
      await local.query('ivan', 'SELECT count(*) FROM claims');
      rmSync(join(local.wsDir, 'policies', 'insurer.cedar'));
      await local.gh.reload();
      assert.equal(await codeOf(local.query('ivan', 'SELECT count(*) FROM claims')), 'POLICY_DENIED');
    } finally {
      await local.close();
    }
  });

  it('rejects a removed API key on the next request', async () => {
    const local = await demoFixture({ patients: 300 });
    try {
      await local.query('ada', 'SELECT 1');
      const y = join(local.wsDir, 'gatehouse.yaml');
      writeFileSync(y, readFileSync(y, 'utf8').replace(/(ada:\n(?:.*\n)*?\s+apiKeySha256: )\[[0-9a-f]+\]/, '$1[]'));
      await local.gh.reload();
      assert.equal(await codeOf(local.query('ada', 'SELECT 1')), 'AUTH_INVALID');
    } finally {
      await local.close();
    }
  });
});

describe('invariant 7: fail closed', () => {
  it('fails the request and returns no rows when the audit log cannot record it', async () => {
    const broken: AuditSink = { append: async () => { throw new Error('disk full'); }, close: async () => {} };
    const local = await demoFixture({ patients: 300, audit: broken });
    try {
      await assert.rejects(local.query('ada', 'SELECT name FROM patients LIMIT 1'), (e: { code?: string; message: string }) => e.code === 'AUDIT_UNAVAILABLE' && !e.message.includes('disk full'));
    } finally {
      await local.close();
    }
  });
});

describe('invariant 8: every request leaves exactly one audit entry', () => {
  const cases: [string, () => Promise<unknown>, string][] = [
    ['an allowed query', () => fx.query('ada', 'SELECT count(*) FROM patients'), 'allow'],
    ['a denied query', () => fx.query('ivan', 'SELECT count(*) FROM encounters'), 'deny'],
    ['a malformed query', () => fx.query('ada', 'SELEC oops'), 'error'],
    ['an unauthenticated query', () => fx.gh.query({ credential: null, sql: 'SELECT 1', purpose: 'x', source: '127.0.0.1', channel: 'test' }), 'deny'],
    ['an obligation violation', () => fx.query('rhea', 'SELECT * FROM patients'), 'deny'],
  ];
  for (const [what, run, decision] of cases) {
    it(`records ${what} once, as ${decision}`, async () => {
      const before = fx.log.size;
      await run().catch(() => undefined);
      assert.equal(fx.log.size, before + 1);
      const e = fx.log.leaf(before).entry;
      assert.equal(e.decision, decision);
      assert.ok(e.policyVersion?.startsWith('sha256:'));
    });
  }

  it('records who, what, purpose, obligations, fingerprint and result digest for an allowed query', async () => {
    const r = await fx.query('ivan', 'SELECT ssn FROM patients LIMIT 2');
    const e = fx.log.leaf(Number(r.governance.auditId)).entry;
    assert.equal(e.purpose, 'claims-processing');
    assert.deepEqual(e.datasets, ['patients']);
    assert.deepEqual(e.columns, ['patients.ssn']);
    assert.ok(e.obligations.includes('mask:patients.ssn=last4'));
    assert.match(e.sqlFingerprint!, /^sha256:[0-9a-f]{64}$/);
    assert.match(e.resultDigest!, /^sha256:[0-9a-f]{64}$/);
    assert.equal(e.rowsReturned, 2);
    assert.notEqual(e.principal, 'ivan', 'the log keeps a pseudonym, not the principal id');
  });
});

describe('invariant 9: secrets never appear in logs, errors or audit entries', () => {
  it('keeps API keys and the hash key out of responses, errors and the audit log', async () => {
    const hashKey = readFileSync(join(fx.wsDir, 'secrets', 'hash.key'), 'utf8').trim();
    const outputs: string[] = [];
    outputs.push(JSON.stringify(await fx.query('ada', 'SELECT ssn FROM patients LIMIT 3')));
    for (const sql of ["SELECT cast(ssn AS INTEGER) + 'x' FROM patients", 'SELECT nosuch FROM patients', `SELECT '${KEYS.ivan}'::int`]) {
      try { await fx.query('ada', sql); } catch (e) { outputs.push(JSON.stringify(e), (e as Error).message); }
    }
    try { await fx.gh.query({ credential: `${KEYS.ada}x`, sql: 'SELECT 1', purpose: 'operations', source: '127.0.0.1', channel: 'test' }); } catch (e) { outputs.push(JSON.stringify(e), (e as Error).message); }
    for (let i = 0; i < fx.log.size; i++) outputs.push(JSON.stringify(fx.log.leaf(i).entry));
    const all = outputs.join('\n');
    assert.ok(!all.includes(hashKey), 'hash key leaked');
    for (const k of Object.values(KEYS)) assert.ok(!all.includes(k), 'API key leaked');
  });

  it('stores the log signing key encrypted', () => {
    const keyDir = join(fx.dir, 'audit', 'keys');
    for (const f of readdirSync(keyDir)) {
      const text = readFileSync(join(keyDir, f), 'utf8');
      assert.doesNotMatch(text, /PRIVATE KEY/);
    }
  });
});

describe('invariant 10: bad input gets a clear error and changes nothing', () => {
  it('answers malformed SQL with a position and no engine work', async () => {
    await assert.rejects(fx.query('ada', 'SELECT FROM WHERE'), (e: { code?: string; message: string }) => e.code === 'SQL_SYNTAX' && /at character \d+/.test(e.message));
  });

  it('reports every workspace problem with file and line, and serves nothing', async () => {
    const local = await demoFixture({ patients: 300 });
    try {
      const y = join(local.wsDir, 'gatehouse.yaml');
      const good = readFileSync(y, 'utf8');
      writeFileSync(y, good.replace('mask: last4', 'mask: year').replace('classification: internal }', 'classification: secret }'));
      writeFileSync(join(local.wsDir, 'policies', 'bad.cedar'), 'permit (principal, action == Action::"query", resource) when { principal.nosuch == "x" };\n');
      await assert.rejects(loadWorkspace(local.wsDir), (e: WorkspaceInvalid) => {
        const text = e.problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n');
        assert.match(text, /gatehouse\.yaml:\d+: datasets\.patients\.columns\.ssn\.mask: mask "truncate" cannot apply to a VARCHAR column/);
        assert.match(text, /classification: must be one of/);
        assert.match(text, /bad\.cedar:1: Cedar policy fails schema validation/);
        return true;
      });
      const before = local.gh.policyVersion;
      await assert.rejects(local.gh.reload());
      assert.equal(local.gh.policyVersion, before, 'the running version stays in force');
      await local.query('ada', 'SELECT 1');
    } finally {
      await local.close();
    }
  });
});
