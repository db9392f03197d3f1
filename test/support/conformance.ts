/**
 * The conformance corpus and the interface drivers (issue 7, "Real components in tests").
 *
 * The corpus is a representative subset (one or more cases from every technique) of the
 * foundation's attack suite, test/attack.test.ts, restated here so that each case can be
 * sent through every interface: in process on the DuckDB workspace and on the PostgreSQL
 * workspace, over HTTP (fastify inject), over the wire protocol (pg driver, simple query)
 * and through the CLI's `main()`. Each case keeps the attack suite's expectation (a refusal
 * code, or a check on the answer); test/conformance.test.ts asserts that every interface
 * and both engines give the same outcome, the same error code and the same audit entry.
 *
 * Drivers return an `Observed`: the answer (column names and rows, normalised to JS values)
 * or the refusal (Gatehouse code; for the wire, the SQLSTATE and the code the audit entry
 * recorded), and the audit entries the request appended.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { DuckDBInstance } from '@duckdb/node-api';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { openTransparencyLog, type StoredAuditEntry, type TransparencyLog } from '../../src/audit/index.ts';
import { main as cliMain } from '../../src/cli/main.ts';
import { GatehouseError, type ErrorCode } from '../../src/errors.ts';
import type { Gatehouse, QueryResponse } from '../../src/pipeline/gatehouse.ts';
import { SQLSTATE } from '../../src/wire/sqlstate.ts';
import { precreateAuditKeys } from '../helpers/audit-keys.ts';

export type Who = 'rhea' | 'ivan' | 'ada';
export const PURPOSE: Readonly<Record<Who, string>> = { rhea: 'research', ivan: 'claims-processing', ada: 'operations' };
export const KEYS: Readonly<Record<Who, string>> = {
  rhea: 'k-rhea-conformance-3c9a1f7e5b2d4f60',
  ivan: 'k-ivan-conformance-8b2e6d4c0a9f1e37',
  ada: 'k-ada-conformance-41c4e7a2d5b8f063',
};
/** Small enough for 2 shared cores, large enough that the insurer's claims exceed its row cap. */
export const PATIENTS = 1200;
export const IVAN_REGION = 'us-east';
export const IVAN_ROW_CAP = 1000;
export const RHEA_MIN_GROUP = 11;

// ---- ground truth, read from the Parquet files with a separate DuckDB ------------------------

export interface Patient { readonly id: number; readonly ssn: string; readonly zip: string; readonly region: string; readonly name: string }
export interface Truth {
  readonly patients: number;
  readonly east: Patient;
  readonly west: Patient;
  readonly usEastPatients: number;
  readonly usEastClaims: number;
  readonly totalClaims: number;
  readonly patientsPerZip: ReadonlyMap<string, number>;
  /** Raw SSNs: none may ever appear in an answer. */
  readonly ssns: ReadonlySet<string>;
}

export async function readTruth(dataDir: string): Promise<Truth> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const q = async (sql: string): Promise<unknown[][]> => (await c.runAndReadAll(sql)).getRowsJS() as unknown[][];
    const f = (t: string): string => `'${join(dataDir, `${t}.parquet`).replace(/'/g, "''")}'`;
    const rows = await q(`SELECT patient_id, ssn, zip, region, name FROM ${f('patients')} ORDER BY patient_id`);
    const patients = rows.map((r) => ({ id: Number(r[0]), ssn: String(r[1]), zip: String(r[2]), region: String(r[3]), name: String(r[4]) }));
    const [[eastClaims]] = await q(`SELECT count(*) FROM ${f('claims')} WHERE region = '${IVAN_REGION}'`) as [[bigint]];
    const [[allClaims]] = await q(`SELECT count(*) FROM ${f('claims')}`) as [[bigint]];
    const perZip = new Map<string, number>();
    for (const p of patients) perZip.set(p.zip, (perZip.get(p.zip) ?? 0) + 1);
    return {
      patients: patients.length,
      east: patients.find((p) => p.region === IVAN_REGION)!,
      west: patients.find((p) => p.region === 'us-west')!,
      usEastPatients: patients.filter((p) => p.region === IVAN_REGION).length,
      usEastClaims: Number(eastClaims),
      totalClaims: Number(allClaims),
      patientsPerZip: perZip,
      ssns: new Set(patients.map((p) => p.ssn)),
    };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

// ---- what an interface answered ---------------------------------------------------------------

export interface Answer {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
  /** In process and HTTP only (the wire and the CLI table do not carry it). */
  readonly truncated?: boolean;
}

export interface Observed {
  readonly channel: string;
  readonly answer: Answer | null;
  /** The Gatehouse error code (wire: the code the audit entry recorded, checked against the SQLSTATE). */
  readonly code: ErrorCode | null;
  readonly message: string | null;
  /** Wire only: the SQLSTATE of the ErrorResponse. */
  readonly sqlstate?: string;
  /** The one `query` audit entry the request appended (or, when it appended no `query` entry, the one entry it did append). */
  readonly entry: StoredAuditEntry;
  /** Every audit entry the request appended. */
  readonly entries: readonly StoredAuditEntry[];
  /** The principal the entry names (the log stores it pseudonymised; resolved with that log's key), or null. */
  readonly principal: string | null;
}

export interface Driver {
  readonly channel: string;
  run(who: Who | null, sql: string, opts?: { purpose?: string; credential?: string | null }): Promise<Observed>;
  close(): Promise<void>;
}

/**
 * The request's audit entries since `before`: exactly one `query` entry, or else exactly one
 * entry of another action (the wire front's own decisions: pgwire.query, pgwire.set, catalog.query).
 */
