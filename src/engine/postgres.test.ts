/**
 * PostgreSQL as an engine, against a real server (test/support/postgres.ts): the same
 * governed IR rendered for DuckDB and for PostgreSQL over the same rows gives the same
 * results; the engine is read-only, time-limited, single-statement and bounded; roles that
 * could write are refused at open; errors never quote a value.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../test/support/postgres.ts';
import { GatehouseError } from '../errors.ts';
import { bindQuery } from '../query/bind.ts';
import { govern } from '../query/govern/index.ts';
import { loadParser, parseSql } from '../query/parse.ts';
import { renderMask, type KnownMaskSpec } from '../query/masks/registry.ts';
import { renderSelect } from '../query/render/sql.ts';
import { parseRowFilter } from '../workspace/validate.ts';
import { WorkspaceInvalid } from '../workspace/load.ts';
import type { ColumnDef, ColumnType, DatasetDef, DatasetSource, MaskSpec, ObligationDef, PrincipalDef, Workspace } from '../model/types.ts';
import { DuckDbEngine } from './duckdb.ts';
import type { CellValue, Engine } from './engine.ts';
import { PostgresEngine } from './postgres.ts';
import { openEngines } from './router.ts';

const READER_PASSWORD = 'reader-pw-7f3a';
const HASH_KEY = Buffer.from('0123456789abcdef0123456789abcdef-test-key');

let cluster: PgCluster;
let dir: string;
let admin: pg.Client;
let readerUrl: string;
let pgEngine: PostgresEngine;
let duck: DuckDbEngine;
let wsPg: Workspace;
let wsDuck: Workspace;

const col = (name: string, type: ColumnType, mask: KnownMaskSpec | null = null): ColumnDef => ({ name, type, classification: 'internal', tags: [], mask, bounds: null, description: null });

const PATIENT_COLUMNS = [
  col('patient_id', 'BIGINT'), col('name', 'VARCHAR', { kind: 'hash' }), col('ssn', 'VARCHAR', { kind: 'last4' }),
  col('email', 'VARCHAR', { kind: 'email_domain' }), col('zip', 'VARCHAR'), col('age', 'INTEGER'),
  col('age_band', 'INTEGER', { kind: 'bucket', width: 10 }), col('dob', 'DATE', { kind: 'truncate', unit: 'year' }),
  col('admitted', 'TIMESTAMP'), col('cost', 'DOUBLE'), col('cost_r', 'DOUBLE', { kind: 'round', step: 5 }),
  col('active', 'BOOLEAN'), col('note', 'VARCHAR'), col('secret', 'VARCHAR', { kind: 'redact' }), col('gone', 'VARCHAR', { kind: 'null' }),
];
const VISIT_COLUMNS = [col('visit_id', 'BIGINT'), col('patient_id', 'BIGINT'), col('kind', 'VARCHAR'), col('cost', 'DOUBLE'), col('visit_date', 'DATE')];

// Not here, because the engines differ (docs/postgres.md): '' (the CSV reader makes it NULL), 'NaN'.
const NOTES = ['12', ' 7 ', '1e2', '2.5', '-3.5', 'abc', '2020-02-30', '2021-03-04', '2024-02-29 10:11:12', ' ', 'true', 'no', '-0', '99999999999999999999', '3.4e39', '1e-400'];

function patients(n: number): (string | number | boolean | null)[][] {
  const rows: (string | number | boolean | null)[][] = [];
  for (let i = 1; i <= n; i++) {
    const age = (i * 37) % 90;
    const day = String(1 + (i % 28)).padStart(2, '0');
    const month = String(1 + (i % 12)).padStart(2, '0');
    rows.push([
      i, i % 17 === 0 ? null : `Patient ${i % 50}`, `${100 + (i % 900)}-${10 + (i % 89)}-${1000 + i}`,
      i % 13 === 0 ? 'no-at-sign' : `p${i}@${['example.org', 'mail.test', 'hospital.example'][i % 3]}`,
      String(10000 + (i % 7) * 1111), i % 19 === 0 ? null : age, age, `19${String(40 + (i % 60)).padStart(2, '0')}-${month}-${day}`,
      `2024-${month}-${day} ${String(i % 24).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:05`,
      Math.round(((i * 7919) % 100_000) / 7) / 100, Math.round(((i * 7919) % 100_000) / 7) / 100, i % 3 !== 0,
      NOTES[i % NOTES.length]!, `s${i}`, `g${i}`,
    ]);
  }
  return rows;
}

function visits(n: number): (string | number | null)[][] {
  const rows: (string | number | null)[][] = [];
  for (let i = 1; i <= n; i++) rows.push([i, 1 + ((i * 31) % 240), ['er', 'clinic', 'lab'][i % 3]!, (i * 13) % 500 + 0.25, `2024-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`]);
  return rows;
}

function csv(rows: readonly (readonly (string | number | boolean | null)[])[], header: readonly string[]): string {
  const cell = (v: string | number | boolean | null): string => (v === null ? '' : typeof v === 'string' ? `"${v.replace(/"/g, '""')}"` : String(v));
  return [header.join(','), ...rows.map((r) => r.map(cell).join(','))].join('\n') + '\n';
}

function workspace(sources: Record<string, DatasetSource>): Workspace {
  const ds = (name: string, columns: ColumnDef[]): DatasetDef => ({ name, description: null, source: sources[name]!, classification: 'internal', tags: [], privacyUnit: 'patient_id', region: null, owner: null, purposes: [], columns });
  return {
    dir, name: 't', defaults: { rowCap: 100_000, statementTimeoutMs: 10_000, memoryLimit: '1GB' },
    datasets: new Map([['patients', ds('patients', PATIENT_COLUMNS)], ['visits', ds('visits', VISIT_COLUMNS)]]),
    obligations: new Map(), principals: new Map(), policyFiles: new Map(), cedarSchema: '', hashKey: HASH_KEY, policyVersion: 'sha256:test',
  };
}

const principal: PrincipalDef = { id: 'analyst', kind: 'user', displayName: null, groups: [], attributes: { region: 'north' }, apiKeySha256: [] };
const filtered: ObligationDef = { name: 'no-9999', rowFilter: "zip <> '16666'", aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [] };

/** parse → bind → govern (masks and a row filter on every dataset) → render for one engine. */
function governed(sql: string, engine: Engine): string {
  const ws = engine === duck ? wsDuck : wsPg;
  const bound = bindQuery(parseSql(sql), { dataset: (n) => ws.datasets.get(n) });
  const g = govern(bound, {
    principal, datasets: ws.datasets, defaultRowCap: 100_000,
    obligations: new Map(bound.datasets.map((d) => [d, d === 'patients' ? [filtered] : []])),
    rowFilters: new Map([[filtered.name, parseRowFilter(filtered.rowFilter!)]]),
  });
  return renderSelect(g.query, engine.dialect);
}

