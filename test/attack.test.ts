/**
 * The attack suite: hostile queries written as an attacker would, grouped by technique.
 *
 * Principals of the demo workspace (src/demo/workspace.ts):
 *   rhea — research contractor: aggregation-only (min 11 distinct patient_id), patient_id
 *          join-only, row cap 5000; name/phone redacted, email domain only, ssn last 4, dob year;
 *   ivan — insurer: rows of region 'us-east' only, row cap 1000, ssn last 4, email domain,
 *          phone redacted; not granted encounters;
 *   ada  — internal analyst: row-level, ssn as a keyed hash, phone redacted.
 *
 * Every attempt goes through `kit.attempt`, which asserts for every case: one audit entry
 * with the matching decision, a GatehouseError with a code on refusal, and no raw protected
 * value, file content, secret or out-of-filter region in the response, error or audit entry
 * (see test/support/attack-kit.ts). The tables below add what each technique must yield.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  AttackKit, IVAN_REGION, IVAN_ROW_CAP, RHEA_MIN_GROUP, STATEMENT_TIMEOUT_MS, column, scalar,
  type Decision, type ErrorCode, type Outcome, type Patient, type QueryResponse, type Who,
} from './support/attack-kit.ts';

let kit: AttackKit;
/** A us-east patient (visible to ivan) and a us-west one (invisible to ivan). */
let east: Patient;
let west: Patient;
/** Every keyed-hash SSN ada can see: the hashes of the real SSNs. */
let realHashes: Set<string>;

before(async () => {
  kit = await AttackKit.open();
  east = kit.truth.patients.find((p) => p.region === IVAN_REGION)!;
  west = kit.truth.patients.find((p) => p.region === 'us-west')!;
  const all = await kit.attempt('ada', 'SELECT ssn FROM patients');
  realHashes = new Set(column(all.res!, 'ssn') as string[]);
  assert.equal(realHashes.size, kit.truth.ssns.size);
});

after(async () => {
  await kit?.close();
});

// ---- the table driver -----------------------------------------------------------------------

interface Attack {
  /** A sentence about the behaviour. */
  readonly name: string;
  readonly as: Who;
  readonly sql: () => string;
  /** Expected refusal code; absent = the query is answered (harmlessly). */
  readonly refuse?: ErrorCode;
  /** Expected audit decision on refusal; defaults from the code. */
  readonly decision?: Decision;
  /** What an answered query must (not) contain, beyond the checks every attempt gets. */
  readonly check?: (res: QueryResponse) => void;
  /** A refusal with any of these codes is acceptable (either way nothing leaks). */
  readonly refuseAnyOf?: readonly ErrorCode[];
}

const DENY_CODES: ReadonlySet<ErrorCode> = new Set(['POLICY_DENIED', 'OBLIGATION_VIOLATION', 'ROW_CAP_EXCEEDED', 'AUTH_INVALID', 'AUTH_REQUIRED', 'DIFFERENCING_DETECTED', 'DLP_BLOCKED', 'BUDGET_EXHAUSTED']);

function expectRefused(o: Outcome, code: ErrorCode | readonly ErrorCode[], decision?: Decision): void {
  const codes = typeof code === 'string' ? [code] : code;
  assert.equal(o.res, null, `expected a refusal (${codes.join(' or ')}), but it was answered with ${o.res?.rows.length} rows`);
  assert.ok(codes.includes(o.err!.code), `expected ${codes.join(' or ')}, got ${o.err!.code}: ${o.err!.message}`);
  assert.equal(o.entry.decision, decision ?? (DENY_CODES.has(o.err!.code) ? 'deny' : 'error'));
  assert.ok(o.err!.message.length > 0);
}

function expectAnswered(o: Outcome): QueryResponse {
  assert.ok(o.res, `expected an answer, got ${o.err?.code}: ${o.err?.message}`);
  return o.res;
}

function attacks(list: readonly Attack[]): void {
  for (const a of list) {
    test(a.name, async () => {
      const o = await kit.attempt(a.as, a.sql());
      if (a.refuse) expectRefused(o, a.refuse, a.decision);
      else if (a.refuseAnyOf && o.err) expectRefused(o, a.refuseAnyOf, a.decision);
      else {
        const res = expectAnswered(o);
        a.check?.(res);
      }
    });
  }
}

