/**
 * Issue 12, section 1, replayed as the attacker ran it: a heavy aggregate made the embedded
 * DuckDB spill plaintext base-table blocks to `.tmp/` under the working directory, and the
 * wire front's catalog engine read them back with `read_blob('.tmp/*')` (the temp
 * directory counts as allowed even with external access off).
 *
 * Here: the main engine is pushed past its memory budget over a generated table of known
 * secrets while a watcher scans the working directory and the state directory for those
 * secrets; the engine's settings are probed; a runaway query must really stop; and every
 * file-reading route is tried on the wire's catalog path (pg_* naming, CTEs, subqueries,
 * casts, UNION) and on the governed path. Nothing may answer, every refusal is audited,
 * and no file Gatehouse did not write on purpose holds a secret.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import { DuckDbEngine } from '../src/engine/duckdb.ts';
import { sqlFingerprint } from '../src/kernel/digest.ts';
import { SQLSTATE } from '../src/wire/sqlstate.ts';
import type { ColumnDef, Workspace } from '../src/model/types.ts';
import { startWireServer, type WireServer } from '../src/wire/server.ts';
import { codeOf, demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';

class RecordingSink implements AuditSink {
  readonly entries: AuditRecord[] = [];
  async append(r: AuditRecord) { this.entries.push(r); return { auditId: String(this.entries.length - 1) }; }
  async close() {}
}

/** Every regular file under `dir` (recursively; symlinks are not followed). */
function filesUnder(dir: string, depth = 0): string[] {
  if (depth > 6 || !existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, depth + 1));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * The files a spill could have left: everything under the state directory, DuckDB's default
 * temp directory `.tmp/` under the working directory, and the working directory's own files
 * (not its tree: the checkout and node_modules are not written by a query).
 */