function norm(v: CellValue): CellValue {
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : Number.isInteger(v) ? v : Number(v.toPrecision(10));
  return v;
}

async function both(sql: string): Promise<{ duck: CellValue[][]; pg: CellValue[][] }> {
  const [a, b] = await Promise.all([duck.run(governed(sql, duck), { timeoutMs: 10_000 }), pgEngine.run(governed(sql, pgEngine), { timeoutMs: 10_000 })]);
  return { duck: a.rows.map((r) => r.map(norm)), pg: b.rows.map((r) => r.map(norm)) };
}

before(async () => {
  await loadParser();
  dir = mkdtempSync(join(tmpdir(), 'gh-pg-engine-'));
  cluster = await startPostgres();
  const root = new pg.Client({ connectionString: cluster.superuserUrl });
  await root.connect();
  await root.query('CREATE DATABASE hospital');
  await root.end();
  admin = new pg.Client({ connectionString: cluster.superuserUrl.replace(/\/postgres$/, '/hospital') });
  await admin.connect();
  await admin.query(`
    CREATE TABLE public.patients (patient_id bigint PRIMARY KEY, name text, ssn text, email text, zip varchar(10), age integer, age_band integer, dob date,
      admitted timestamp, cost double precision, cost_r numeric(12,2), active boolean, note text, secret text, gone text);
    CREATE TABLE public.visits (visit_id bigint PRIMARY KEY, patient_id bigint, kind text, cost double precision, visit_date date);
    CREATE ROLE gatehouse_reader LOGIN PASSWORD '${READER_PASSWORD}';
    GRANT SELECT ON public.patients, public.visits TO gatehouse_reader;
    CREATE ROLE gh_writer LOGIN PASSWORD 'writer-pw';
    GRANT SELECT, INSERT ON public.patients, public.visits TO gh_writer;
    CREATE ROLE gh_owner LOGIN PASSWORD 'owner-pw';
    CREATE TABLE public.owned (x int);
    ALTER TABLE public.owned OWNER TO gh_owner;
    REVOKE ALL ON public.owned FROM gh_owner;
    GRANT SELECT ON public.owned TO gh_owner;
  `);
  const p = patients(240), v = visits(600);
  const insert = async (table: string, rows: readonly (readonly unknown[])[]): Promise<void> => {
    const width = rows[0]!.length;
    for (let i = 0; i < rows.length; i += 100) {
      const chunk = rows.slice(i, i + 100);
      const values = chunk.map((_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ');
      await admin.query(`INSERT INTO public.${table} VALUES ${values}`, chunk.flat());
    }
  };
  await insert('patients', p);
  await insert('visits', v);
  writeFileSync(join(dir, 'patients.csv'), csv(p, PATIENT_COLUMNS.map((c) => c.name)));
  writeFileSync(join(dir, 'visits.csv'), csv(v, VISIT_COLUMNS.map((c) => c.name)));
  readerUrl = `postgres://gatehouse_reader@127.0.0.1:${cluster.port}/hospital`;
  process.env.GH_TEST_PG_PASSWORD = READER_PASSWORD;
  wsPg = workspace({
    patients: { kind: 'postgres', url: readerUrl, table: 'public.patients', passwordEnv: 'GH_TEST_PG_PASSWORD' },
    visits: { kind: 'postgres', url: readerUrl, table: 'visits', passwordEnv: 'GH_TEST_PG_PASSWORD' },
  });
  wsDuck = workspace({ patients: { kind: 'csv', path: join(dir, 'patients.csv') }, visits: { kind: 'csv', path: join(dir, 'visits.csv') } });
  pgEngine = await PostgresEngine.open(wsPg, [...wsPg.datasets.values()], { poolSize: 3 });
  duck = await DuckDbEngine.open(wsDuck, { poolSize: 2 });
});

after(async () => {
  await pgEngine?.close();
  await duck?.close();
  await admin?.end();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the same governed query on DuckDB and on PostgreSQL', () => {
  const cases: [string, string][] = [
    ['masks of every kind, row by row', 'SELECT patient_id, name, ssn, email, age_band, dob, cost_r, secret, gone, active FROM patients ORDER BY patient_id'],
    ['a row filter and user predicates over masked columns', "SELECT patient_id FROM patients WHERE (email LIKE '%example%' OR email ILIKE '***@MAIL%') AND age BETWEEN 20 AND 60 AND zip IN ('10000', '12222', '16666') ORDER BY patient_id"],
    ['aggregates per group', 'SELECT age_band, count(*) AS n, count(age) AS known, sum(cost) AS s, avg(cost) AS a, min(dob) AS lo, max(admitted) AS hi, stddev(cost) AS sd, var_pop(age) AS vp, bool_and(active) AS ba, count(DISTINCT zip) AS zips FROM patients GROUP BY age_band HAVING count(*) > 2 ORDER BY age_band'],
    ['value-revealing and ordered aggregates', 'SELECT kind, median(cost) AS m, quantile_cont(cost, 0.25) AS q1, quantile_disc(cost, 0.75) AS q3, min(visit_date) AS first_day FROM visits GROUP BY kind ORDER BY kind'],
    ['a join on a raw key, grouped by a hashed name', 'SELECT p.name, count(*) AS n, sum(v.cost) AS total FROM patients p JOIN visits v ON p.patient_id = v.patient_id GROUP BY p.name ORDER BY p.name NULLS FIRST'],
    ['a left join, CTE and IN-subquery', "WITH busy AS (SELECT patient_id, count(*) AS n FROM visits GROUP BY patient_id) SELECT p.patient_id, b.n FROM patients p LEFT JOIN busy b ON b.patient_id = p.patient_id WHERE p.patient_id IN (SELECT patient_id FROM visits WHERE kind = 'lab') ORDER BY p.patient_id LIMIT 50 OFFSET 3"],
    ['dates', "SELECT patient_id, year(dob) AS y, month(admitted) AS m, quarter(admitted) AS q, day(admitted) AS d, dayofweek(admitted) AS dow, date_part('hour', admitted) AS h, date_trunc('month', admitted) AS tm, date_trunc('day', dob) AS td, date_diff('day', dob, CAST(admitted AS DATE)) AS dd, date_diff('month', dob, CAST(admitted AS DATE)) AS dm, date_diff('hour', admitted, CAST(admitted AS DATE)) AS dh, make_date(2024, 2, age) AS md FROM patients ORDER BY patient_id"],
    ['guarded arithmetic (division by zero, domains) yields NULL, not an error', 'SELECT patient_id, age / (age - 30.5) AS q, (age - age) / (age - age) AS q0, age % (age - 40) AS r, mod(age, age - 50) AS m, sqrt(age - 45) AS s, ln(age - 45) AS l, log10(age - 45) AS l10, power(age, 0.5) AS p, power(age - 45, 2) AS p2, exp(age) AS e FROM patients ORDER BY patient_id'],
    ['text functions', "SELECT patient_id, lower(zip) AS a, upper(kind_of) AS b, length(ssn) AS c, substring(zip, 2, 3) AS d, split_part(email, '@', 2) AS e, left(ssn, 3) AS f, right(zip, 2) AS g, strpos(email, 'example') AS h, contains(email, 'mail') AS i, starts_with(zip, '1') AS j, replace(zip, '1', 'x') AS k, trim('  ' || zip || '  ') AS l, concat(zip, '-', age) AS m, reverse(zip) AS n, coalesce(name, 'none') AS o, greatest(age, 40) AS p, nullif(age, 40) AS q, regexp_matches(zip, '^1[0-2]') AS r FROM (SELECT patient_id, zip, ssn, email, age, name, zip AS kind_of FROM patients) AS t ORDER BY patient_id"],
    ['casts of messy text yield the same values or NULL', 'SELECT patient_id, note, CAST(note AS INTEGER) AS i, CAST(note AS BIGINT) AS b, CAST(note AS DOUBLE) AS d, CAST(note AS DECIMAL(6, 2)) AS dec, CAST(note AS DATE) AS dt, CAST(zip AS INTEGER) AS z, CAST(age AS VARCHAR) AS v, CAST(CAST(cost AS DECIMAL(10, 2)) AS VARCHAR) AS cv FROM patients ORDER BY patient_id'],
    ['window functions', 'SELECT patient_id, row_number() OVER (PARTITION BY zip ORDER BY patient_id) AS rn, rank() OVER (ORDER BY age_band) AS rk, lag(age) OVER (ORDER BY patient_id) AS prev, lead(age, 2, 0) OVER (ORDER BY patient_id) AS nxt, ntile(4) OVER (ORDER BY patient_id) AS quart, sum(cost) OVER (PARTITION BY zip) AS zc FROM patients ORDER BY patient_id'],
    ['CASE, IS DISTINCT FROM and scalar subqueries', "SELECT patient_id, CASE WHEN age < 30 THEN 'young' WHEN age < 60 THEN 'mid' ELSE 'old' END AS band, age IS DISTINCT FROM age_band AS differs, (SELECT count(*) FROM visits v WHERE v.patient_id = p.patient_id) AS nv FROM patients p ORDER BY patient_id"],
  ];
  for (const [what, sql] of cases) {
    it(`gives the same rows for ${what}`, async () => {
      const r = await both(sql);
      assert.ok(r.duck.length > 0, 'the query returned rows');
      if (process.env.GH_DEBUG) for (let i = 0; i < r.duck.length; i++) if (JSON.stringify(r.duck[i]) !== JSON.stringify(r.pg[i])) console.log('duck', JSON.stringify(r.duck[i]), '\npg  ', JSON.stringify(r.pg[i]));
      assert.deepEqual(r.pg, r.duck);
    });
  }

  it('gives the same keyed hash as DuckDB and as an HMAC-SHA-256 computed in Node, for every column type', async () => {
    const values: [ColumnType, string, string][] = [
      ['VARCHAR', "'Ada Lovelace'", 'Ada Lovelace'], ['VARCHAR', "'ünïcødé ✓'", 'ünïcødé ✓'], ['BIGINT', '1234567890123', '1234567890123'],
      ['INTEGER', '-42', '-42'], ['DOUBLE', '3.0', '3.0'], ['DOUBLE', '0.1', '0.1'], ['DOUBLE', '123456.789', '123456.789'], ['DOUBLE', '-2.5e-7', '-2.5e-07'],
      ['BOOLEAN', 'TRUE', 'true'], ['DATE', "DATE '2024-02-29'", '2024-02-29'], ['TIMESTAMP', "TIMESTAMP '2024-02-29 10:11:12'", '2024-02-29 10:11:12'],
    ];
    for (const [type, literal, text] of values) {
      const sqlFor = (e: Engine): string => {
        const cast = e === duck ? `CAST(${literal} AS ${type})` : `CAST(${literal} AS ${e.dialect.typeName(type)})`;
        return `SELECT ${renderMask({ kind: 'hash' }, '"v"', type, e.dialect)} AS h FROM (SELECT ${cast} AS "v") AS t`;
      };
      const [a, b] = await Promise.all([duck.run(sqlFor(duck), { timeoutMs: 5000 }), pgEngine.run(sqlFor(pgEngine), { timeoutMs: 5000 })]);
      const expected = createHmac('sha256', HASH_KEY).update(text, 'utf8').digest('hex');
      assert.equal(a.rows[0]![0], expected, `DuckDB ${type} ${literal}`);
      assert.equal(b.rows[0]![0], expected, `PostgreSQL ${type} ${literal}`);
    }
  });

  it('pushes the query down: PostgreSQL runs the aggregation and returns one row per group', async () => {
    const sql = governed('SELECT zip, count(*) AS n FROM patients GROUP BY zip', pgEngine);
    assert.match(sql, /FROM "public"\."patients"/);
    assert.match(sql, /GROUP BY/);
    const r = await pgEngine.run(sql, { timeoutMs: 5000 });
    assert.ok(r.rows.length <= 7);
  });

  it('records each table\'s row count at open for the join cost bound (reltuples, or a count when never analysed)', async () => {
    const [[n]] = (await pgEngine.run('SELECT count(*)::bigint FROM public.patients', { timeoutMs: 5000 })).rows as [number][];
    assert.equal(pgEngine.rowEstimates.get('patients'), Number(n));
    assert.equal(pgEngine.rowEstimates.get('patients'), duck.rowEstimates.get('patients'), 'the same data gives the same estimate on either engine');
  });

  it('reports result column types with the names DuckDB uses', async () => {
    const r = await pgEngine.run(governed('SELECT patient_id, age, cost, zip, active, dob, admitted, CAST(cost AS DECIMAL(8, 2)) AS d FROM patients LIMIT 1', pgEngine), { timeoutMs: 5000 });
    assert.deepEqual(r.columns.map((c) => c.type), ['BIGINT', 'INTEGER', 'DOUBLE', 'VARCHAR', 'BOOLEAN', 'DATE', 'TIMESTAMP', 'DECIMAL(8,2)']);
    const row = r.rows[0]!;
    assert.equal(typeof row[0], 'number');
    assert.match(String(row[5]), /^\d{4}-01-01$/);
    assert.match(String(row[6]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:05\.000Z$/);
  });
});

describe('the PostgreSQL engine is locked down', () => {
  it('refuses a write: every query runs in a read-only transaction', async () => {
    const err = await pgEngine.run("DELETE FROM public.patients WHERE patient_id = 1 RETURNING patient_id", { timeoutMs: 5000 }).catch((e: unknown) => e);
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.code, 'ENGINE_ERROR');
    const n = await admin.query('SELECT count(*)::int AS n FROM public.patients');
    assert.equal(n.rows[0].n, 240);
  });

  it('refuses a second statement smuggled after the first (one statement per query)', async () => {
    const err = await pgEngine.run("SELECT 1; COMMIT; SET ROLE postgres", { timeoutMs: 5000 }).catch((e: unknown) => e);
    assert.ok(err instanceof GatehouseError);
  });

  it('stops a query at the statement timeout', async () => {
    const started = Date.now();
    const err = await pgEngine.run('SELECT count(*) FROM generate_series(1, 100000000) a', { timeoutMs: 300 }).catch((e: unknown) => e);
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.code, 'QUERY_TIMEOUT');
    assert.ok(Date.now() - started < 5000);
    // the connection is usable afterwards
    const r = await pgEngine.run('SELECT 1 AS one', { timeoutMs: 1000 });
    assert.deepEqual(r.rows, [[1]]);
  });

  it('never echoes a value from a PostgreSQL error message', async () => {
    for (const sql of ["SELECT CAST('patient-secret-123' AS INTEGER)", "SELECT 1 / (CASE WHEN 'patient-secret-123' = 'patient-secret-123' THEN 0 END)", "SELECT DATE 'patient-secret-123'"]) {
      const err = await pgEngine.run(sql, { timeoutMs: 5000 }).catch((e: unknown) => e);
      assert.ok(err instanceof GatehouseError, sql);
      assert.doesNotMatch(JSON.stringify(err), /patient-secret-123/);
    }
  });

  it('does not let a governed predicate probe a value through an error (text → number cast of a masked column)', async () => {
    const r = await pgEngine.run(governed("SELECT count(*) AS n FROM patients WHERE CAST(ssn AS INTEGER) = 1 OR CAST(note AS DATE) > DATE '2000-01-01' OR 1 / (age - age) = 1", pgEngine), { timeoutMs: 5000 });
    assert.equal(typeof r.rows[0]![0], 'number');
  });

  it('keeps to its pool bound: never more connections than poolSize, however many queries wait', async () => {
    const engine = await PostgresEngine.open(wsPg, [...wsPg.datasets.values()], { poolSize: 2 });
    try {
      let peak = 0;
      let done = false;
      const watch = (async () => {
        while (!done) {
          const r = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'gatehouse_reader' AND application_name = 'gatehouse' AND query LIKE '%pg_sleep%'");
          peak = Math.max(peak, r.rows[0].n);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      const started = Date.now();
      await Promise.all(Array.from({ length: 6 }, () => engine.run('SELECT pg_sleep(0.2)', { timeoutMs: 5000 })));
      const elapsed = Date.now() - started;
      done = true;
      await watch;
      assert.ok(peak >= 1 && peak <= 2, `peak ${peak}`);
      assert.ok(elapsed >= 550, `6 sleeps of 200 ms over 2 connections took ${elapsed} ms`);
    } finally {
      await engine.close();
    }
  });
});

describe('each push-down is one round trip, with every guarantee of the transaction kept', () => {
  /**
   * A TCP relay between the engine and PostgreSQL that counts the client's turns: each time
   * the client sends after the server last spoke is one round trip.
   */
  async function relay(): Promise<{ port: number; turns: () => number; close: () => Promise<void> }> {
    const net = await import('node:net');
    let turns = 0;
    let clientSpoke = false;
    const sockets = new Set<import('node:net').Socket>();
    const server = net.createServer((c) => {
      const s = net.connect(cluster.port, '127.0.0.1');
      sockets.add(c); sockets.add(s);
      c.on('data', (b) => { if (!clientSpoke) { turns++; clientSpoke = true; } s.write(b); });
      s.on('data', (b) => { clientSpoke = false; c.write(b); });
      c.on('close', () => s.destroy()); s.on('close', () => c.destroy());
      c.on('error', () => undefined); s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    return { port, turns: () => turns, close: () => new Promise<void>((r) => { for (const x of sockets) x.destroy(); server.close(() => r()); }) };
  }

  it('sends the transaction set-up, the query and the rollback in one round trip', async () => {
    const r = await relay();
    const url = readerUrl.replace(`:${cluster.port}/`, `:${r.port}/`);
    const ws = workspace({ patients: { kind: 'postgres', url, table: 'public.patients', passwordEnv: 'GH_TEST_PG_PASSWORD' }, visits: { kind: 'postgres', url, table: 'public.visits', passwordEnv: 'GH_TEST_PG_PASSWORD' } });
    const engine = await PostgresEngine.open(ws, [...ws.datasets.values()], { poolSize: 1 });
    try {
      await engine.run('SELECT 1 AS warm', { timeoutMs: 5000 });
      const before = r.turns();
      const out = await engine.run('SELECT patient_id FROM public.patients ORDER BY patient_id LIMIT 20', { timeoutMs: 5000 });
      assert.equal(out.rows.length, 20);
      assert.equal(r.turns() - before, 1, 'one round trip per query');
    } finally {
      await engine.close();
      await r.close();
    }
  });

  it('runs the query read-only, with its own timeout and a pg_catalog search_path, and leaves nothing behind on the connection', async () => {
    const engine = await PostgresEngine.open(wsPg, [...wsPg.datasets.values()], { poolSize: 1 });
    try {
      const settings = "SELECT pg_catalog.current_setting('transaction_read_only') AS ro, pg_catalog.current_setting('statement_timeout') AS t, pg_catalog.current_setting('search_path') AS sp, pg_catalog.txid_current_if_assigned() IS NULL AS no_xid";
      assert.deepEqual((await engine.run(settings, { timeoutMs: 7000 })).rows, [['on', '7s', 'pg_catalog', true]]);
      // A failed query leaves the transaction aborted until the rollback: the next query on the only connection must work.
      assert.equal((await engine.run('SELECT 1 / 0 AS boom', { timeoutMs: 5000 }).catch((e: unknown) => e) as GatehouseError).code, 'ENGINE_ERROR');
      assert.deepEqual((await engine.run(settings, { timeoutMs: 3000 })).rows, [['on', '3s', 'pg_catalog', true]]);
      // Nothing outlives its transaction: no connection is left inside one.
      const idle = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'gatehouse_reader' AND state <> 'idle' AND pid <> pg_backend_pid()");
      assert.equal(idle.rows[0].n, 0, 'no connection is left inside a transaction');
    } finally {
      await engine.close();
    }
  });
});

describe('opening the PostgreSQL engine checks the role and the catalog', () => {
  const open = async (url: string, table = 'public.patients', env: Record<string, string> = {}, columns = PATIENT_COLUMNS): Promise<string[]> => {
    const ws = workspace({ patients: { kind: 'postgres', url, table, passwordEnv: 'GH_PW' }, visits: { kind: 'postgres', url, table: 'public.visits', passwordEnv: 'GH_PW' } });
    const ds = { ...ws.datasets.get('patients')!, columns };
    try {
      const e = await PostgresEngine.open(ws, [ds], { env });
      await e.close();
      return [];
    } catch (err) {
      if (err instanceof WorkspaceInvalid) return err.problems.map((p) => p.message);
      throw err;
    }
  };
  const at = (role: string): string => `postgres://${role}@127.0.0.1:${cluster.port}/hospital`;

  it('refuses a superuser role and says what to create instead', async () => {
    const problems = await open(at('postgres'), 'public.patients', { GH_PW: cluster.superuserPassword });
    assert.ok(problems.some((m) => /datasets\.patients: role "postgres" is a superuser/.test(m) && /least-privilege/.test(m)), JSON.stringify(problems));
  });

  it('refuses a role that can write the source table and names the REVOKE to run', async () => {
    const problems = await open(at('gh_writer'), 'public.patients', { GH_PW: 'writer-pw' });
    assert.ok(problems.some((m) => /can write public\.patients: REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public\.patients FROM gh_writer/.test(m)), JSON.stringify(problems));
  });

  it('refuses a role that owns the source table', async () => {
    const problems = await open(at('gh_owner'), 'public.owned', { GH_PW: 'owner-pw' }, [col('x', 'INTEGER')]);
    assert.ok(problems.some((m) => /owns public\.owned/.test(m)), JSON.stringify(problems));
  });

  it('names a missing table, a missing column and an incompatible column type', async () => {
    assert.ok((await open(readerUrl, 'public.nope', { GH_PW: READER_PASSWORD })).some((m) => /datasets\.patients: table public\.nope does not exist/.test(m)));
    const problems = await open(readerUrl, 'public.patients', { GH_PW: READER_PASSWORD }, [col('patient_id', 'BIGINT'), col('missing', 'VARCHAR'), col('name', 'DATE')]);
    assert.ok(problems.some((m) => /column missing does not exist/.test(m)), JSON.stringify(problems));
    assert.ok(problems.some((m) => /column name is declared DATE but is text/.test(m)), JSON.stringify(problems));
  });

  it('says which environment variable to set when the password is missing, and refuses a wrong password without echoing it', async () => {
    assert.ok((await open(readerUrl, 'public.patients', {})).some((m) => /environment variable GH_PW .* is not set/.test(m)));
    const err = await open(readerUrl, 'public.patients', { GH_PW: 'wrong-password-xyz' }).catch((e: unknown) => e);
    assert.ok(err instanceof GatehouseError);
    assert.match(err.message, /refused the login/);
    assert.doesNotMatch(JSON.stringify(err), /wrong-password-xyz/);
  });
});

describe('the engine router', () => {
  it('sends each dataset to its engine and refuses a query that mixes engines', async () => {
    const ws = workspace({ patients: { kind: 'csv', path: join(dir, 'patients.csv') }, visits: { kind: 'postgres', url: readerUrl, table: 'public.visits', passwordEnv: 'GH_TEST_PG_PASSWORD' } });
    const router = await openEngines(ws, { duckdb: { poolSize: 1 }, postgres: { poolSize: 1 } });
    try {
      assert.equal(router.engines().length, 2);
      assert.equal(router.forDatasets(['patients']).dialect.name, 'duckdb');
      assert.equal(router.forDatasets(['visits', 'visits']).dialect.name, 'postgres');
      assert.throws(() => router.forDatasets(['patients', 'visits']), (e: unknown) => e instanceof GatehouseError && e.code === 'SQL_UNSUPPORTED' && /same database/.test(e.message) && /stays where it lives/.test(e.hint ?? ''));
      const r = await router.forDatasets(['visits']).run('SELECT count(*) AS n FROM public.visits', { timeoutMs: 5000 });
      assert.deepEqual(r.rows, [[600]]);
    } finally {
      await router.close();
    }
  });

  it('opens one PostgreSQL engine per distinct connection and closes what it opened when one fails', async () => {
    const ws = workspace({ patients: { kind: 'postgres', url: readerUrl, table: 'public.patients', passwordEnv: 'GH_TEST_PG_PASSWORD' }, visits: { kind: 'postgres', url: readerUrl, table: 'public.visits', passwordEnv: 'GH_TEST_PG_PASSWORD' } });
    const router = await openEngines(ws);
    try {
      assert.equal(router.engines().length, 2); // DuckDB + one PostgreSQL
      assert.equal(router.forDatasets(['patients', 'visits']), router.engineOf('visits'));
    } finally {
      await router.close();
    }
    const bad = workspace({ patients: { kind: 'postgres', url: readerUrl, table: 'public.patients', passwordEnv: 'GH_TEST_PG_PASSWORD' }, visits: { kind: 'postgres', url: `postgres://gh_writer@127.0.0.1:${cluster.port}/hospital`, table: 'public.visits', passwordEnv: 'GH_TEST_PG_WRITER' } });
    process.env.GH_TEST_PG_WRITER = 'writer-pw';
    await assert.rejects(openEngines(bad), (e: unknown) => e instanceof WorkspaceInvalid && e.problems.some((p) => /datasets\.visits: role "gh_writer" can write/.test(p.message)));
    const r = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'gatehouse' AND usename = 'gatehouse_reader' AND pid <> pg_backend_pid()");
    assert.ok(r.rows[0].n <= 3, 'connections of the failed open were closed'); // the shared pgEngine holds up to 3
  });
});