const count = (res: QueryResponse): number => Number(scalar(res));
const noRows = (res: QueryResponse): void => assert.equal(res.rows.length, 0, 'the probe must select nothing');
const zero = (res: QueryResponse): void => assert.equal(count(res), 0, 'the probe must match no row');
const allIvanRows = (res: QueryResponse): void => assert.equal(count(res), kit.truth.usEastPatients);
const q = (s: string): string => s.replace(/'/g, "''");
const LAST4 = /^\*+\d{4}$/;
const HEX64 = /^[0-9a-f]{64}$/;

// ---- 1. probing a masked column -----------------------------------------------------------

describe('probing a masked column', () => {
  attacks([
    // ivan: ssn is shown as its last four digits
    { name: 'an insurer matching a full SSN in WHERE finds nothing, because WHERE sees the masked value', as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE ssn = '${east.ssn}'`, check: zero },
    { name: 'an insurer probing SSN prefixes with LIKE finds nothing', as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE ssn LIKE '${east.ssn.slice(0, 3)}%'`, check: zero },
    { name: 'an insurer probing with ILIKE and a single-character wildcard finds nothing', as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE ssn ILIKE '___-__-____'`, check: zero },
    { name: 'an insurer ordering by SSN receives only masked SSNs', as: 'ivan', sql: () => 'SELECT patient_id, ssn FROM patients ORDER BY ssn DESC LIMIT 20', check: (r) => { for (const s of column(r, 'ssn')) assert.match(String(s), LAST4); } },
    { name: 'an insurer grouping by SSN sees groups keyed by the masked value', as: 'ivan', sql: () => 'SELECT ssn, count(*) AS n FROM patients GROUP BY ssn ORDER BY n DESC LIMIT 50', check: (r) => { for (const s of column(r, 'ssn')) assert.match(String(s), LAST4); } },
    { name: 'an insurer joining patients to themselves on SSN only pairs masked values', as: 'ivan', sql: () => `SELECT count(*) FROM patients a JOIN patients b ON a.ssn = b.ssn WHERE b.ssn = '${east.ssn}'`, check: zero },
    { name: 'an insurer testing an SSN inside CASE gains nothing', as: 'ivan', sql: () => `SELECT sum(CASE WHEN ssn = '${east.ssn}' THEN 1 ELSE 0 END) FROM patients`, check: zero },
    { name: 'an insurer ordering a window by SSN receives only masked SSNs', as: 'ivan', sql: () => 'SELECT ssn, row_number() OVER (PARTITION BY substr(ssn, 1, 3) ORDER BY ssn) AS rn FROM patients LIMIT 30', check: (r) => { for (const s of column(r, 'ssn')) assert.match(String(s), LAST4); } },
    { name: 'an insurer probing SSN through a correlated EXISTS subquery finds nothing', as: 'ivan', sql: () => `SELECT count(*) FROM patients p WHERE EXISTS (SELECT 1 FROM patients x WHERE x.patient_id = p.patient_id AND x.ssn = '${east.ssn}')`, check: zero },
    { name: 'an insurer probing SSN through a CTE finds nothing', as: 'ivan', sql: () => `WITH s AS (SELECT patient_id, ssn FROM patients) SELECT count(*) FROM s WHERE ssn = '${east.ssn}'`, check: zero },
    { name: 'an insurer probing SSN in HAVING finds no group', as: 'ivan', sql: () => `SELECT region, count(*) FROM patients GROUP BY region HAVING max(ssn) >= '0'`, check: noRows },
    { name: 'an insurer probing SSN with an IN list finds nothing', as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE ssn IN ('${east.ssn}', '${west.ssn}')`, check: zero },
    { name: 'an insurer bracketing SSNs with BETWEEN finds nothing', as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE ssn BETWEEN '000-00-0000' AND '999-99-9999'`, check: zero },
    { name: 'an insurer reading SSN through length, substr, left, strpos and replace sees only the mask', as: 'ivan', sql: () => "SELECT DISTINCT length(ssn) AS l, substr(ssn, 1, 7) AS head, left(ssn, 3) AS l3, strpos(ssn, '-') AS dash, replace(ssn, '*', '') AS rest_len_check FROM patients WHERE length(replace(ssn, '*', '')) <> 4", check: noRows },
    { name: 'an insurer matching an SSN pattern with regexp_matches finds nothing', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE regexp_matches(ssn, '^[0-9]{3}-')", check: zero },
    { name: 'an insurer upper-, lower-casing, reversing and concatenating the SSN gets the mask back', as: 'ivan', sql: () => "SELECT DISTINCT left(concat(upper(ssn), lower(ssn), reverse(ssn)), 7) AS head FROM patients", check: (r) => assert.deepEqual(column(r, 'head'), ['*******']) },
    { name: 'an insurer casting the SSN to a number gets NULL, not an error echoing it', as: 'ivan', sql: () => "SELECT CAST(ssn AS INT) AS a, CAST(replace(ssn, '-', '') AS BIGINT) AS b FROM patients LIMIT 5", check: (r) => { for (const row of r.rows) assert.deepEqual(row, [null, null]); } },
    { name: 'an insurer casting the SSN to a date gets NULL, not an error echoing it', as: 'ivan', sql: () => 'SELECT count(*) FROM patients WHERE CAST(ssn AS DATE) IS NOT NULL', check: zero },
    { name: 'an insurer forcing an implicit cast of the SSN gets an error that carries no value', as: 'ivan', sql: () => 'SELECT count(*) FROM patients WHERE ssn = patient_id', refuse: 'SQL_INVALID' },
    { name: 'an insurer feeding SSN digits into make_date gets NULLs, never an error or a value', as: 'ivan', sql: () => 'SELECT make_date(2000, CAST(right(ssn, 2) AS INT), 1) AS d FROM patients LIMIT 50', check: (r) => { for (const d of column(r, 'd')) assert.ok(d === null || /^2000-\d\d-01$/.test(String(d))); } },
    { name: 'an analyst adding a number to a name gets a type error that quotes no value', as: 'ada', sql: () => 'SELECT name + 1 FROM patients', refuse: 'SQL_INVALID' },
    { name: 'an insurer comparing the SSN with a date gets a type error that quotes no value', as: 'ivan', sql: () => 'SELECT count(*) FROM patients WHERE ssn > date_of_birth', refuse: 'SQL_INVALID' },
    { name: 'an insurer reading the email sees only its domain, however it is sliced', as: 'ivan', sql: () => "SELECT DISTINCT split_part(email, '@', 1) AS local FROM patients", check: (r) => assert.deepEqual(column(r, 'local'), ['***']) },
    { name: 'an insurer reading the phone sees only the redaction', as: 'ivan', sql: () => 'SELECT DISTINCT phone, length(phone) AS l FROM patients', check: (r) => assert.deepEqual(r.rows, [['[REDACTED]', 10]]) },

    // rhea: aggregates over redacted name/phone and domain-only email
    { name: 'a research contractor grouping by name sees one redacted group', as: 'rhea', sql: () => 'SELECT name, count(*) AS n FROM patients GROUP BY name', check: (r) => assert.deepEqual(r.rows, [['[REDACTED]', 3000]]) },
    { name: 'a research contractor filtering names with LIKE selects nothing', as: 'rhea', sql: () => "SELECT count(*) FROM patients WHERE name LIKE 'A%' OR lower(name) LIKE '%smith%'", check: noRows },
    { name: 'a research contractor grouping by the first letter of the name sees only the redaction', as: 'rhea', sql: () => 'SELECT left(name, 1) AS initial, count(*) AS n FROM patients GROUP BY left(name, 1)', check: (r) => assert.deepEqual(column(r, 'initial'), ['[']) },
    { name: 'a research contractor grouping by a CASE over the name cannot split people', as: 'rhea', sql: () => "SELECT CASE WHEN regexp_matches(name, '^[A-M]') THEN 'a-m' ELSE 'other' END AS half, count(*) AS n FROM patients GROUP BY 1", check: (r) => assert.deepEqual(r.rows, [['other', 3000]]) },
    { name: 'a research contractor grouping by email sees domains only', as: 'rhea', sql: () => 'SELECT email, count(*) AS n FROM patients GROUP BY email ORDER BY email', check: (r) => { for (const e of column(r, 'email')) assert.match(String(e), /^\*\*\*@[a-z]+\.example$/); } },
    { name: 'a research contractor measuring the email local part learns nothing', as: 'rhea', sql: () => "SELECT strpos(email, '@') AS at, count(*) AS n FROM patients GROUP BY strpos(email, '@')", check: (r) => assert.deepEqual(column(r, 'at'), [4]) },
    { name: 'a research contractor probing phone area codes selects nothing', as: 'rhea', sql: () => "SELECT count(*) FROM patients WHERE phone LIKE '(2%' OR substr(phone, 2, 3) BETWEEN '200' AND '899'", check: noRows },
    { name: 'a research contractor doing arithmetic on masked birth dates sees only 1 January', as: 'rhea', sql: () => 'SELECT month(date_of_birth) AS m, day(date_of_birth + 0) AS d, count(*) AS n FROM patients GROUP BY month(date_of_birth), day(date_of_birth + 0)', check: (r) => { for (const row of r.rows) assert.deepEqual(row.slice(0, 2), [1, 1]); } },
    { name: 'a research contractor diffing masked birth dates cannot recover the day', as: 'rhea', sql: () => "SELECT date_diff('day', date_of_birth, DATE '2024-01-01') % 365 AS rem, count(*) AS n FROM patients GROUP BY 1 ORDER BY n DESC", check: (r) => assert.ok(r.rows.length <= 100) },

    // ada: ssn as a keyed hash
    { name: 'an internal analyst matching a real SSN against the hashed column finds nothing', as: 'ada', sql: () => `SELECT count(*) FROM patients WHERE ssn = '${east.ssn}' OR ssn = '${east.ssn.replace(/-/g, '')}'`, check: zero },
    { name: 'an internal analyst sees a 64-hex-digit hash, never a dashed SSN, whatever string function is used', as: 'ada', sql: () => "SELECT DISTINCT length(ssn) AS l, strpos(ssn, '-') AS dash FROM patients", check: (r) => assert.deepEqual(r.rows, [[64, 0]]) },
    { name: 'an internal analyst ordering and windowing by the hashed SSN only sees hashes', as: 'ada', sql: () => 'SELECT ssn, lag(ssn) OVER (ORDER BY ssn) AS prev FROM patients ORDER BY ssn LIMIT 25', check: (r) => { for (const row of r.rows) for (const v of row) if (v !== null) assert.match(String(v), HEX64); } },
  ]);
});

// ---- 2. star and struct expansion ------------------------------------------------------------

describe('star and struct expansion', () => {
  attacks([
    { name: 'SELECT * gives an insurer every column masked and only its region', as: 'ivan', sql: () => 'SELECT * FROM patients', check: (r) => { assert.equal(r.rows.length, kit.truth.usEastPatients); for (const s of column(r, 'ssn')) assert.match(String(s), LAST4); } },
    { name: 'SELECT * is refused to an aggregation-only contractor', as: 'rhea', sql: () => 'SELECT * FROM patients', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'selecting a table alias as a whole-row struct is refused', as: 'ivan', sql: () => 'SELECT t FROM patients t', refuse: 'SQL_UNKNOWN_COLUMN' },
    { name: 'selecting the table name as a struct is refused', as: 'ivan', sql: () => 'SELECT patients FROM patients', refuse: 'SQL_UNKNOWN_COLUMN' },
    { name: 'COLUMNS(...) expansion is refused', as: 'ivan', sql: () => "SELECT COLUMNS('s.*') FROM patients", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
    { name: '* EXCLUDE is refused', as: 'ivan', sql: () => 'SELECT * EXCLUDE (name) FROM patients', refuse: 'SQL_SYNTAX' },
    { name: '* REPLACE is refused', as: 'ivan', sql: () => 'SELECT * REPLACE (name AS ssn) FROM patients', refuse: 'SQL_SYNTAX' },
    { name: 't.* through a derived table keeps every mask', as: 'ivan', sql: () => 'SELECT s.* FROM (SELECT * FROM patients) s LIMIT 10', check: (r) => { for (const s of column(r, 'ssn')) assert.match(String(s), LAST4); } },
    { name: 't.* through a CTE keeps the keyed hash', as: 'ada', sql: () => 'WITH c AS (SELECT * FROM patients) SELECT c.* FROM c LIMIT 10', check: (r) => { for (const s of column(r, 'ssn')) assert.match(String(s), HEX64); } },
    { name: 't.* through a derived table is refused to an aggregation-only contractor', as: 'rhea', sql: () => 'SELECT c.* FROM (SELECT * FROM patients) c', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'ROW(p.*) constructors are refused', as: 'ivan', sql: () => 'SELECT ROW(p.*) FROM patients p', refuse: 'SQL_UNSUPPORTED' },
    { name: 'field access on a whole-row reference is refused', as: 'ivan', sql: () => 'SELECT (p).ssn FROM patients p', refuse: 'SQL_UNSUPPORTED' },
    { name: 'struct_pack and to_json over a row are refused', as: 'ivan', sql: () => 'SELECT to_json(p), struct_pack(a := ssn) FROM patients p', refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
    { name: 'a three-part column name is refused', as: 'ivan', sql: () => 'SELECT main.patients.ssn FROM patients', refuse: 'SQL_UNSUPPORTED' },
  ]);
});

// ---- 3. table functions and file access -------------------------------------------------------

describe('DuckDB table functions and file access', () => {
  attacks([
    { name: 'read_csv in FROM is refused', as: 'ada', sql: () => "SELECT * FROM read_csv('/etc/passwd')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'read_csv_auto joined to a dataset is refused', as: 'ada', sql: () => "SELECT * FROM patients, read_csv_auto('/etc/passwd')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'read_text as a scalar is refused', as: 'ada', sql: () => "SELECT read_text('/etc/passwd')", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
    { name: 'pg_catalog-qualified read_text is refused', as: 'ada', sql: () => "SELECT pg_catalog.read_text('/etc/passwd')", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
    { name: 'read_parquet of the raw dataset file is refused', as: 'ada', sql: () => `SELECT ssn FROM read_parquet('${q(kit.dir)}/workspace/data/patients.parquet')`, refuse: 'SQL_UNSUPPORTED' },
    { name: 'read_json is refused', as: 'ada', sql: () => "SELECT * FROM read_json('/etc/passwd')", refuse: 'SQL_UNSUPPORTED' },
    { name: "FROM '/etc/passwd' (a file path as a table) is refused", as: 'ada', sql: () => "SELECT * FROM '/etc/passwd'", refuse: 'SQL_SYNTAX' },
    { name: 'FROM "/etc/passwd" (a quoted path) names no dataset', as: 'ada', sql: () => 'SELECT * FROM "/etc/passwd"', refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'FROM a quoted parquet path names no dataset', as: 'ada', sql: () => `SELECT * FROM "${kit.dir}/workspace/data/patients.parquet"`, refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'glob is refused', as: 'ada', sql: () => "SELECT * FROM glob('/etc/*')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'query() running an SQL string is refused', as: 'ada', sql: () => "SELECT * FROM query('SELECT * FROM gh_ds_patients')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'query_table is refused', as: 'ada', sql: () => "SELECT * FROM query_table('gh_ds_patients')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'sniff_csv is refused', as: 'ada', sql: () => "SELECT * FROM sniff_csv('/etc/passwd')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'duckdb_settings() is refused', as: 'ada', sql: () => 'SELECT * FROM duckdb_settings()', refuse: 'SQL_UNSUPPORTED' },
    { name: 'duckdb_tables() is refused', as: 'ada', sql: () => 'SELECT * FROM duckdb_tables()', refuse: 'SQL_UNSUPPORTED' },
    { name: 'pragma table functions are refused', as: 'ada', sql: () => "SELECT * FROM pragma_table_info('gh_ds_patients')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'information_schema introspection is refused', as: 'ada', sql: () => 'SELECT table_name FROM information_schema.tables', refuse: 'SQL_UNSUPPORTED' },
    { name: 'pg_catalog introspection is refused', as: 'ada', sql: () => 'SELECT * FROM pg_catalog.pg_tables', refuse: 'SQL_UNSUPPORTED' },
    { name: 'sqlite_master names no dataset', as: 'ada', sql: () => 'SELECT * FROM sqlite_master', refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'duckdb_tables without parentheses names no dataset', as: 'ada', sql: () => 'SELECT * FROM duckdb_tables', refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'current_setting() is refused', as: 'ada', sql: () => "SELECT current_setting('enable_external_access')", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
    { name: 'getenv() is refused', as: 'ada', sql: () => "SELECT getenv('HOME')", refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
    { name: 'version() is refused', as: 'ada', sql: () => 'SELECT version()', refuse: 'SQL_FUNCTION_NOT_ALLOWED' },
    { name: 'current_user is refused', as: 'ada', sql: () => 'SELECT current_user', refuse: 'SQL_UNSUPPORTED' },
    { name: 'a schema-qualified function is refused', as: 'ada', sql: () => "SELECT main.lower('x')", refuse: 'SQL_UNSUPPORTED' },
  ]);
});

// ---- 4. settings and statements ---------------------------------------------------------------

describe('settings and statements other than one SELECT', () => {
  attacks([
    { name: 'SET enable_external_access is refused', as: 'ada', sql: () => 'SET enable_external_access = true', refuse: 'SQL_UNSUPPORTED' },
    { name: 'SET lock_configuration is refused', as: 'ada', sql: () => "SET lock_configuration = 'false'", refuse: 'SQL_UNSUPPORTED' },
    { name: 'RESET ALL is refused', as: 'ada', sql: () => 'RESET ALL', refuse: 'SQL_UNSUPPORTED' },
    { name: 'SHOW ALL is refused', as: 'ada', sql: () => 'SHOW ALL', refuse: 'SQL_UNSUPPORTED' },
    { name: 'ATTACH is refused', as: 'ada', sql: () => "ATTACH '/tmp/gh-attack-evil.db' AS evil", refuse: 'SQL_SYNTAX' },
    { name: 'DETACH is refused', as: 'ada', sql: () => 'DETACH memory', refuse: 'SQL_SYNTAX' },
    { name: 'COPY a dataset to a file is refused', as: 'ada', sql: () => "COPY patients TO '/tmp/gh-attack-out.csv'", refuse: 'SQL_UNSUPPORTED' },
    { name: 'COPY (SELECT ...) TO a file is refused', as: 'ada', sql: () => "COPY (SELECT * FROM patients) TO '/tmp/gh-attack-out.csv' WITH (FORMAT csv)", refuse: 'SQL_UNSUPPORTED' },
    { name: 'EXPORT DATABASE is refused', as: 'ada', sql: () => "EXPORT DATABASE '/tmp/gh-attack-export'", refuse: 'SQL_SYNTAX' },
    { name: 'INSTALL is refused', as: 'ada', sql: () => 'INSTALL httpfs', refuse: 'SQL_SYNTAX' },
    { name: 'LOAD is refused', as: 'ada', sql: () => "LOAD 'httpfs'", refuse: 'SQL_UNSUPPORTED' },
    { name: 'PRAGMA is refused', as: 'ada', sql: () => 'PRAGMA enable_profiling', refuse: 'SQL_SYNTAX' },
    { name: 'CALL is refused', as: 'ada', sql: () => 'CALL pragma_version()', refuse: 'SQL_UNSUPPORTED' },
    { name: 'CREATE TABLE AS is refused', as: 'ada', sql: () => 'CREATE TABLE stolen AS SELECT * FROM patients', refuse: 'SQL_UNSUPPORTED' },
    { name: 'SELECT INTO is refused', as: 'ada', sql: () => 'SELECT * INTO stolen FROM patients', refuse: 'SQL_UNSUPPORTED' },
    { name: 'DROP TABLE of the engine table is refused', as: 'ada', sql: () => 'DROP TABLE gh_ds_patients', refuse: 'SQL_UNSUPPORTED' },
    { name: 'INSERT is refused', as: 'ada', sql: () => "INSERT INTO patients (patient_id, region) VALUES (999999, 'us-east')", refuse: 'SQL_UNSUPPORTED' },
    { name: 'UPDATE is refused', as: 'ivan', sql: () => "UPDATE patients SET region = 'us-east'", refuse: 'SQL_UNSUPPORTED' },
    { name: 'DELETE is refused', as: 'ada', sql: () => 'DELETE FROM claims', refuse: 'SQL_UNSUPPORTED' },
    { name: 'CREATE MACRO is refused', as: 'ada', sql: () => 'CREATE MACRO ssn_of(x) AS x', refuse: 'SQL_SYNTAX' },
    { name: 'CREATE FUNCTION is refused', as: 'ada', sql: () => "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", refuse: 'SQL_UNSUPPORTED' },
    { name: 'EXPLAIN ANALYZE is refused', as: 'ada', sql: () => 'EXPLAIN ANALYZE SELECT * FROM patients', refuse: 'SQL_UNSUPPORTED' },
    { name: 'a transaction statement is refused', as: 'ada', sql: () => 'BEGIN', refuse: 'SQL_UNSUPPORTED' },
    { name: 'two statements are refused', as: 'ada', sql: () => 'select 1; select 2', refuse: 'SQL_UNSUPPORTED' },
    { name: 'a statement hidden after a line comment on a new line is refused', as: 'ada', sql: () => 'SELECT 1 -- harmless\n; DROP TABLE gh_ds_patients', refuse: 'SQL_UNSUPPORTED' },
    { name: 'a statement after a block comment is refused', as: 'ada', sql: () => '/* report */ SELECT 1; /* cleanup */ DELETE FROM patients', refuse: 'SQL_UNSUPPORTED' },
    { name: 'a statement opened inside a string literal is just a string', as: 'ada', sql: () => "SELECT '; DROP TABLE gh_ds_patients; --' AS s", check: (r) => assert.deepEqual(r.rows, [['; DROP TABLE gh_ds_patients; --']]) },
    { name: 'a FOR UPDATE locking clause is refused', as: 'ada', sql: () => 'SELECT * FROM patients FOR UPDATE', refuse: 'SQL_UNSUPPORTED' },
    { name: 'VALUES lists are refused', as: 'ada', sql: () => "VALUES ('x')", refuse: 'SQL_UNSUPPORTED' },
  ]);

  test('after every statement above the datasets are unchanged and no file was written', async () => {
    const o = await kit.attempt('ada', 'SELECT (SELECT count(*) FROM patients) AS p, (SELECT count(*) FROM claims) AS c');
    assert.deepEqual(expectAnswered(o).rows, [[kit.truth.patients.length, kit.truth.totalClaims]]);
    for (const f of ['/tmp/gh-attack-out.csv', '/tmp/gh-attack-export', '/tmp/gh-attack-evil.db']) assert.equal(existsSync(f), false, `${f} was written`);
  });
});

// ---- 5. comments and quoting ------------------------------------------------------------------

describe('comment and quoting tricks', () => {
  attacks([
    { name: 'a trailing line comment cannot comment out the row filter', as: 'ivan', sql: () => "SELECT count(*) FROM patients -- WHERE region = 'us-west'", check: allIvanRows },
    { name: 'nested block comments hide nothing from the parser', as: 'ivan', sql: () => "SELECT count(*) /* outer /* inner */ still comment; DROP TABLE x; */ FROM patients", check: allIvanRows },
    { name: 'an unterminated block comment is a syntax error', as: 'ivan', sql: () => 'SELECT count(*) FROM patients /* WHERE 1=1', refuse: 'SQL_SYNTAX' },
    { name: 'a dollar-quoted SSN still compares against the masked value', as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE ssn = $$${east.ssn}$$`, check: zero },
    { name: 'a tagged dollar quote carrying a second statement stays a string', as: 'ada', sql: () => 'SELECT $x$; DROP TABLE gh_ds_patients; $x$ AS s', check: (r) => assert.deepEqual(r.rows, [['; DROP TABLE gh_ds_patients; ']]) },
    { name: "an E'' string with escapes still compares against the masked value", as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE ssn = E'${east.ssn.split('').map((ch) => `\\x${ch.charCodeAt(0).toString(16)}`).join('')}'`, check: zero },
    { name: "an E'' string with an escaped quote cannot break out of the literal", as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE region = E'us-west\\' OR 1=1 --'", check: zero },
    { name: 'a doubled quote cannot break out of the literal', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE region = 'x'' OR region = ''us-west'", check: zero },
    { name: 'a unicode-escaped identifier U&"..." resolves to the masked column', as: 'ivan', sql: () => 'SELECT DISTINCT left(U&"\\0073\\0073n", 3) AS s FROM patients', check: (r) => assert.deepEqual(r.rows, [['***']]) },
    { name: "a unicode-escaped string U&'...' is only a literal", as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE region = U&'us-w\\0065st'", check: zero },
    { name: 'a quoted identifier with an embedded quote names no column', as: 'ivan', sql: () => 'SELECT "ssn"" FROM gh_ds_patients --" FROM patients', refuse: 'SQL_UNKNOWN_COLUMN' },
    { name: 'an alias with an embedded quote is rendered as a harmless name', as: 'ivan', sql: () => 'SELECT ssn AS "x"" FROM gh_ds_patients --" FROM patients LIMIT 3', check: (r) => { assert.equal(r.columns[0]!.name, 'x" FROM gh_ds_patients --'); for (const s of column(r, 'x" FROM gh_ds_patients --')) assert.match(String(s), LAST4); } },
    { name: 'the hidden privacy-unit column cannot be named', as: 'rhea', sql: () => 'SELECT count(DISTINCT __gh_unit) FROM patients', refuse: 'SQL_UNKNOWN_COLUMN' },
    { name: 'the hidden privacy-unit column cannot be named quoted and qualified', as: 'rhea', sql: () => 'SELECT p."__gh_unit", count(*) FROM patients p GROUP BY 1', refuse: 'SQL_UNKNOWN_COLUMN' },
    { name: 'the hidden column cannot be reached in upper case either', as: 'rhea', sql: () => 'SELECT "__GH_UNIT", count(*) FROM patients GROUP BY 1', refuse: 'SQL_UNKNOWN_COLUMN' },
    { name: 'a quoted upper-case "SSN" resolves, like the engine, to the masked column', as: 'ivan', sql: () => 'SELECT "SSN" FROM patients LIMIT 5', check: (r) => { for (const row of r.rows) assert.match(String(row[0]), LAST4); } },
    { name: 'unquoted upper-case SSN folds to the masked column', as: 'ivan', sql: () => 'SELECT SSN FROM PATIENTS LIMIT 5', check: (r) => { for (const s of column(r, 'ssn')) assert.match(String(s), LAST4); } },
    { name: 'a quoted "Patients" is the governed dataset, masked and filtered', as: 'ivan', sql: () => 'SELECT ssn FROM "Patients" LIMIT 5', check: (r) => { for (const s of column(r, 'ssn')) assert.match(String(s), LAST4); } },
    { name: 'a NUL byte cannot truncate the query', as: 'ivan', sql: () => "SELECT count(*) FROM patients\u0000 WHERE region = 'us-west'", refuse: 'SQL_SYNTAX' },
  ]);
});

// ---- 6. aggregation-only -------------------------------------------------------------------------

describe('raw-value aggregates and isolation under aggregation-only', () => {
  const rawAggregates = ['min(zip)', 'max(cost)', 'median(cost)', 'mode(zip)', "string_agg(zip, ',')", 'array_agg(zip)', 'list(zip)', 'any_value(zip)', 'first(zip)', 'last(zip)', 'quantile_disc(cost, 0.5)', 'quantile_cont(cost, 0.5)'];
  // list/array_agg/string_agg are outside the allowlist altogether (they would also defeat row caps).
  const notAllowed = new Set(["string_agg(zip, ',')", 'array_agg(zip)', 'list(zip)']);
  attacks(rawAggregates.map((agg): Attack => ({
    name: `the value-revealing aggregate ${agg.replace(/\(.*/, '')}() is refused to an aggregation-only contractor`,
    as: 'rhea',
    sql: () => (agg.includes('cost') ? `SELECT status, ${agg.replace('cost', 'amount_paid')} FROM claims GROUP BY status` : `SELECT region, ${agg} FROM patients GROUP BY region`),
    refuse: notAllowed.has(agg) ? 'SQL_FUNCTION_NOT_ALLOWED' : 'OBLIGATION_VIOLATION',
  })));
  attacks([
    { name: 'min() over the SSN column is refused even without GROUP BY', as: 'rhea', sql: () => 'SELECT min(ssn) FROM patients', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'FILTER isolating one patient inside an aggregate is refused', as: 'rhea', sql: () => `SELECT count(*) FILTER (WHERE patient_id = ${west.id}) FROM patients`, refuse: 'OBLIGATION_VIOLATION' },
    { name: 'CASE isolating one patient inside an aggregate is refused', as: 'rhea', sql: () => `SELECT sum(CASE WHEN patient_id = ${west.id} THEN cost ELSE 0 END) FROM encounters`, refuse: 'OBLIGATION_VIOLATION' },
    { name: 'an aggregation-only dataset inside a derived table is refused', as: 'rhea', sql: () => 'SELECT count(*) FROM (SELECT zip FROM patients) t', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'an aggregation-only dataset inside a CTE is refused', as: 'rhea', sql: () => 'WITH t AS (SELECT zip, patient_id FROM patients) SELECT count(*) FROM t', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'an aggregation-only dataset inside a scalar subquery is refused', as: 'rhea', sql: () => `SELECT (SELECT zip FROM patients WHERE patient_id = ${west.id}) AS z`, refuse: 'OBLIGATION_VIOLATION' },
    { name: 'an aggregation-only dataset inside an EXISTS filter is refused', as: 'rhea', sql: () => `SELECT count(*) FROM encounters e WHERE EXISTS (SELECT 1 FROM patients p WHERE p.patient_id = e.patient_id AND p.zip = '${west.zip}')`, refuse: 'OBLIGATION_VIOLATION' },
    { name: 'grouping by a unique zip code returns no group below the minimum size', as: 'rhea', sql: () => 'SELECT zip, count(*) AS n FROM patients GROUP BY zip', check: (r) => { for (const [z, n] of r.rows) { assert.ok(Number(n) >= RHEA_MIN_GROUP); assert.ok((kit.truth.patientsPerZip.get(String(z)) ?? 0) >= RHEA_MIN_GROUP); } } },
    { name: 'grouping by the join-only patient id returns no group at all', as: 'rhea', sql: () => 'SELECT count(*) AS n, avg(cost) AS c FROM encounters GROUP BY patient_id', check: noRows },
    { name: 'grouping by the encounter id returns no group at all', as: 'rhea', sql: () => 'SELECT diagnosis_code, avg(cost) AS c FROM encounters GROUP BY encounter_id, diagnosis_code', check: noRows },
    { name: 'grouping by the masked SSN returns no small group', as: 'rhea', sql: () => 'SELECT ssn, count(*) AS n FROM patients GROUP BY ssn', check: (r) => { for (const row of r.rows) assert.ok(Number(row[1]) >= RHEA_MIN_GROUP); } },
    { name: 'a window function over an aggregation-only dataset is refused', as: 'rhea', sql: () => 'SELECT region, count(*) OVER (PARTITION BY zip) FROM patients GROUP BY region, zip', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'a ranking window over aggregates is refused', as: 'rhea', sql: () => 'SELECT zip, rank() OVER (ORDER BY count(*)) FROM patients GROUP BY zip', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'SELECT DISTINCT of a quasi-identifier is refused', as: 'rhea', sql: () => 'SELECT DISTINCT zip FROM patients', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'SELECT DISTINCT with aggregates is refused', as: 'rhea', sql: () => 'SELECT DISTINCT region, count(*) FROM patients GROUP BY region', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'a plain row query is refused', as: 'rhea', sql: () => 'SELECT zip, sex FROM patients LIMIT 5', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'count(*) with WHERE isolating one patient is suppressed', as: 'rhea', sql: () => `SELECT count(*) FROM patients WHERE patient_id = ${west.id}`, check: noRows, refuseAnyOf: ['DIFFERENCING_DETECTED', 'OBLIGATION_VIOLATION'] },
    { name: 'sum and count with WHERE isolating one patient are suppressed', as: 'rhea', sql: () => `SELECT count(*), sum(amount_paid) FROM claims WHERE patient_id = ${west.id}`, check: noRows, refuseAnyOf: ['OBLIGATION_VIOLATION'] },
    { name: 'a group isolated by a rare zip code is suppressed', as: 'rhea', sql: () => `SELECT sex, count(*) FROM patients WHERE zip = '${west.zip}' GROUP BY sex`, check: noRows, refuseAnyOf: ['DIFFERENCING_DETECTED'] },
    { name: 'isolating one patient through a join is suppressed', as: 'rhea', sql: () => `SELECT c.status, count(*) FROM patients p JOIN claims c ON c.patient_id = p.patient_id WHERE p.patient_id = ${west.id} GROUP BY c.status`, check: noRows, refuseAnyOf: ['OBLIGATION_VIOLATION'] },
    { name: 'a differentially private dataset cannot be joined', as: 'rhea', sql: () => 'SELECT e.diagnosis_code, count(*) FROM patients p JOIN encounters e ON e.patient_id = p.patient_id GROUP BY e.diagnosis_code', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'an OR TRUE in HAVING cannot lift the minimum group size', as: 'rhea', sql: () => 'SELECT zip, count(*) AS n FROM patients GROUP BY zip HAVING count(*) >= 1 OR TRUE', check: (r) => { for (const row of r.rows) assert.ok(Number(row[1]) >= RHEA_MIN_GROUP); } },
    { name: 'selecting a comparison that singles out one patient id is refused, because it derives from the join-only id', as: 'rhea', sql: () => `SELECT patient_id = ${west.id} AS target, count(*) FROM patients GROUP BY patient_id = ${west.id}`, refuse: 'OBLIGATION_VIOLATION' },
    { name: 'grouping by a hidden expression that singles out one patient returns only the large group', as: 'rhea', sql: () => `SELECT count(*) AS n FROM patients GROUP BY CASE WHEN patient_id = ${west.id} THEN zip ELSE 'x' END`, check: (r) => assert.deepEqual(r.rows, [[kit.truth.patients.length - 1]]), refuseAnyOf: ['OBLIGATION_VIOLATION'] },
  ]);

  // An engine error is a one-bit channel: the contractor learns whether ANY row — including
  // one patient's row in a group that would be suppressed — made an expression fail. Each
  // probe is sent twice, with a true and a false guess; the two answers must look the same.
  const unusedZip = (): string => { for (let z = 0; ; z++) { const s = String(z).padStart(5, '0'); if (!kit.truth.patientsPerZip.has(s)) return s; } };
  const oracles: readonly [string, (truth: boolean) => string][] = [
    ['sqrt() of a negative number in WHERE', (t) => `SELECT count(*) FROM patients WHERE sqrt(CASE WHEN patient_id = ${west.id} AND substr(zip, 1, 1) = '${t ? west.zip[0] : west.zip[0] === '0' ? '1' : '0'}' THEN 0 - 1 ELSE 1 END) >= 0`],
    ['regexp_matches with an invalid pattern', (t) => `SELECT region, count(*) FROM patients WHERE regexp_matches('a', CASE WHEN patient_id = ${west.id} AND zip = '${t ? west.zip : unusedZip()}' THEN '(' ELSE 'a' END) GROUP BY region`],
    ['ln() of zero in HAVING over a group of one', (t) => `SELECT zip, count(*) FROM patients GROUP BY zip HAVING ln(CASE WHEN zip = '${t ? west.zip : unusedZip()}' THEN 0 ELSE 1 END) >= 0`],
  ];
  for (const [how, build] of oracles) {
    // The error channel is closed: expressions that can fail run under TRY and yield NULL.
    // (The counts of the two guesses may still differ by one: that is the differencing
    // attack every threshold-only rule admits; differential privacy is the answer.)
    test(`a fact about one patient cannot be read from whether the engine fails (${how})`,
      async () => {
        const hit = await kit.attempt('rhea', build(true));
        const miss = await kit.attempt('rhea', build(false));
        // No engine error either way; differencing detection may refuse the second probe, and
        // a probe naming the unit identifier is refused before it runs whatever the guess.
        for (const o of [hit, miss]) assert.ok(o.err === null || o.err.code === 'DIFFERENCING_DETECTED' || o.err.code === 'OBLIGATION_VIOLATION', `a guess raised ${o.err?.code}`);
        if (hit.err?.code === 'OBLIGATION_VIOLATION' || miss.err?.code === 'OBLIGATION_VIOLATION') assert.equal(hit.err?.message, miss.err?.message);
      });
  }
  // DuckDB's common-subexpression optimizer used to hoist a repeated expression out of
  // TRY(...); the engine disables it. Two copies of the failing expression must stay quiet.
  test('a failing expression written twice cannot escape TRY and become an oracle', async () => {
    const e = `sqrt(CASE WHEN patient_id = ${west.id} THEN 0 - 1 ELSE 1 END)`;
    const o = await kit.attempt('ada', `SELECT count(*) FROM patients WHERE ${e} >= 0 AND ${e} < 5`);
    assert.equal(o.err, null, `raised ${o.err?.code}`);
    const o2 = await kit.attempt('ada', `SELECT sum(${e}) AS a, sum(${e} * 2) AS b FROM patients`);
    assert.equal(o2.err, null, `raised ${o2.err?.code}`);
  });
});

// ---- 7. join-only ----------------------------------------------------------------------------------

describe('join-only patient_id for the research contractor', () => {
  attacks([
    { name: 'selecting patient_id is refused', as: 'rhea', sql: () => 'SELECT patient_id, count(*) FROM patients GROUP BY patient_id', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'selecting patient_id + 0 is refused', as: 'rhea', sql: () => 'SELECT patient_id + 0 AS x, count(*) FROM patients GROUP BY patient_id + 0', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'selecting a cast of patient_id grouped by alias is refused', as: 'rhea', sql: () => 'SELECT CAST(patient_id AS VARCHAR) AS x, count(*) FROM patients GROUP BY x', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'selecting concat over patient_id is refused', as: 'rhea', sql: () => "SELECT concat('id-', patient_id) AS x, count(*) FROM encounters GROUP BY 1", refuse: 'OBLIGATION_VIOLATION' },
    { name: 'summing patient_id is refused', as: 'rhea', sql: () => 'SELECT region, sum(patient_id) FROM patients GROUP BY region', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'ordering by an aggregate of patient_id is refused', as: 'rhea', sql: () => 'SELECT region, count(*) FROM patients GROUP BY region ORDER BY sum(patient_id)', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'ordering by patient_id is refused', as: 'rhea', sql: () => 'SELECT count(*) FROM patients ORDER BY patient_id', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'exporting patient_id through a CTE output is refused', as: 'rhea', sql: () => 'WITH ids AS (SELECT patient_id AS pid FROM claims) SELECT pid, count(*) FROM ids GROUP BY pid', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'exporting patient_id through a subquery output is refused', as: 'rhea', sql: () => 'SELECT t.pid FROM (SELECT patient_id AS pid FROM encounters GROUP BY patient_id) t', refuse: 'OBLIGATION_VIOLATION' },
    { name: 'joining on patient_id without returning it is allowed and returns only aggregates', as: 'rhea', sql: () => 'SELECT c.status, count(*) AS n FROM patients p JOIN claims c ON c.patient_id = p.patient_id GROUP BY c.status', check: (r) => { assert.ok(r.rows.length > 0); for (const c of r.columns) assert.notEqual(c.name, 'patient_id'); for (const row of r.rows) assert.ok(Number(row[1]) >= RHEA_MIN_GROUP); } },
  ]);
});

// ---- 8. paging past the row cap ----------------------------------------------------------------

describe('paging past the row cap', () => {
  const firstIds = (): Set<number> => new Set(kit.truth.usEastClaimIds.slice(0, IVAN_ROW_CAP));
  attacks([
    { name: 'OFFSET at the row cap is refused', as: 'ivan', sql: () => `SELECT claim_id FROM claims ORDER BY claim_id OFFSET ${IVAN_ROW_CAP}`, refuse: 'ROW_CAP_EXCEEDED' },
    { name: 'OFFSET far past the row cap is refused', as: 'ivan', sql: () => 'SELECT claim_id FROM claims ORDER BY claim_id LIMIT 10 OFFSET 2500', refuse: 'ROW_CAP_EXCEEDED' },
    { name: 'a negative OFFSET is refused', as: 'ivan', sql: () => 'SELECT claim_id FROM claims OFFSET -5', refuse: 'SQL_INVALID' },
    { name: 'an OFFSET expression is refused', as: 'ivan', sql: () => 'SELECT claim_id FROM claims OFFSET 500 + 600', refuse: 'SQL_UNSUPPORTED' },
    { name: 'a LIMIT over the cap is truncated to the cap and flagged', as: 'ivan', sql: () => 'SELECT claim_id FROM claims ORDER BY claim_id LIMIT 5000', check: (r) => { assert.equal(r.rows.length, IVAN_ROW_CAP); assert.equal(r.governance.truncated, true); assert.equal(r.governance.rowCap, IVAN_ROW_CAP); } },
    { name: 'no LIMIT at all is truncated to the cap and flagged', as: 'ivan', sql: () => 'SELECT claim_id FROM claims', check: (r) => { assert.equal(r.rows.length, IVAN_ROW_CAP); assert.equal(r.governance.truncated, true); } },
    { name: 'LIMIT ALL is truncated to the cap', as: 'ivan', sql: () => 'SELECT claim_id FROM claims LIMIT ALL', check: (r) => { assert.equal(r.rows.length, IVAN_ROW_CAP); assert.equal(r.governance.truncated, true); } },
    { name: 'FETCH FIRST n ROWS over the cap is truncated to the cap', as: 'ivan', sql: () => 'SELECT claim_id FROM claims FETCH FIRST 4000 ROWS ONLY', check: (r) => { assert.equal(r.rows.length, IVAN_ROW_CAP); assert.equal(r.governance.truncated, true); } },
    { name: 'a LIMIT bigger than any integer is refused', as: 'ivan', sql: () => 'SELECT claim_id FROM claims LIMIT 99999999999999999999', refuse: 'SQL_UNSUPPORTED' },
    { name: 'OFFSET plus LIMIT crossing the cap stops at the cap', as: 'ivan', sql: () => `SELECT claim_id FROM claims ORDER BY claim_id LIMIT 50 OFFSET ${IVAN_ROW_CAP - 5}`, check: (r) => { assert.equal(r.rows.length, 5); assert.equal(r.governance.truncated, true); assert.deepEqual(column(r, 'claim_id'), kit.truth.usEastClaimIds.slice(IVAN_ROW_CAP - 5, IVAN_ROW_CAP)); } },
    { name: 'a LIMIT exactly at the cap is not flagged as truncated', as: 'ivan', sql: () => `SELECT claim_id FROM claims LIMIT ${IVAN_ROW_CAP}`, check: (r) => { assert.equal(r.rows.length, IVAN_ROW_CAP); assert.equal(r.governance.truncated, false); } },
    {
      name: 'an OFFSET inside a derived table cannot page past the row cap', as: 'ivan',
      sql: () => `SELECT t.claim_id FROM (SELECT claim_id FROM claims ORDER BY claim_id LIMIT 5000 OFFSET ${IVAN_ROW_CAP * 2}) t`,
      refuseAnyOf: ['ROW_CAP_EXCEEDED', 'SQL_UNSUPPORTED'],
      check: (r) => { const ok = firstIds(); for (const id of column(r, 'claim_id')) assert.ok(ok.has(Number(id)), `claim ${String(id)} lies past the row cap`); },
      
    },
    {
      name: 'an OFFSET inside a CTE cannot page past the row cap', as: 'ivan',
      sql: () => `WITH page AS (SELECT claim_id FROM claims ORDER BY claim_id OFFSET ${IVAN_ROW_CAP * 2}) SELECT claim_id FROM page`,
      refuseAnyOf: ['ROW_CAP_EXCEEDED', 'SQL_UNSUPPORTED'],
      check: (r) => { const ok = firstIds(); for (const id of column(r, 'claim_id')) assert.ok(ok.has(Number(id)), `claim ${String(id)} lies past the row cap`); },
      
    },
    {
      name: 'packing rows into one cell with string_agg cannot carry more rows than the cap', as: 'ivan',
      sql: () => "SELECT string_agg(CAST(claim_id AS VARCHAR), ',') AS ids FROM claims",
      refuseAnyOf: ['ROW_CAP_EXCEEDED', 'OBLIGATION_VIOLATION', 'SQL_FUNCTION_NOT_ALLOWED'],
      check: (r) => assert.ok(String(scalar(r) ?? '').split(',').length <= IVAN_ROW_CAP, `one cell carried ${String(scalar(r)).split(',').length} claims, over the cap of ${IVAN_ROW_CAP}`),
      
    },
    {
      name: 'packing rows into one cell with list() cannot carry more rows than the cap', as: 'ivan',
      sql: () => 'SELECT list(claim_id) AS ids FROM claims',
      refuseAnyOf: ['ROW_CAP_EXCEEDED', 'OBLIGATION_VIOLATION', 'SQL_FUNCTION_NOT_ALLOWED'],
      check: (r) => assert.ok((scalar(r) as unknown[]).length <= IVAN_ROW_CAP, `one cell carried ${(scalar(r) as unknown[]).length} claims`),
      
    },
  ]);
});

// ---- 9. row-filter escapes --------------------------------------------------------------------

describe('row-filter escapes for the insurer', () => {
  const regionCounts = (r: QueryResponse): void => assert.deepEqual(r.rows, [[IVAN_REGION, kit.truth.usEastPatients]]);
  attacks([
    { name: 'OR 1=1 cannot widen the row filter', as: 'ivan', sql: () => "SELECT region, count(*) FROM patients WHERE region = 'us-west' OR 1=1 GROUP BY region", check: regionCounts },
    { name: "OR region <> 'us-east' cannot widen the row filter", as: 'ivan', sql: () => "SELECT region, count(*) FROM patients WHERE region = 'us-east' OR region <> 'us-east' GROUP BY region", check: regionCounts },
    { name: 'asking for other regions directly returns nothing', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE region IN ('us-west', 'us-central')", check: zero },
    { name: 'NOT cannot invert the row filter', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE NOT (region = 'us-east')", check: zero },
    { name: 'IS DISTINCT FROM cannot reach other regions', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE region IS DISTINCT FROM 'us-east'", check: zero },
    { name: 'NULL tricks cannot reach other regions', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE region IS NULL OR region = NULL OR coalesce(nullif(region, 'us-east'), 'x') <> 'x'", check: zero },
    { name: 'a lookup of a known other-region patient by id returns nothing', as: 'ivan', sql: () => `SELECT name, zip FROM patients WHERE patient_id = ${west.id} OR TRUE AND patient_id = ${west.id}`, check: noRows },
    { name: 'a derived table cannot escape the filter', as: 'ivan', sql: () => "SELECT count(*) FROM (SELECT * FROM patients WHERE 1=1 OR region = 'us-west') t", check: allIvanRows },
    { name: 'a CTE cannot escape the filter', as: 'ivan', sql: () => 'WITH everyone AS (SELECT region FROM patients) SELECT region, count(*) FROM everyone GROUP BY region', check: regionCounts },
    { name: 'a scalar subquery counts only the insurer’s rows', as: 'ivan', sql: () => 'SELECT (SELECT count(*) FROM patients) AS n', check: allIvanRows },
    { name: 'a correlated EXISTS over other-region claims finds nothing', as: 'ivan', sql: () => "SELECT count(*) FROM patients p WHERE EXISTS (SELECT 1 FROM claims c WHERE c.patient_id = p.patient_id AND c.region = 'us-west')", check: zero },
    { name: 'a window over the whole table counts only the insurer’s rows', as: 'ivan', sql: () => 'SELECT count(*) OVER () AS n FROM patients LIMIT 1', check: allIvanRows },
    { name: 'a UNION branch asking for another region gets none of its rows', as: 'ivan', sql: () => "SELECT count(*) FROM (SELECT name FROM patients UNION ALL SELECT name FROM patients WHERE region = 'us-west') t", check: allIvanRows },
    { name: 'an INTERSECT with a raw SSN matches nothing: the mask applies in the branch first', as: 'ivan', sql: () => `SELECT ssn FROM patients INTERSECT SELECT '${east.ssn}'`, check: noRows },
    { name: 'a join to claims only pairs rows of the insurer’s region', as: 'ivan', sql: () => 'SELECT c.region AS claim_region, p.region AS patient_region, count(*) AS n FROM claims c LEFT JOIN patients p ON p.patient_id = c.patient_id GROUP BY 1, 2', check: (r) => assert.equal(r.rows.reduce((s, row) => s + Number(row[2]), 0), kit.truth.usEastClaimIds.length) },
    { name: 'a FULL JOIN exposes no other-region row on either side', as: 'ivan', sql: () => 'SELECT p.region AS p_region, c.region AS c_region FROM patients p FULL JOIN claims c ON p.patient_id = c.patient_id LIMIT 1000', check: (r) => assert.ok(r.rows.length > 0) },
    { name: 'a cross join to claims only sees the insurer’s claims', as: 'ivan', sql: () => "SELECT count(*) FROM claims c, patients p WHERE p.patient_id = c.patient_id AND c.region <> 'us-east'", check: zero },
    { name: 'joining to a dataset the insurer is not granted is denied', as: 'ivan', sql: () => 'SELECT p.name FROM patients p JOIN encounters e ON e.patient_id = p.patient_id', refuse: 'POLICY_DENIED' },
    { name: 'an engine error cannot reveal whether an other-region row exists', as: 'ivan', sql: () => "SELECT count(*) FROM patients WHERE regexp_matches('a', CASE WHEN region <> 'us-east' THEN '(' ELSE 'a' END)", check: allIvanRows },
    { name: 'an engine error cannot reveal an other-region patient’s zip', as: 'ivan', sql: () => `SELECT count(*) FROM patients WHERE sqrt(CASE WHEN patient_id = ${west.id} AND zip = '${west.zip}' THEN 0 - 1 ELSE 1 END) >= 0`, check: allIvanRows },
    { name: 'the claims filter holds against OR TRUE with a count check', as: 'ivan', sql: () => 'SELECT count(*) FROM claims WHERE TRUE OR FALSE', check: (r) => assert.equal(count(r), kit.truth.usEastClaimIds.length) },
  ]);

  test('a research contractor claiming the marketing purpose is stopped by the guardrail', async () => {
    const o = await kit.attempt('rhea', 'SELECT region, count(*) FROM patients GROUP BY region', { purpose: 'marketing' });
    expectRefused(o, 'POLICY_DENIED', 'deny');
  });

  test('a research contractor claiming an operations purpose is denied rather than given row access', async () => {
    const o = await kit.attempt('rhea', 'SELECT zip, ssn FROM patients LIMIT 5', { purpose: 'operations' });
    expectRefused(o, 'POLICY_DENIED', 'deny');
  });

  test('another purpose does not lift the insurer’s filter: it is denied', async () => {
    const o = await kit.attempt('ivan', 'SELECT count(*) FROM patients', { purpose: 'operations' });
    expectRefused(o, 'POLICY_DENIED', 'deny');
  });
});

// ---- 10. catalog introspection ----------------------------------------------------------------

describe('catalog introspection and engine internals', () => {
  const encounterColumns = ['admitted_on', 'length_of_stay_days', 'diagnosis_code', 'diagnosis', 'department', 'facility_id', 'facility_region', 'cost', 'encounter_id'];
  const revealsNothingOfEncounters = (o: Outcome): void => {
    const text = JSON.stringify(o.err?.toJSON() ?? o.res);
    for (const c of encounterColumns) assert.ok(!new RegExp(`\\b${c}\\b`).test(text), `the answer reveals the column "${c}" of a dataset not granted`);
  };
  attacks([
    { name: 'an insurer counting encounters (not granted) is denied', as: 'ivan', sql: () => 'SELECT count(*) FROM encounters', refuse: 'POLICY_DENIED' },
    { name: 'an insurer reading encounters with * is denied', as: 'ivan', sql: () => 'SELECT * FROM encounters', refuse: 'POLICY_DENIED' },
    { name: 'an insurer hiding encounters in a subquery is denied', as: 'ivan', sql: () => 'SELECT count(*) FROM claims WHERE EXISTS (SELECT 1 FROM encounters e WHERE e.encounter_id = claims.encounter_id)', refuse: 'POLICY_DENIED' },
    { name: 'an unknown dataset is refused', as: 'ivan', sql: () => 'SELECT * FROM salaries', refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'a schema-qualified dataset name is refused', as: 'ivan', sql: () => 'SELECT * FROM main.patients', refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'a catalog-qualified engine table is refused', as: 'ivan', sql: () => 'SELECT * FROM memory.main.gh_ds_patients', refuse: 'SQL_UNSUPPORTED' },
    { name: 'the engine table name is not a dataset', as: 'ivan', sql: () => 'SELECT * FROM gh_ds_patients', refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'the quoted engine table name is not a dataset', as: 'ivan', sql: () => 'SELECT ssn FROM "gh_ds_patients"', refuse: 'SQL_UNKNOWN_DATASET' },
    { name: 'the engine table name cannot qualify a column', as: 'ivan', sql: () => 'SELECT gh_ds_patients.ssn FROM patients', refuse: 'SQL_UNKNOWN_COLUMN' },
    { name: 'aliasing a dataset with an engine-reserved name is refused', as: 'ivan', sql: () => 'SELECT gh_ds_patients.ssn FROM patients gh_ds_patients LIMIT 5', refuse: 'SQL_INVALID' },
  ]);

  for (const sql of ['SELECT no_such_column FROM encounters', 'SELECT e.nope FROM encounters e']) {
    test(`naming a wrong column of a dataset not granted reveals none of its columns (${sql})`,
      async () => {
        const o = await kit.attempt('ivan', sql);
        assert.ok(o.err);
        revealsNothingOfEncounters(o);
        expectRefused(o, 'POLICY_DENIED', 'deny');
      });
  }

  test('a CTE named like the engine table cannot replace the data the masks are computed over', {
    
  }, async () => {
    const guess = '123-45-6789';
    const o = await kit.attempt('ada', `WITH gh_ds_patients AS (SELECT CAST(1 AS BIGINT) AS patient_id, 'x' AS name, '${guess}' AS ssn, DATE '2000-01-01' AS date_of_birth, 'F' AS sex, 'a@b.example' AS email, '-' AS phone, '00000' AS zip, 'us-east' AS region) SELECT ssn FROM patients`);
    if (o.err) return expectRefused(o, ['SQL_INVALID', 'SQL_UNSUPPORTED', 'SQL_UNKNOWN_DATASET']);
    for (const h of column(o.res!, 'ssn')) assert.ok(realHashes.has(String(h)), 'the hash of an attacker-chosen SSN was returned: the query read the CTE instead of the dataset');
  });

  test('an insurer shadowing the engine table cannot fabricate rows that pass the region filter as real', {
    
  }, async () => {
    const o = await kit.attempt('ivan', "WITH gh_ds_claims AS (SELECT CAST(1 AS BIGINT) AS claim_id, CAST(1 AS BIGINT) AS encounter_id, CAST(1 AS BIGINT) AS patient_id, 'x' AS payer, 'us-east' AS region, 1.0 AS amount_billed, 1.0 AS amount_paid, 'paid' AS status, DATE '2020-01-01' AS submitted_on) SELECT count(*) FROM claims");
    if (o.err) return expectRefused(o, ['SQL_INVALID', 'SQL_UNSUPPORTED', 'SQL_UNKNOWN_DATASET']);
    assert.equal(count(o.res!), kit.truth.usEastClaimIds.length);
  });

  test('column names that differ only in case cannot make a CTE column read as another', {
    
  }, async () => {
    const o = await kit.attempt('ada', 'WITH x AS (SELECT ssn AS "A", region AS "a" FROM patients) SELECT x.a FROM x LIMIT 5');
    if (o.err) return expectRefused(o, ['SQL_INVALID', 'SQL_AMBIGUOUS_COLUMN']);
    for (const v of column(o.res!, 'a')) assert.ok(['us-east', 'us-west', 'us-central'].includes(String(v)), `x.a should be the region, got ${String(v).slice(0, 12)}…`);
  });
});

// ---- 11. queries that would run for hours ------------------------------------------------------

describe('queries that would run for hours', () => {
  const bound = STATEMENT_TIMEOUT_MS + 6000;
  for (const [who, sql] of [
    ['ada', 'SELECT count(*) FROM encounters a, encounters b, encounters c'],
    ['rhea', 'SELECT a.status, count(*) FROM claims a JOIN claims b ON a.amount_paid <> b.amount_paid JOIN claims c ON b.amount_paid <> c.amount_paid GROUP BY a.status'],
    ['ivan', 'SELECT count(*) FROM claims a, claims b, claims c, patients d'],
  ] as const) {
    test(`a cross join of billions of rows is stopped by the statement timeout, or refused before it runs (${who})`, async () => {
      const o = await kit.attempt(who, sql);
      // Over an aggregation-only dataset a non-equi self-join is refused outright (its
      // running time would depend on hidden rows); elsewhere the join cost bound refuses it
      // from the datasets' row counts before it runs (query/govern/cost-estimate.ts).
      if (who === 'rhea') expectRefused(o, 'OBLIGATION_VIOLATION');
      else expectRefused(o, 'QUERY_TOO_COSTLY', 'error');
      assert.ok(o.ms < bound, `stopped after ${Math.round(o.ms)} ms, bound ${bound} ms`);
    });
  }
  attacks([
    { name: 'WITH RECURSIVE is refused before it can run', as: 'ada', sql: () => 'WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r', refuse: 'SQL_UNSUPPORTED' },
    { name: 'a self-referencing CTE is not recursion', as: 'ada', sql: () => 'WITH r AS (SELECT n FROM r) SELECT * FROM r', refuseAnyOf: ['SQL_UNKNOWN_DATASET', 'SQL_INVALID'], check: () => assert.fail('a self-referencing CTE must not run') },
  ]);
  test('the engine still answers after stopped queries', async () => {
    const o = await kit.attempt('ada', 'SELECT count(*) FROM patients');
    assert.equal(count(expectAnswered(o)), kit.truth.patients.length);
  });
});

// ---- 12. malformed input ------------------------------------------------------------------------

describe('malformed input', () => {
  attacks([
    { name: 'an empty query is refused', as: 'ada', sql: () => '', refuse: 'SQL_SYNTAX' },
    { name: 'a whitespace-only query is refused', as: 'ada', sql: () => ' \n\t ', refuse: 'SQL_SYNTAX' },
    { name: 'a lone semicolon is refused', as: 'ada', sql: () => ';', refuse: 'SQL_SYNTAX' },
    { name: 'a comment-only query is refused', as: 'ada', sql: () => '-- SELECT * FROM patients', refuse: 'SQL_SYNTAX' },
    { name: 'a 200 KB query is refused', as: 'ada', sql: () => `SELECT count(*) FROM patients WHERE name <> '${'x'.repeat(200_000)}'`, refuse: 'SQL_SYNTAX' },
    { name: 'a NUL byte is refused', as: 'ada', sql: () => 'SELECT 1\u0000; DROP TABLE gh_ds_patients', refuse: 'SQL_SYNTAX' },
    { name: 'lone surrogates and byte-order marks are harmless literals', as: 'ada', sql: () => "SELECT '\uD800\uDFFF\uD800x' AS a, '\uFEFF\uFFFE\u202E' AS b", check: (r) => assert.equal(r.rows.length, 1) },
    { name: 'a 5000-level parenthesised expression is answered or refused, never crashes', as: 'ada', sql: () => `SELECT ${'('.repeat(5000)}1${')'.repeat(5000)} AS one`, refuseAnyOf: ['SQL_SYNTAX', 'SQL_UNSUPPORTED'], check: (r) => assert.deepEqual(r.rows, [[1]]) },
    { name: '5000 nested NOTs are refused', as: 'ada', sql: () => `SELECT ${'NOT '.repeat(5000)}TRUE`, refuse: 'SQL_UNSUPPORTED' },
    { name: '500 nested scalar subqueries are refused', as: 'ada', sql: () => `SELECT ${'(SELECT '.repeat(500)}1${')'.repeat(500)}`, refuse: 'SQL_UNSUPPORTED' },
    { name: 'an expression chain that overflows the parser stack is refused', as: 'ada', sql: () => `SELECT ${Array.from({ length: 20_000 }, () => '1').join('+')}`, refuseAnyOf: ['SQL_SYNTAX', 'SQL_UNSUPPORTED'], check: () => assert.fail('must be refused') },
    { name: 'garbage is a syntax error', as: 'ada', sql: () => '\u00ff\u00fe SELEKT ** FRM', refuse: 'SQL_SYNTAX' },
  ]);

  const requests: readonly [string, Who | 'anonymous', unknown, string | null | undefined, ErrorCode, Decision][] = [
    ['a missing purpose is refused', 'ada', undefined, undefined, 'REQUEST_INVALID', 'error'],
    ['an empty purpose is refused', 'ada', '', undefined, 'REQUEST_INVALID', 'error'],
    ['a purpose with SQL in it is refused', 'ada', "operations'; DROP TABLE x; --", undefined, 'REQUEST_INVALID', 'error'],
    ['an upper-case purpose is refused', 'ada', 'OPERATIONS', undefined, 'REQUEST_INVALID', 'error'],
    ['a 65-character purpose is refused', 'ada', 'o'.repeat(65), undefined, 'REQUEST_INVALID', 'error'],
    ['a non-string purpose is refused', 'ada', { toString: () => 'operations' }, undefined, 'REQUEST_INVALID', 'error'],
    ['no credential is refused', 'anonymous', 'operations', null, 'AUTH_REQUIRED', 'deny'],
    ['an empty credential is refused', 'anonymous', 'operations', '', 'AUTH_REQUIRED', 'deny'],
    ['a wrong credential is refused', 'anonymous', 'operations', 'k-ada-attack-suite-91c4e7a2d5b8f064', 'AUTH_INVALID', 'deny'],
    ['a credential with padding is refused', 'anonymous', 'operations', ' k-ada-attack-suite-91c4e7a2d5b8f063 ', 'AUTH_INVALID', 'deny'],
    ['a 100 KB credential is refused', 'anonymous', 'operations', 'k'.repeat(100_000), 'AUTH_INVALID', 'deny'],
    ['a credential that is SQL is refused', 'anonymous', 'operations', "' OR 1=1 --", 'AUTH_INVALID', 'deny'],
  ];
  for (const [name, who, purpose, credential, code, decision] of requests) {
    test(name, async () => {
      const o = await kit.attempt(who, 'SELECT ssn FROM patients LIMIT 1', { purpose, ...(credential !== undefined ? { credential } : {}) });
      expectRefused(o, code, decision);
    });
  }

  test('a non-string SQL value is refused', async () => {
    const o = await kit.attempt('ada', 42 as unknown as string);
    expectRefused(o, 'SQL_SYNTAX', 'error');
  });
});

// ---- 13. robustness bugs the suite found ---------------------------------------------------------

describe('valid probes that must not fail with an internal error', () => {
  attacks([
    { name: 'IN (subquery) over a masked column is answered, not an internal error', as: 'ada', sql: () => `SELECT count(*) FROM patients WHERE ssn IN (SELECT ssn FROM patients WHERE name = '${q(east.name)}')`, check: (r) => assert.ok(count(r) >= 1) },
    { name: 'a negative number literal is answered, not an internal error', as: 'ivan', sql: () => 'SELECT count(*) FROM patients WHERE -1 < 0', check: allIvanRows },
  ]);
});