function spillCandidates(stateDirs: readonly string[]): string[] {
  const cwd = process.cwd();
  const top = readdirSync(cwd, { withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(cwd, e.name));
  return [...stateDirs.flatMap((d) => filesUnder(d)), ...filesUnder(join(cwd, '.tmp')), ...top];
}

/** Files holding any of the secrets, as plaintext bytes. */
function leaking(files: readonly string[], secrets: readonly string[]): string[] {
  const needles = secrets.map((s) => Buffer.from(s));
  return files.filter((f) => {
    try {
      if (statSync(f).size > 512 * 1024 * 1024) return false;
      const b = readFileSync(f);
      return needles.some((n) => b.includes(n));
    } catch { return false; } // removed while scanning
  });
}

/** Watches for leaking files while `work` runs (DuckDB deletes its temp files when a query ends). */
async function watchWhile<T>(stateDirs: readonly string[], secrets: readonly string[], work: () => Promise<T>): Promise<{ result: T | Error; leaks: Set<string> }> {
  const leaks = new Set<string>();
  const timer = setInterval(() => { for (const f of leaking(spillCandidates(stateDirs), secrets)) leaks.add(f); }, 25);
  let result: T | Error;
  try { result = await work(); } catch (err) { result = err as Error; } finally { clearInterval(timer); }
  for (const f of leaking(spillCandidates(stateDirs), secrets)) leaks.add(f);
  return { result, leaks };
}

// ---- the main engine under memory pressure ---------------------------------------------------

describe('the embedded engine under memory pressure', () => {
  let dir: string;
  let stateDir: string;
  let engine: DuckDbEngine;
  const ROWS = 1_000_000;
  /** The generated "SSNs": every row holds one, unique, so grouping by it needs memory per row. */
  const secret = (i: number) => `SSN-SECRET-${String(i).padStart(7, '0')}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-spill-'));
    stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    // The source is outside the state directory: Gatehouse reads it on purpose.
    const source = join(dir, 'source.duckdb');
    const db = await DuckDBInstance.create(source, { temp_directory: '' });
    const c = await db.connect();
    await c.run(`CREATE TABLE people AS SELECT i AS id, 'SSN-SECRET-' || lpad(i::VARCHAR, 7, '0') AS ssn, repeat('x', 40) AS pad FROM range(${ROWS}) r(i)`);
    c.closeSync();
    db.closeSync();
    const col = (name: string, type: ColumnDef['type']): ColumnDef => ({ name, type, classification: 'regulated', tags: [], mask: null, bounds: null, description: null });
    const ws: Workspace = {
      dir, name: 'spill', defaults: { rowCap: 1000, statementTimeoutMs: 10_000, memoryLimit: '8MB' },
      datasets: new Map([['people', {
        name: 'people', description: null, source: { kind: 'duckdb', path: source, table: 'people' }, classification: 'regulated', tags: [],
        privacyUnit: 'id', region: null, owner: null, purposes: [], columns: [col('id', 'BIGINT'), col('ssn', 'VARCHAR'), col('pad', 'VARCHAR')],
      }]]),
      obligations: new Map(), principals: new Map(), policyFiles: new Map(), cedarSchema: '', hashKey: Buffer.alloc(32, 7), policyVersion: 'sha256:test',
    };
    engine = await DuckDbEngine.open(ws, { poolSize: 1, threads: 2 });
  });
  after(async () => { await engine?.close(); rmSync(dir, { recursive: true, force: true }); });

  it('refuses a query that outgrows the memory budget as QUERY_TOO_COSTLY and writes no temp file with a secret', async () => {
    const table = '"memory"."main"."gh_ds_people"';
    const secrets = [secret(0), secret(123_457), secret(ROWS - 1), secret(500_000)];
    const heavy = await watchWhile([stateDir], secrets, () => engine.run(`SELECT ssn, pad, count(*) AS n FROM ${table} GROUP BY ssn, pad ORDER BY ssn DESC`, { timeoutMs: 60_000 }));
    assert.deepEqual([...heavy.leaks], [], 'no file under the state directory or the working directory may hold a secret');
    assert.equal(existsSync(join(process.cwd(), '.tmp')) && readdirSync(join(process.cwd(), '.tmp')).some((f) => f.startsWith('duckdb_temp')), false, 'DuckDB wrote its default temp directory');
    assert.ok(heavy.result instanceof Error, 'the aggregate needs far more than the 8MB query budget: it must be refused, not spilled');
    assert.equal((heavy.result as { code?: string }).code, 'QUERY_TOO_COSTLY');
    assert.doesNotMatch(heavy.result.message, /SSN-SECRET/);
    // The base table is intact and the engine serves the next query.
    const ok = await engine.run(`SELECT count(*) AS n FROM ${table}`, { timeoutMs: 10_000 });
    assert.deepEqual(ok.rows, [[ROWS]]);
  });

  it('keeps spilling off and the configuration locked: no query can point DuckDB at a temp directory', async () => {
    const settings = await engine.run("SELECT name, value FROM duckdb_settings() WHERE name IN ('temp_directory', 'lock_configuration', 'enable_external_access') ORDER BY name", { timeoutMs: 10_000 });
    assert.deepEqual(settings.rows, [['enable_external_access', 'false'], ['lock_configuration', 'true'], ['temp_directory', '']]);
    for (const sql of [`SET temp_directory = '${stateDir}'`, "SET max_temp_directory_size = '10GB'", "SET memory_limit = '64GB'", "RESET temp_directory", 'SET lock_configuration = false']) {
      assert.equal(await codeOf(engine.run(sql, { timeoutMs: 10_000 })), 'ENGINE_ERROR', sql);
    }
    const after = await engine.run("SELECT value FROM duckdb_settings() WHERE name = 'temp_directory'", { timeoutMs: 10_000 });
    assert.deepEqual(after.rows, [['']]);
  });

  it('stops a runaway query at its timeout: the call returns, the CPU goes quiet and the connection answers at once', async () => {
    const table = '"memory"."main"."gh_ds_people"';
    const t0 = Date.now();
    const code = await codeOf(engine.run(`SELECT sum(a.id * b.id) FROM ${table} a, ${table} b WHERE a.id < 200000 AND b.id < 200000`, { timeoutMs: 300 }));
    const took = Date.now() - t0;
    assert.equal(code, 'QUERY_TIMEOUT');
    assert.ok(took < 3_000, `the timeout interrupted the engine (returned after ${took} ms)`);
    // DuckDB runs on its own threads: if the query kept running, this process would stay busy.
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    await new Promise((r) => setTimeout(r, 500));
    const cpu = process.cpuUsage(cpu0);
    const busy = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
    assert.ok(busy < 0.5, `the interrupted query still uses ${(busy * 100).toFixed(0)}% of a core`);
    // poolSize is 1: this runs on the connection the runaway query held.
    const q0 = Date.now();
    const next = await engine.run(`SELECT count(*) FROM ${table} WHERE id < 10`, { timeoutMs: 2_000 });
    assert.deepEqual(next.rows, [[10]]);
    assert.ok(Date.now() - q0 < 1_000);
  });
});

// ---- every file-reading route on every front -------------------------------------------------

describe('file-reading routes on the wire catalog path and the governed path', () => {
  let fx: Fixture;
  let wire: WireServer;
  let password: string;
  let ssns: string[];
  let stateDir: string;
  const audit = new RecordingSink();

  before(async () => {
    fx = await demoFixture({ patients: 20_000, audit, edit: (wsDir) => {
      const p = join(wsDir, 'gatehouse.yaml');
      const y = readFileSync(p, 'utf8');
      assert.match(y, /memoryLimit: 4GB/);
      // A small query budget: the heavy aggregate below must be refused, not spilled.
      writeFileSync(p, y.replace('memoryLimit: 4GB', 'memoryLimit: 2MB'));
    } });
    stateDir = join(fx.wsDir, 'state');
    wire = await startWireServer({ gatehouse: fx.gh, host: '127.0.0.1', port: 0 });
    password = (await fx.gh.issueConnectionPassword({ credential: KEYS.ivan, source: '127.0.0.1', channel: 'test' })).password;
    const db = await DuckDBInstance.create(':memory:', { temp_directory: '' });
    const c = await db.connect();
    ssns = ((await c.runAndReadAll(`SELECT ssn FROM read_parquet('${join(fx.wsDir, 'data', 'patients.parquet').replace(/'/g, "''")}') ORDER BY patient_id`)).getRowsJS() as string[][]).map((r) => r[0]!);
    c.closeSync();
    db.closeSync();
    assert.equal(ssns.length, 20_000);
  });
  after(async () => { await wire?.close(); await fx?.close(); });

  function client(): pg.Client {
    return new pg.Client({ host: '127.0.0.1', port: wire.port, user: 'ivan', password, database: 'gatehouse', options: '-c gatehouse.purpose=claims-processing' });
  }

  it('refuses or answers a heavy governed aggregate without a spilled secret anywhere', async () => {
    const sample = ssns.filter((_, i) => i % 97 === 0);
    const heavy = await watchWhile([stateDir], sample, () => fx.query('ada', 'SELECT ssn, name, email, zip, count(*) AS n FROM patients GROUP BY ssn, name, email, zip ORDER BY ssn, name, email, zip'));
    if (heavy.result instanceof Error) assert.equal((heavy.result as { code?: string }).code, 'QUERY_TOO_COSTLY');
    assert.deepEqual([...heavy.leaks], []);
  });

  const dirs = () => ({ state: stateDir, cwd: process.cwd(), tmp: join(process.cwd(), '.tmp') });
  /** What the attacker sent on the wire: all of it names a pg_* or information_schema relation, so it takes the catalog path. */
  const catalogAttacks = (d: ReturnType<typeof dirs>): string[] => [
    "SELECT read_blob('.tmp/*') FROM pg_catalog.pg_class",
    `SELECT * FROM read_blob('${d.tmp}/*'), pg_catalog.pg_class`,
    `SELECT content FROM read_text('${d.state}/*') JOIN pg_namespace ON true`,
    "SELECT read_text('/etc/passwd') FROM pg_namespace",
    "SELECT * FROM read_csv('/etc/passwd') JOIN pg_class ON true",
    `SELECT * FROM glob('${d.state}/*'), pg_class`,
    `SELECT * FROM read_parquet('${d.state}/*.parquet'), pg_type`,
    "SELECT * FROM pg_catalog.read_text('/etc/passwd')",
    "SELECT pg_catalog.read_blob('/etc/passwd') FROM pg_class",
    "WITH f AS (SELECT * FROM read_blob('/etc/passwd')) SELECT * FROM f, pg_class",
    "WITH c AS (SELECT relname FROM pg_class) SELECT (SELECT content FROM read_text('/etc/passwd')) FROM c",
    "SELECT relname FROM pg_class WHERE relname IN (SELECT content FROM read_text('/etc/passwd'))",
    "SELECT CAST(read_blob('/etc/passwd') AS VARCHAR) FROM pg_class",
    "SELECT read_text('/etc/passwd')::text FROM pg_type",
    "SELECT relname FROM pg_class UNION SELECT content FROM read_text('/etc/passwd')",
    "SELECT relname FROM pg_class UNION ALL SELECT file FROM glob('/etc/*')",
    "SELECT getenv('HOME') FROM pg_class",
    "SELECT * FROM duckdb_settings(), pg_class",
    "SELECT * FROM duckdb_functions(), pg_class",
    "SELECT name, value FROM pg_catalog.duckdb_settings()",
    "SELECT * FROM pg_ls_dir('.')",
    "SELECT pg_ls_dir('.')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd') FROM pg_class",
    "SELECT * FROM pg_catalog.pg_stat_file('/etc/passwd')",
    "SELECT query('SELECT 1') FROM pg_class",
    "SELECT * FROM query_table('pg_class'), pg_class",
    "SELECT * FROM pg_class, (SELECT * FROM read_blob('/etc/passwd')) AS f",
    "SELECT relname FROM pg_class WHERE EXISTS (SELECT 1 FROM read_text('/etc/passwd'))",
    "SELECT relname FROM pg_class ORDER BY length(read_text('/etc/passwd'))",
    "SELECT count(*) FILTER (WHERE read_text('/etc/passwd') IS NOT NULL) FROM pg_class",
    'SELECT * FROM information_schema.pg_class',
    'SELECT * FROM pg_catalog.duckdb_tables',
    'SELECT * FROM information_schema.tables, main.gh_ds_patients',
  ];

  it('refuses every file, settings and engine-function route on the catalog path, audits each with its fingerprint, and answers nothing', async () => {
    const c = client();
    await c.connect();
    try {
      for (const sql of catalogAttacks(dirs())) {
        const n = audit.entries.length;
        const err = await c.query(sql).then(() => null, (e: { code?: string; message?: string }) => e);
        assert.ok(err, `answered: ${sql}`);
        assert.ok(['42883', '0A000', '42501', '42P01'].includes(err.code!), `${sql} → ${err.code} ${err.message}`);
        assert.doesNotMatch(err.message ?? '', /root:|\/home\/|duckdb_temp|SSN/, sql);
        assert.ok(!(err.message ?? '').includes(process.cwd()), `${sql}: the error names the working directory`);
        const entries = audit.entries.slice(n);
        assert.equal(entries.length, 1, `one audit entry for ${sql}`);
        assert.notEqual(entries[0]!.decision, 'allow', sql);
        assert.equal(entries[0]!.channel, 'pgwire');
      }
      // pg_settings answers (drivers read it) but only the few compiled-in constants a client
      // needs: no path, user, memory or engine setting of the host.
      const settings = (await c.query('SELECT name, setting FROM pg_settings')).rows as { name: string; setting: string }[];
      assert.ok(settings.length <= 8, `pg_settings lists ${settings.length} settings`);
      for (const r of settings) {
        assert.doesNotMatch(r.name, /directory|file|path|temp|memory|thread|extension|duckdb/i, r.name);
        assert.ok(!String(r.setting).includes(process.cwd()) && !String(r.setting).startsWith('/'), `${r.name} reveals a path`);
      }
      // The connection is still usable after the refusals.
      assert.deepEqual((await c.query("SELECT table_name FROM information_schema.tables ORDER BY 1")).rows.map((r) => r.table_name), ['claims', 'patients']);
    } finally { await c.end(); }
  });

  it('names the function the catalog path refused, with SQLSTATE 42883 (SQL_FUNCTION_NOT_ALLOWED)', async () => {
    const c = client();
    await c.connect();
    try {
      for (const [sql, fn] of [["SELECT read_blob('.tmp/*') FROM pg_class", 'read_blob'], ["SELECT * FROM glob('*'), pg_class", 'glob'], ["SELECT getenv('HOME') FROM pg_namespace", 'getenv']] as const) {
        await assert.rejects(c.query(sql), (e: { code?: string; message?: string }) => e.code === SQLSTATE.SQL_FUNCTION_NOT_ALLOWED && e.message!.includes(`${fn}()`) && /not allowed/.test(e.message!));
      }
    } finally { await c.end(); }
  });

  it('answers the host questions a catalog function may be asked with nothing of the host', async () => {
    const c = client();
    await c.connect();
    try {
      const r = await c.query("SELECT current_setting('data_directory') AS d, current_setting('temp_directory') AS t, current_setting('home_directory') AS h, current_setting('config_file') AS f, current_setting('server_version') AS v, current_setting('TimeZone') AS z");
      assert.deepEqual(r.rows, [{ d: null, t: null, h: null, f: null, v: '15.0', z: 'UTC' }]);
      assert.equal((await c.query('SELECT * FROM pg_proc')).rows.length, 0, 'no function list');
      assert.equal((await c.query('SELECT * FROM information_schema.routines')).rows.length, 0, 'no function list');
      const dump = JSON.stringify([
        (await c.query('SELECT * FROM pg_class')).rows, (await c.query('SELECT * FROM pg_namespace')).rows, (await c.query('SELECT * FROM pg_database')).rows,
        (await c.query('SELECT * FROM pg_roles')).rows, (await c.query('SELECT * FROM information_schema.schemata')).rows, (await c.query('SELECT version()')).rows,
      ]);
      for (const host of [process.cwd(), stateDir, tmpdir(), process.env.USER ?? 'root', 'duckdb', 'DuckDB', 'v1.5']) {
        assert.ok(!dump.includes(host), `a catalog answer reveals ${host}`);
      }
      assert.doesNotMatch(dump, /encounters/, 'ivan is not granted encounters');
    } finally { await c.end(); }
  });

  it('refuses the same functions over the governed path (in process, as HTTP runs it) as SQL_FUNCTION_NOT_ALLOWED', async () => {
    const d = dirs();
    for (const sql of [
      "SELECT read_blob('.tmp/x')", `SELECT read_text('${d.state}/gatehouse.db')`, "SELECT count(*) FROM patients WHERE read_text('/etc/passwd') IS NOT NULL",
      "SELECT getenv('HOME')", "SELECT current_setting('temp_directory')", "SELECT glob('*')", "SELECT region, read_blob(region) FROM patients",
    ]) {
      assert.equal(await codeOf(fx.query('ivan', sql)), 'SQL_FUNCTION_NOT_ALLOWED', sql);
    }
    for (const sql of ["SELECT * FROM read_blob('.tmp/*')", "SELECT * FROM read_parquet('data/patients.parquet')", "SELECT * FROM glob('*')", "SELECT * FROM read_csv('/etc/passwd')"]) {
      assert.ok(['SQL_FUNCTION_NOT_ALLOWED', 'SQL_UNSUPPORTED'].includes(await codeOf(fx.query('ivan', sql))), sql);
    }
  });

  it('leaves no plaintext secret under the state directory or the working directory after all of it', () => {
    const sample = ssns.filter((_, i) => i % 53 === 0);
    assert.deepEqual(leaking(spillCandidates([stateDir]), sample), []);
  });

  it('records the SQL fingerprint in the audit entry of every catalog query, answered or refused', async () => {
    const c = client();
    await c.connect();
    try {
      for (const sql of ["SELECT read_blob('.tmp/*') FROM pg_catalog.pg_class", 'SELECT relname FROM pg_class ORDER BY 1']) {
        const n = audit.entries.length;
        await c.query(sql).catch(() => undefined);
        const e = audit.entries.slice(n);
        assert.equal(e.length, 1);
        assert.equal(e[0]!.sqlFingerprint, sqlFingerprint(sql));
      }
    } finally { await c.end(); }
  });
});