function auditedOnce(log: TransparencyLog, before: number, channel: string): { entry: StoredAuditEntry; entries: StoredAuditEntry[]; principal: string | null } {
  const entries: StoredAuditEntry[] = [];
  for (let i = before; i < log.size; i++) entries.push(log.leaf(i).entry);
  const queries = entries.filter((e) => e.action === 'query');
  if (!(queries.length === 0 && entries.length === 1)) {
    assert.equal(queries.length, 1, `${channel}: expected exactly one query audit entry, got ${queries.length} (${entries.map((e) => e.action).join(', ')})`);
  }
  const entry = queries[0] ?? entries[0]!;
  const principal = entry.principal === null ? null : (Object.keys(KEYS) as Who[]).find((w) => log.pseudonymsOf(w).includes(entry.principal!)) ?? `unresolved ${entry.principal}`;
  return { entry, entries, principal };
}

function answerOf(res: QueryResponse): Answer {
  return { columns: res.columns.map((c) => c.name), rows: res.rows, truncated: res.governance.truncated };
}

const credentialOf = (who: Who | null, opts: { credential?: string | null }): string | null => (opts.credential !== undefined ? opts.credential : who ? KEYS[who] : null);
const purposeOf = (who: Who | null, opts: { purpose?: string }): string => opts.purpose ?? (who ? PURPOSE[who] : 'operations');

/** In process: `gh.query` on the one path. */
export function inProcessDriver(channel: string, gh: Gatehouse, log: TransparencyLog): Driver {
  return {
    channel,
    async run(who, sql, opts = {}) {
      const before = log.size;
      let answer: Answer | null = null;
      let code: ErrorCode | null = null;
      let message: string | null = null;
      try {
        answer = answerOf(await gh.query({ credential: credentialOf(who, opts), source: '127.0.0.1', channel: 'test', sql, purpose: purposeOf(who, opts) }));
      } catch (e) {
        assert.ok(e instanceof GatehouseError, `${channel}: a refusal must be a GatehouseError, got ${String(e)}`);
        code = e.code;
        message = e.message;
      }
      return { channel, answer, code, message, ...auditedOnce(log, before, channel) };
    },
    async close() {},
  };
}

/** HTTP: POST /v1/query through the real fastify app (inject: no socket, same routing and schema). */
export function httpDriver(app: FastifyInstance, log: TransparencyLog): Driver {
  return {
    channel: 'http',
    async run(who, sql, opts = {}) {
      const before = log.size;
      const credential = credentialOf(who, opts);
      const res = await app.inject({
        method: 'POST', url: '/v1/query', headers: credential !== null ? { authorization: `Bearer ${credential}` } : {},
        payload: { sql, purpose: purposeOf(who, opts) },
      });
      const body = res.json() as QueryResponse & { error?: { code: ErrorCode; message: string } };
      const audit = auditedOnce(log, before, 'http');
      if (res.statusCode === 200) return { channel: 'http', answer: answerOf(body), code: null, message: null, ...audit };
      assert.ok(body.error && typeof body.error.code === 'string', `http: status ${res.statusCode} without an error code: ${res.body.slice(0, 200)}`);
      return { channel: 'http', answer: null, code: body.error.code, message: body.error.message, ...audit };
    },
    async close() {},
  };
}

/** pg's OIDs for numbers and booleans; everything else stays text. */
const NUMERIC_OIDS = new Set([20, 21, 23, 700, 701, 1700]);
const RAW_TEXT = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

function fromWireText(v: string | null, oid: number): unknown {
  if (v === null) return null;
  if (oid === 16) return v === 't';
  if (NUMERIC_OIDS.has(oid)) return Number(v);
  return v;
}

/**
 * The wire protocol: one pg.Client per principal and purpose (connection password via
 * SCRAM, the purpose as a start-up option), simple query protocol (`client.query(text)`).
 */
export function wireDriver(gh: Gatehouse, port: number, log: TransparencyLog): Driver {
  const clients = new Map<string, pg.Client>();
  const passwords = new Map<Who, string>();
  const clientFor = async (who: Who, purpose: string): Promise<pg.Client> => {
    const k = `${who}/${purpose}`;
    const have = clients.get(k);
    if (have) return have;
    if (!passwords.has(who)) passwords.set(who, (await gh.issueConnectionPassword({ credential: KEYS[who], source: '127.0.0.1', channel: 'test' })).password);
    const c = new pg.Client({ host: '127.0.0.1', port, user: who, password: passwords.get(who)!, database: 'gatehouse', options: `-c gatehouse.purpose=${purpose}`, types: RAW_TEXT });
    await c.connect();
    clients.set(k, c);
    return c;
  };
  return {
    channel: 'pgwire',
    async run(who, sql, opts = {}) {
      assert.ok(who && opts.credential === undefined, 'the wire authenticates at connection start-up: credential cases do not apply');
      const c = await clientFor(who, purposeOf(who, opts));
      const before = log.size;
      let r: pg.QueryArrayResult;
      try {
        r = await c.query({ text: sql, rowMode: 'array' });
      } catch (e) {
        const err = e as { code?: string; message: string };
        assert.ok(typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code), `pgwire: not an ErrorResponse: ${err.message}`);
        const audit = auditedOnce(log, before, 'pgwire');
        // SQLSTATEs are coarser than Gatehouse codes (42501 covers POLICY_DENIED, OBLIGATION_VIOLATION,
        // DLP_BLOCKED and DIFFERENCING_DETECTED): the exact code is the one the audit entry recorded,
        // which must map to the SQLSTATE the client received.
        const code = audit.entry.errorCode as ErrorCode | null;
        assert.ok(code, 'pgwire: a refusal whose audit entry has no error code');
        assert.equal(SQLSTATE[code], err.code, `pgwire: SQLSTATE ${err.code} is not the one for ${code}`);
        return { channel: 'pgwire', answer: null, code, message: err.message, sqlstate: err.code, ...audit };
      }
      {
        const audit = auditedOnce(log, before, 'pgwire');
        const answer: Answer = {
          columns: r.fields.map((f) => f.name),
          rows: (r.rows as (string | null)[][]).map((row) => row.map((v, i) => fromWireText(v, r.fields[i]!.dataTypeID))),
        };
        return { channel: 'pgwire', answer, code: null, message: null, ...audit };
      }
    },
    async close() {
      for (const c of clients.values()) await c.end().catch(() => undefined);
      clients.clear();
    },
  };
}

/**
 * The CLI: `gatehouse query --workspace DIR --key K --purpose P --json --audit-dir A -- SQL`
 * through `main()` in process (it opens the workspace and a log of its own for each call).
 */
export function cliDriver(wsDir: string, auditDir: string): Driver {
  // Only the CLI writes to auditDir, so the log's size after one call is the size before the
  // next: the log is opened twice per call (the CLI's and this check's; each open unseals both
  // key files), so the key files are created at the test scrypt cost (../helpers/audit-keys.ts).
  precreateAuditKeys(auditDir);
  let size: number | null = null;
  return {
    channel: 'cli',
    async run(who, sql, opts = {}) {
      let text = '';
      const out = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
      const credential = credentialOf(who, opts);
      const before = size ?? await logSize(auditDir);
      const argv = ['query', '--workspace', wsDir, '--audit-dir', auditDir, '--purpose', purposeOf(who, opts), '--json', ...(credential !== null ? ['--key', credential] : []), '--', sql];
      const saved = process.env.GATEHOUSE_API_KEY;
      delete process.env.GATEHOUSE_API_KEY;
      const status = await cliMain(argv, out as unknown as NodeJS.WritableStream);
      if (saved !== undefined) process.env.GATEHOUSE_API_KEY = saved;
      const log = openTransparencyLog(auditDir, { demo: true });
      try {
        size = log.size;
        const audit = auditedOnce(log, before, 'cli');
        if (status === 0) {
          const res = JSON.parse(text) as QueryResponse;
          return { channel: 'cli', answer: answerOf(res), code: null, message: null, ...audit };
        }
        // Under --json the CLI prints {"error": {code, message, ...}}.
        const e = (JSON.parse(text) as { error?: { code: ErrorCode; message: string } }).error;
        assert.ok(e, `cli: exit ${status} without {"error": {code, message}}: ${text.slice(0, 300)}`);
        return { channel: 'cli', answer: null, code: e.code, message: e.message, ...audit };
      } finally {
        await log.close();
      }
    },
    async close() {},
  };
}

async function logSize(dir: string): Promise<number> {
  const log = openTransparencyLog(dir, { demo: true });
  try { return log.size; } finally { await log.close(); }
}

// ---- the corpus --------------------------------------------------------------------------------

export type Compare =
  /** Same rows in the same order (ORDER BY over unique keys, or one row). */
  | 'ordered'
  /** Same multiset of rows (no ORDER BY: engines may return any order). */
  | 'rows'
  /** Same columns and row count only (LIMIT without a total order: which rows is engine-dependent). */
  | 'count'
  /** Same columns only (differentially private answers are noisy). */
  | 'columns';

export interface Case {
  readonly group: string;
  readonly name: string;
  readonly as: Who | null;
  readonly sql: (t: Truth) => string;
  readonly purpose?: string;
  /** A credential other than the principal's key (null: none). */
  readonly credential?: string | null;
  readonly refuse?: ErrorCode;
  /** Either an answer or one of these refusals is acceptable (as in the attack suite). */
  readonly refuseAnyOf?: readonly ErrorCode[];
  readonly check?: (a: Answer, t: Truth) => void;
  /** How answers are compared across interfaces (default 'rows'). */
  readonly compare?: Compare;
  /** Why answers differ between DuckDB and PostgreSQL (a difference docs/postgres.md lists): rows are then compared by count only. */
  readonly engineDifference?: string;
  /** Why the case cannot be sent over the wire protocol at all. */
  readonly notOverWire?: string;
  /**
   * The wire front decides this statement itself, by design (docs/wire-protocol.md), rather
   * than passing it to the one query path: what it must do instead, and why.
   */
  readonly wireDiffers?: { readonly why: string; readonly expect: (o: Observed) => void };
  /** Sent through the CLI too (each CLI call opens the workspace: a handful of cases only). */
  readonly cli?: boolean;
}

const col = (a: Answer, name: string): unknown[] => {
  const i = a.columns.indexOf(name);
  assert.ok(i >= 0, `no column ${name} in ${a.columns.join(', ')}`);
  return a.rows.map((r) => r[i]);
};
const one = (a: Answer): number => { assert.equal(a.rows.length, 1); return Number(a.rows[0]![0]); };
const zero = (a: Answer): void => assert.equal(one(a), 0, 'the probe must match no row');
const noRows = (a: Answer): void => assert.equal(a.rows.length, 0, 'the probe must select nothing');
const LAST4 = /^\*+\d{4}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const allLast4 = (name = 'ssn') => (a: Answer): void => { for (const s of col(a, name)) assert.match(String(s), LAST4); };

const INTROSPECTION = 'the wire front answers pg_catalog/information_schema introspection itself, from a data-free catalog showing only what the principal may see (BI tools need it; audited as catalog.query); in a governed query through the path it is refused (docs/wire-protocol.md)';

function wireRefusal(o: Observed, code: ErrorCode, action: string): void {
  assert.equal(o.answer, null, 'the wire front must refuse it');
  assert.equal(o.code, code);
  assert.equal(o.sqlstate, SQLSTATE[code]);
  assert.equal(o.entries.length, 1);
  assert.equal(o.entry.action, action);
  assert.notEqual(o.entry.decision, 'allow');
}

function wireCatalogAnswer(o: Observed): void {
  assert.ok(o.answer, `the wire front answers it from its catalog, got ${o.code}: ${o.message}`);
  assert.equal(o.entries.length, 1);
  assert.equal(o.entry.action, 'catalog.query');
  assert.equal(o.entry.decision, 'allow');
}

export const CASES: readonly Case[] = [
  // ---- 1. probing a masked column
  { group: 'masked-column probing', name: 'an insurer matching a full SSN in WHERE finds nothing', as: 'ivan', sql: (t) => `SELECT count(*) FROM patients WHERE ssn = '${t.east.ssn}'`, check: zero, cli: true },
  { group: 'masked-column probing', name: 'an insurer probing SSN prefixes with LIKE finds nothing', as: 'ivan', sql: (t) => `SELECT count(*) FROM patients WHERE ssn LIKE '${t.east.ssn.slice(0, 3)}%'`, check: zero },
  { group: 'masked-column probing', name: 'an insurer ordering by SSN receives only masked SSNs', as: 'ivan', sql: () => 'SELECT patient_id, ssn FROM patients ORDER BY ssn DESC, patient_id LIMIT 20', check: allLast4(), compare: 'ordered' },
  { group: 'masked-column probing', name: 'an insurer joining patients to themselves on SSN only pairs masked values', as: 'ivan', sql: (t) => `SELECT count(*) FROM patients a JOIN patients b ON a.ssn = b.ssn WHERE b.ssn = '${t.east.ssn}'`, check: zero },
  { group: 'masked-column probing', name: 'an insurer probing SSN through a CTE finds nothing', as: 'ivan', sql: (t) => `WITH s AS (SELECT patient_id, ssn FROM patients) SELECT count(*) FROM s WHERE ssn = '${t.east.ssn}'`, check: zero },
  { group: 'masked-column probing', name: 'an insurer matching an SSN pattern with regexp_matches finds nothing', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE regexp_matches(ssn, '^[0-9]{3}-')", check: zero },
  { group: 'masked-column probing', name: 'an insurer casting the SSN to a number gets NULL, not an error echoing it', as: 'ivan', sql: () => "SELECT CAST(ssn AS INT) AS a, CAST(replace(ssn, '-', '') AS BIGINT) AS b FROM patients ORDER BY patient_id LIMIT 5", check: (a) => { for (const r of a.rows) assert.deepEqual(r, [null, null]); }, compare: 'ordered' },
  { group: 'masked-column probing', name: 'an insurer forcing an implicit cast of the SSN gets an error that carries no value', as: 'ivan', sql: () => 'SELECT count(*) FROM patients WHERE ssn = patient_id', refuse: 'SQL_INVALID' },
  { group: 'masked-column probing', name: 'an insurer reading the phone sees only the redaction', as: 'ivan', sql: () => 'SELECT DISTINCT phone, length(phone) AS l FROM patients', check: (a) => assert.deepEqual(a.rows, [['[REDACTED]', 10]]) },
  { group: 'masked-column probing', name: 'a research contractor grouping by name sees one redacted group', as: 'rhea', sql: () => 'SELECT name, count(*) AS n FROM patients GROUP BY name', check: (a, t) => assert.deepEqual(a.rows, [['[REDACTED]', t.patients]]) },
  { group: 'masked-column probing', name: 'a research contractor grouping by email sees domains only', as: 'rhea', sql: () => 'SELECT email, count(*) AS n FROM patients GROUP BY email ORDER BY email', check: (a) => { for (const e of col(a, 'email')) assert.match(String(e), /^\*\*\*@[a-z]+\.example$/); }, compare: 'ordered' },
  { group: 'masked-column probing', name: 'an internal analyst matching a real SSN against the hashed column finds nothing', as: 'ada', sql: (t) => `SELECT count(*) FROM patients WHERE ssn = '${t.east.ssn}'`, check: zero },
  { group: 'masked-column probing', name: 'an internal analyst sees keyed hashes of SSNs, identical on every interface and engine', as: 'ada', sql: () => 'SELECT patient_id, ssn FROM patients ORDER BY patient_id LIMIT 25', check: (a) => { for (const s of col(a, 'ssn')) assert.match(String(s), HEX64); }, compare: 'ordered', cli: true },

  // ---- 2. stars
  { group: 'stars', name: 'SELECT * gives an insurer every column masked and only its region', as: 'ivan', sql: () => 'SELECT * FROM patients ORDER BY patient_id', check: (a, t) => { assert.equal(a.rows.length, t.usEastPatients); allLast4()(a); }, compare: 'ordered', cli: true },
  { group: 'stars', name: 'SELECT * is refused to an aggregation-only contractor', as: 'rhea', sql: () => 'SELECT * FROM patients', refuse: 'OBLIGATION_VIOLATION', cli: true },
  { group: 'stars', name: 'selecting a table alias as a whole-row struct is refused', as: 'ivan', sql: () => 'SELECT t FROM patients t', refuse: 'SQL_UNKNOWN_COLUMN' },
  { group: 'stars', name: 'COLUMNS(...) expansion is refused', as: 'ivan', sql: () => "SELECT COLUMNS('s.*') FROM patients", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
  { group: 'stars', name: '* EXCLUDE is refused', as: 'ivan', sql: () => 'SELECT * EXCLUDE (name) FROM patients', refuse: 'SQL_SYNTAX' },
  { group: 'stars', name: 't.* through a CTE keeps the keyed hash', as: 'ada', sql: () => 'WITH c AS (SELECT * FROM patients) SELECT c.* FROM c ORDER BY patient_id LIMIT 10', check: (a) => { for (const s of col(a, 'ssn')) assert.match(String(s), HEX64); }, compare: 'ordered' },
  { group: 'stars', name: 'ROW(p.*) constructors are refused', as: 'ivan', sql: () => 'SELECT ROW(p.*) FROM patients p', refuse: 'SQL_UNSUPPORTED' },

  // ---- 3. table functions and files
  { group: 'table functions and files', name: 'read_csv in FROM is refused', as: 'ada', sql: () => "SELECT * FROM read_csv('/etc/passwd')", refuse: 'SQL_UNSUPPORTED', cli: true },
  { group: 'table functions and files', name: 'read_text as a scalar is refused', as: 'ada', sql: () => "SELECT read_text('/etc/passwd')", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
  { group: 'table functions and files', name: "FROM '/etc/passwd' (a file path as a table) is refused", as: 'ada', sql: () => "SELECT * FROM '/etc/passwd'", refuse: 'SQL_SYNTAX' },
  { group: 'table functions and files', name: 'FROM "/etc/passwd" (a quoted path) names no dataset', as: 'ada', sql: () => 'SELECT * FROM "/etc/passwd"', refuse: 'SQL_UNKNOWN_DATASET' },
  { group: 'table functions and files', name: 'query() running an SQL string is refused', as: 'ada', sql: () => "SELECT * FROM query('SELECT * FROM gh_ds_patients')", refuse: 'SQL_UNSUPPORTED' },
  { group: 'table functions and files', name: 'current_setting() is refused', as: 'ada', sql: () => "SELECT current_setting('enable_external_access')", refuse: 'SQL_FUNCTION_NOT_ALLOWED' ,
    wireDiffers: { why: 'the wire front answers version(), current_setting() and the other session functions BI tools send from its data-free catalog engine (audited as catalog.query), never from a data engine (docs/wire-protocol.md)', expect: (o) => wireCatalogAnswer(o) } },
  { group: 'table functions and files', name: 'version() is refused', as: 'ada', sql: () => 'SELECT version()', refuse: 'SQL_FUNCTION_NOT_ALLOWED' ,
    wireDiffers: { why: 'the wire front answers version(), current_setting() and the other session functions BI tools send from its data-free catalog engine (audited as catalog.query), never from a data engine (docs/wire-protocol.md)', expect: (o) => { wireCatalogAnswer(o); assert.match(String(o.answer!.rows[0]![0]), /Gatehouse/); } } },

  // ---- 4. settings and statements
  { group: 'settings and statements', name: 'SET enable_external_access is refused', as: 'ada', sql: () => 'SET enable_external_access = true', refuse: 'SQL_UNSUPPORTED',
    wireDiffers: { why: 'the wire front handles SET itself (session settings): an engine setting is refused as POLICY_DENIED (42501) and audited as pgwire.set, not as a query (docs/wire-protocol.md)', expect: (o) => wireRefusal(o, 'POLICY_DENIED', 'pgwire.set') } },
  { group: 'settings and statements', name: 'ATTACH is refused', as: 'ada', sql: () => "ATTACH '/tmp/gh-conformance-evil.db' AS evil", refuse: 'SQL_SYNTAX' },
  { group: 'settings and statements', name: 'COPY a dataset to a file is refused', as: 'ada', sql: () => "COPY patients TO '/tmp/gh-conformance-out.csv'", refuse: 'SQL_UNSUPPORTED', cli: true },
  { group: 'settings and statements', name: 'CREATE TABLE AS is refused', as: 'ada', sql: () => 'CREATE TABLE stolen AS SELECT * FROM patients', refuse: 'SQL_UNSUPPORTED' },
  { group: 'settings and statements', name: 'DELETE is refused', as: 'ada', sql: () => 'DELETE FROM claims', refuse: 'SQL_UNSUPPORTED' },
  { group: 'settings and statements', name: 'two statements are refused', as: 'ada', sql: () => 'select 1; select 2', refuse: 'SQL_UNSUPPORTED' ,
    wireDiffers: { why: 'the wire front refuses several statements in one simple Query message before any is parsed by the path: same code (SQL_UNSUPPORTED, 0A000), audited as pgwire.query', expect: (o) => wireRefusal(o, 'SQL_UNSUPPORTED', 'pgwire.query') } },
  { group: 'settings and statements', name: 'a statement after a block comment is refused', as: 'ada', sql: () => '/* report */ SELECT 1; /* cleanup */ DELETE FROM patients', refuse: 'SQL_UNSUPPORTED' ,
    wireDiffers: { why: 'the wire front refuses several statements in one simple Query message before any is parsed by the path: same code (SQL_UNSUPPORTED, 0A000), audited as pgwire.query', expect: (o) => wireRefusal(o, 'SQL_UNSUPPORTED', 'pgwire.query') } },
  { group: 'settings and statements', name: 'a statement opened inside a string literal is just a string', as: 'ada', sql: () => "SELECT '; DROP TABLE gh_ds_patients; --' AS s", check: (a) => assert.deepEqual(a.rows, [['; DROP TABLE gh_ds_patients; --']]) },
  { group: 'settings and statements', name: 'a FOR UPDATE locking clause is refused', as: 'ada', sql: () => 'SELECT * FROM patients FOR UPDATE', refuse: 'SQL_UNSUPPORTED' },

  // ---- 5. comments and quoting
  { group: 'comments and quoting', name: 'a trailing line comment cannot comment out the row filter', as: 'ivan', sql: () => "SELECT count(*) FROM patients -- WHERE region = 'us-west'", check: (a, t) => assert.equal(one(a), t.usEastPatients) },
  { group: 'comments and quoting', name: 'an unterminated block comment is a syntax error', as: 'ivan', sql: () => 'SELECT count(*) FROM patients /* WHERE 1=1', refuse: 'SQL_SYNTAX' },
  { group: 'comments and quoting', name: 'a dollar-quoted SSN still compares against the masked value', as: 'ivan', sql: (t) => `SELECT count(*) FROM patients WHERE ssn = $$${t.east.ssn}$$`, check: zero },
  { group: 'comments and quoting', name: "an E'' string with an escaped quote cannot break out of the literal", as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE region = E'us-west\\' OR 1=1 --'", check: zero },
  { group: 'comments and quoting', name: 'a unicode-escaped identifier resolves to the masked column', as: 'ivan', sql: () => 'SELECT DISTINCT left(U&"\\0073\\0073n", 3) AS s FROM patients', check: (a) => assert.deepEqual(a.rows, [['***']]) },
  { group: 'comments and quoting', name: 'the hidden privacy-unit column cannot be named', as: 'rhea', sql: () => 'SELECT count(DISTINCT __gh_unit) FROM patients', refuse: 'SQL_UNKNOWN_COLUMN' },
  { group: 'comments and quoting', name: 'an alias with an embedded quote is rendered as a harmless name', as: 'ivan', sql: () => 'SELECT ssn AS "x"" FROM gh_ds_patients --" FROM patients ORDER BY patient_id LIMIT 3', check: (a) => { assert.equal(a.columns[0], 'x" FROM gh_ds_patients --'); allLast4('x" FROM gh_ds_patients --')(a); }, compare: 'ordered' },

  // ---- 6. row filters
  { group: 'row filters', name: 'OR 1=1 cannot widen the row filter', as: 'ivan', sql: () => "SELECT region, count(*) FROM patients WHERE region = 'us-west' OR 1=1 GROUP BY region", check: (a, t) => assert.deepEqual(a.rows, [[IVAN_REGION, t.usEastPatients]]), cli: true },
  { group: 'row filters', name: 'NOT cannot invert the row filter', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE NOT (region = 'us-east')", check: zero },
  { group: 'row filters', name: 'a lookup of a known other-region patient by id returns nothing', as: 'ivan', sql: (t) => `SELECT name, zip FROM patients WHERE patient_id = ${t.west.id}`, check: noRows },
  { group: 'row filters', name: 'a scalar subquery counts only the insurer’s rows', as: 'ivan', sql: () => 'SELECT (SELECT count(*) FROM patients) AS n', check: (a, t) => assert.equal(one(a), t.usEastPatients) },
  { group: 'row filters', name: 'a join to claims only pairs rows of the insurer’s region', as: 'ivan', sql: () => 'SELECT c.region AS claim_region, p.region AS patient_region, count(*) AS n FROM claims c LEFT JOIN patients p ON p.patient_id = c.patient_id GROUP BY 1, 2', check: (a, t) => assert.equal(a.rows.reduce((s, r) => s + Number(r[2]), 0), t.usEastClaims) },
  { group: 'row filters', name: 'a UNION branch asking for another region gets none of its rows', as: 'ivan', sql: () => "SELECT count(*) FROM (SELECT name FROM patients UNION ALL SELECT name FROM patients WHERE region = 'us-west') t", check: (a, t) => assert.equal(one(a), t.usEastPatients) },
  { group: 'row filters', name: 'an INTERSECT with a raw SSN matches nothing: the mask applies in the branch first', as: 'ivan', sql: (t) => `SELECT ssn FROM patients INTERSECT SELECT '${t.east.ssn}'`, check: noRows },
  { group: 'row filters', name: 'another purpose does not lift the insurer’s filter: it is denied', as: 'ivan', purpose: 'operations', sql: () => 'SELECT count(*) FROM patients', refuse: 'POLICY_DENIED', cli: true },
  { group: 'row filters', name: 'a research contractor claiming the marketing purpose is stopped by the guardrail', as: 'rhea', purpose: 'marketing', sql: () => 'SELECT region, count(*) FROM patients GROUP BY region', refuse: 'POLICY_DENIED' },

  // ---- 7. row caps
  { group: 'row caps', name: 'OFFSET at the row cap is refused', as: 'ivan', sql: () => `SELECT claim_id FROM claims ORDER BY claim_id OFFSET ${IVAN_ROW_CAP}`, refuse: 'ROW_CAP_EXCEEDED' },
  { group: 'row caps', name: 'a LIMIT over the cap is truncated to the cap', as: 'ivan', sql: () => 'SELECT claim_id FROM claims ORDER BY claim_id LIMIT 5000', check: (a) => { assert.equal(a.rows.length, IVAN_ROW_CAP); if (a.truncated !== undefined) assert.equal(a.truncated, true); }, compare: 'ordered', cli: true },
  { group: 'row caps', name: 'OFFSET plus LIMIT crossing the cap stops at the cap', as: 'ivan', sql: () => `SELECT claim_id FROM claims ORDER BY claim_id LIMIT 50 OFFSET ${IVAN_ROW_CAP - 5}`, check: (a) => assert.equal(a.rows.length, 5), compare: 'ordered' },

  // ---- 8. aggregation-only
  { group: 'aggregation-only', name: 'the value-revealing aggregate min() is refused to an aggregation-only contractor', as: 'rhea', sql: () => 'SELECT region, min(zip) FROM patients GROUP BY region', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'aggregation-only', name: 'string_agg() is outside the allowlist', as: 'rhea', sql: () => "SELECT region, string_agg(zip, ',') FROM patients GROUP BY region", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
  { group: 'aggregation-only', name: 'FILTER isolating one patient inside an aggregate is refused', as: 'rhea', sql: (t) => `SELECT count(*) FILTER (WHERE patient_id = ${t.west.id}) FROM patients`, refuse: 'OBLIGATION_VIOLATION' },
  { group: 'aggregation-only', name: 'an aggregation-only dataset inside a derived table is refused', as: 'rhea', sql: () => 'SELECT count(*) FROM (SELECT zip FROM patients) t', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'aggregation-only', name: 'grouping by a unique zip code returns no group below the minimum size', as: 'rhea', sql: () => 'SELECT zip, count(*) AS n FROM patients GROUP BY zip', check: (a) => { for (const r of a.rows) assert.ok(Number(r[1]) >= RHEA_MIN_GROUP); } },
  { group: 'aggregation-only', name: 'grouping by region releases groups of at least the minimum size', as: 'rhea', sql: () => 'SELECT region, count(*) AS n, round(avg(amount_paid), 2) AS paid FROM claims GROUP BY region ORDER BY region', check: (a) => { assert.equal(a.rows.length, 3); for (const r of a.rows) assert.ok(Number(r[1]) >= RHEA_MIN_GROUP); }, compare: 'ordered' },
  { group: 'aggregation-only', name: 'SELECT DISTINCT of a quasi-identifier is refused', as: 'rhea', sql: () => 'SELECT DISTINCT zip FROM patients', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'aggregation-only', name: 'a window function over an aggregation-only dataset is refused', as: 'rhea', sql: () => 'SELECT region, count(*) OVER (PARTITION BY zip) FROM patients GROUP BY region, zip', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'aggregation-only', name: 'count(*) with WHERE isolating one patient is suppressed', as: 'rhea', sql: (t) => `SELECT count(*) FROM patients WHERE patient_id = ${t.west.id}`, check: noRows, refuseAnyOf: ['DIFFERENCING_DETECTED', 'OBLIGATION_VIOLATION'] },
  { group: 'aggregation-only', name: 'isolating one patient through a join is suppressed', as: 'rhea', sql: (t) => `SELECT c.status, count(*) FROM patients p JOIN claims c ON c.patient_id = p.patient_id WHERE p.patient_id = ${t.west.id} GROUP BY c.status`, check: noRows, refuseAnyOf: ['OBLIGATION_VIOLATION'] },
  { group: 'aggregation-only', name: 'an OR TRUE in HAVING cannot lift the minimum group size', as: 'rhea', sql: () => 'SELECT zip, count(*) AS n FROM patients GROUP BY zip HAVING count(*) >= 1 OR TRUE', check: (a) => { for (const r of a.rows) assert.ok(Number(r[1]) >= RHEA_MIN_GROUP); } },

  // ---- 9. join-only
  { group: 'join-only', name: 'selecting patient_id is refused', as: 'rhea', sql: () => 'SELECT patient_id, count(*) FROM patients GROUP BY patient_id', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'join-only', name: 'summing patient_id is refused', as: 'rhea', sql: () => 'SELECT region, sum(patient_id) FROM patients GROUP BY region', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'join-only', name: 'exporting patient_id through a CTE output is refused', as: 'rhea', sql: () => 'WITH ids AS (SELECT patient_id AS pid FROM claims) SELECT pid, count(*) FROM ids GROUP BY pid', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'join-only', name: 'joining on patient_id without returning it is allowed and returns only aggregates', as: 'rhea', sql: () => 'SELECT c.status, count(*) AS n FROM patients p JOIN claims c ON c.patient_id = p.patient_id GROUP BY c.status', check: (a) => { assert.ok(a.rows.length > 0); for (const r of a.rows) assert.ok(Number(r[1]) >= RHEA_MIN_GROUP); } },

  // ---- 10. differential privacy (encounters, for the research contractor; every answer is noisy)
  { group: 'differential privacy', name: 'a DP count by department over public groups is released with noise', as: 'rhea', sql: () => 'SELECT department, count(*) AS n FROM encounters GROUP BY department', check: (a) => assert.equal(a.rows.length, 8), compare: 'columns' },
  { group: 'differential privacy', name: 'a DP average with bounds is released with noise', as: 'rhea', sql: () => 'SELECT facility_region, avg(cost) AS c FROM encounters GROUP BY facility_region', check: (a) => assert.equal(a.rows.length, 3), compare: 'columns' },
  { group: 'differential privacy', name: 'a differentially private dataset cannot be joined', as: 'rhea', sql: () => 'SELECT e.diagnosis_code, count(*) FROM patients p JOIN encounters e ON e.patient_id = p.patient_id GROUP BY e.diagnosis_code', refuse: 'OBLIGATION_VIOLATION' },
  { group: 'differential privacy', name: 'a DP row-level read is refused', as: 'rhea', sql: () => 'SELECT diagnosis, cost FROM encounters LIMIT 5', refuse: 'OBLIGATION_VIOLATION' },

  // ---- 11. errors as side channels (guarded expressions yield NULL on both engines)
  { group: 'errors as side channels', name: 'an engine error cannot reveal whether an other-region row exists', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE regexp_matches('a', CASE WHEN region <> 'us-east' THEN '(' ELSE 'a' END)", check: (a, t) => assert.equal(one(a), t.usEastPatients),
    engineDifference: 'PostgreSQL requires a literal regular expression (docs/postgres.md, guard semantics): a computed pattern is refused there, whatever the rows' },
  { group: 'errors as side channels', name: 'an engine error cannot reveal an other-region patient’s zip', as: 'ivan', sql: (t) => `SELECT count(*) FROM patients WHERE sqrt(CASE WHEN patient_id = ${t.west.id} AND zip = '${t.west.zip}' THEN 0 - 1 ELSE 1 END) >= 0`, check: (a, t) => assert.equal(one(a), t.usEastPatients) },
  { group: 'errors as side channels', name: 'ln() of zero in HAVING over a group of one raises no error', as: 'rhea', sql: (t) => `SELECT zip, count(*) FROM patients GROUP BY zip HAVING ln(CASE WHEN zip = '${t.west.zip}' THEN 0 ELSE 1 END) >= 0`, refuseAnyOf: ['DIFFERENCING_DETECTED'] },
  { group: 'errors as side channels', name: 'a failing expression written twice stays quiet', as: 'ada', sql: (t) => `SELECT count(*) FROM patients WHERE sqrt(CASE WHEN patient_id = ${t.west.id} THEN 0 - 1 ELSE 1 END) >= 0 AND sqrt(CASE WHEN patient_id = ${t.west.id} THEN 0 - 1 ELSE 1 END) < 5`, check: (a, t) => assert.equal(one(a), t.patients - 1) },
  { group: 'errors as side channels', name: 'division by zero over a column follows float semantics, not an error', as: 'ada', sql: () => 'SELECT count(*) FROM claims WHERE amount_paid / 0 > 0', check: (a) => assert.ok(one(a) >= 0) },

  // ---- 12. catalog probes
  { group: 'catalog probes', name: 'an insurer counting encounters (not granted) is denied', as: 'ivan', sql: () => 'SELECT count(*) FROM encounters', refuse: 'POLICY_DENIED', cli: true },
  { group: 'catalog probes', name: 'an insurer hiding encounters in a subquery is denied', as: 'ivan', sql: () => 'SELECT count(*) FROM claims WHERE EXISTS (SELECT 1 FROM encounters e WHERE e.encounter_id = claims.encounter_id)', refuse: 'POLICY_DENIED' },
  { group: 'catalog probes', name: 'an unknown dataset is refused', as: 'ivan', sql: () => 'SELECT * FROM salaries', refuse: 'SQL_UNKNOWN_DATASET' },
  { group: 'catalog probes', name: 'the engine table name is not a dataset', as: 'ivan', sql: () => 'SELECT * FROM gh_ds_patients', refuse: 'SQL_UNKNOWN_DATASET' },
  { group: 'catalog probes', name: 'a schema-qualified dataset name is refused', as: 'ivan', sql: () => 'SELECT * FROM main.patients', refuse: 'SQL_UNKNOWN_DATASET' },
  { group: 'catalog probes', name: 'information_schema introspection is refused in a governed query', as: 'ada', sql: () => 'SELECT table_name FROM information_schema.tables', refuse: 'SQL_UNSUPPORTED',
    wireDiffers: { why: INTROSPECTION, expect: (o) => { wireCatalogAnswer(o); assert.deepEqual(o.answer!.rows, [['claims'], ['encounters'], ['patients']]); } } },
  { group: 'catalog probes', name: 'an insurer listing tables sees no dataset it is not granted', as: 'ivan', sql: () => 'SELECT table_name FROM information_schema.tables ORDER BY table_name', refuse: 'SQL_UNSUPPORTED',
    wireDiffers: { why: INTROSPECTION, expect: (o) => { wireCatalogAnswer(o); assert.deepEqual(o.answer!.rows, [['claims'], ['patients']]); } } },
  { group: 'catalog probes', name: 'naming a wrong column of a dataset not granted is denied', as: 'ivan', sql: () => 'SELECT no_such_column FROM encounters', refuse: 'POLICY_DENIED' },

  // ---- 13. malformed input and requests
  { group: 'malformed input', name: 'garbage is a syntax error', as: 'ada', sql: () => '\u00ff\u00fe SELEKT ** FRM', refuse: 'SQL_SYNTAX' },
  { group: 'malformed input', name: '5000 nested NOTs are refused', as: 'ada', sql: () => `SELECT ${'NOT '.repeat(5000)}TRUE`, refuse: 'SQL_UNSUPPORTED' },
  { group: 'malformed input', name: 'an upper-case purpose is refused', as: 'ada', purpose: 'OPERATIONS', sql: () => 'SELECT ssn FROM patients LIMIT 1', refuse: 'REQUEST_INVALID',
    notOverWire: 'the wire front validates gatehouse.purpose when it is set (start-up or SET) and refuses the connection or the SET, before any query' },
  { group: 'malformed input', name: 'no credential is refused', as: null, credential: null, sql: () => 'SELECT ssn FROM patients LIMIT 1', refuse: 'AUTH_REQUIRED',
    notOverWire: 'the wire authenticates at connection start-up (SCRAM): a connection without a valid password never gets to send a query (audited as pgwire.auth)' },
  { group: 'malformed input', name: 'a wrong credential is refused', as: null, credential: 'k-ada-conformance-41c4e7a2d5b8f064', sql: () => 'SELECT ssn FROM patients LIMIT 1', refuse: 'AUTH_INVALID',
    notOverWire: 'the wire authenticates at connection start-up (SCRAM): a wrong password ends the start-up (audited as pgwire.auth)' },
];

/** The audit fields that must agree across interfaces (channel and time differ by design). */
export function auditShape(e: StoredAuditEntry): Record<string, unknown> {
  return {
    action: e.action, decision: e.decision, errorCode: e.errorCode, datasets: [...e.datasets], columns: [...e.columns],
    obligations: [...e.obligations], purpose: e.purpose, sqlFingerprint: e.sqlFingerprint, rowsReturned: e.rowsReturned,
  };
}
