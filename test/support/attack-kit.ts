/**
 * Fixture for the attack suite: a small demo workspace in a temp dir, started in-process as a
 * node (src/node/start.ts: a real transparency log and a Gatehouse), and the ground truth read straight from the Parquet
 * files with a separate DuckDB connection (never through Gatehouse), so every hostile
 * query can be checked against the real protected values.
 *
 * `attempt()` is the one way the suite sends a query. Whatever the outcome, it asserts:
 * - exactly one new audit entry, whose decision and error code match the outcome;
 * - a refusal is a GatehouseError with a stable code;
 * - no raw protected value (for that principal), no file content and no secret appears
 *   in the response, the error or the audit entry;
 * - for the insurer, no region outside its row filter appears in a region column.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { TransparencyLog, StoredAuditEntry } from '../../src/audit/index.ts';
import { createTestDemoWorkspace } from '../helpers/demo-data.ts';
import { GatehouseError, type ErrorCode } from '../../src/errors.ts';
import { startNode, type GatehouseNode } from '../../src/node/start.ts';
import { precreateAuditKeys } from '../helpers/audit-keys.ts';
import type { Gatehouse, QueryResponse } from '../../src/pipeline/gatehouse.ts';

export type Who = 'rhea' | 'ivan' | 'ada';
export type Decision = 'allow' | 'deny' | 'error';

export const PURPOSE: Readonly<Record<Who, string>> = { rhea: 'research', ivan: 'claims-processing', ada: 'operations' };

export const KEYS: Readonly<Record<Who, string>> = {
  rhea: 'k-rhea-attack-suite-7f3a9c1e5b2d4f60',
  ivan: 'k-ivan-attack-suite-2b8e6d4c0a9f1e37',
  ada: 'k-ada-attack-suite-91c4e7a2d5b8f063',
};

/** The statement timeout the suite runs under (so a runaway query is stopped fast). */
export const STATEMENT_TIMEOUT_MS = 1500;
export const PATIENTS = 3000;
export const IVAN_REGION = 'us-east';
export const IVAN_ROW_CAP = 1000;
export const RHEA_MIN_GROUP = 11;

/** What /etc/passwd (or any passwd file) looks like; must never appear in a response. */
export const FILE_MARKERS = ['root:x:0:0', 'daemon:x:', '/bin/bash', '/usr/sbin/nologin'];

export interface Patient {
  readonly id: number;
  readonly name: string;
  readonly ssn: string;
  readonly dob: string;
  readonly email: string;
  readonly phone: string;
  readonly zip: string;
  readonly region: string;
}

export interface GroundTruth {
  readonly patients: readonly Patient[];
  readonly byId: ReadonlyMap<number, Patient>;
  readonly ssns: ReadonlySet<string>;
  readonly ssnDigits: ReadonlySet<string>;
  readonly names: ReadonlySet<string>;
  readonly emails: ReadonlySet<string>;
  readonly phones: ReadonlySet<string>;
  /** Distinct patients per zip code. */
  readonly patientsPerZip: ReadonlyMap<string, number>;
  readonly usEastPatients: number;
  /** us-east claim ids, ascending. */
  readonly usEastClaimIds: readonly number[];
  readonly totalClaims: number;
  readonly totalEncounters: number;
}

export interface Outcome {
  readonly who: Who | 'anonymous';
  readonly sql: string;
  readonly res: QueryResponse | null;
  readonly err: GatehouseError | null;
  readonly entry: StoredAuditEntry;
  readonly ms: number;
}

export interface AttemptOptions {
  /** Overrides the principal's normal purpose (may be any value, to test validation). */
  readonly purpose?: unknown;
  /** Overrides the credential (null = none presented). */
  readonly credential?: string | null;
}

const bigintSafe = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

export function serialize(x: unknown): string {
  return JSON.stringify(x, bigintSafe);
}

async function readGroundTruth(dataDir: string): Promise<GroundTruth> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const q = async (sql: string): Promise<unknown[][]> => (await c.runAndReadAll(sql)).getRowsJS() as unknown[][];
    const p = join(dataDir, 'patients.parquet').replace(/'/g, "''");
    const cl = join(dataDir, 'claims.parquet').replace(/'/g, "''");
    const en = join(dataDir, 'encounters.parquet').replace(/'/g, "''");
    const rows = await q(`SELECT patient_id, name, ssn, CAST(date_of_birth AS VARCHAR), email, phone, zip, region FROM '${p}' ORDER BY patient_id`);
    const patients: Patient[] = rows.map((r) => ({
      id: Number(r[0]), name: String(r[1]), ssn: String(r[2]), dob: String(r[3]), email: String(r[4]), phone: String(r[5]), zip: String(r[6]), region: String(r[7]),
    }));
    const claims = await q(`SELECT claim_id FROM '${cl}' WHERE region = '${IVAN_REGION}' ORDER BY claim_id`);
    const [[totalClaims]] = await q(`SELECT count(*) FROM '${cl}'`) as [[bigint]];
    const [[totalEncounters]] = await q(`SELECT count(*) FROM '${en}'`) as [[bigint]];
    const perZip = new Map<string, number>();
    for (const x of patients) perZip.set(x.zip, (perZip.get(x.zip) ?? 0) + 1);
    return {
      patients,
      byId: new Map(patients.map((x) => [x.id, x])),
      ssns: new Set(patients.map((x) => x.ssn)),
      ssnDigits: new Set(patients.map((x) => x.ssn.replace(/-/g, ''))),
      names: new Set(patients.map((x) => x.name)),
      emails: new Set(patients.map((x) => x.email)),
      phones: new Set(patients.map((x) => x.phone)),
      patientsPerZip: perZip,
      usEastPatients: patients.filter((x) => x.region === IVAN_REGION).length,
      usEastClaimIds: claims.map((r) => Number(r[0])),
      totalClaims: Number(totalClaims),
      totalEncounters: Number(totalEncounters),
    };
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

export class AttackKit {
  readonly dir: string;
  readonly gh: Gatehouse;
  readonly audit: TransparencyLog;
  readonly truth: GroundTruth;
  readonly #secrets: readonly string[];
  readonly #node: GatehouseNode;

  private constructor(dir: string, node: GatehouseNode, truth: GroundTruth, secrets: string[]) {
    this.dir = dir;
    this.#node = node;
    this.gh = node.gatehouse;
    this.audit = node.audit;
    this.truth = truth;
    this.#secrets = secrets;
  }

  static async open(): Promise<AttackKit> {
    const dir = mkdtempSync(join(tmpdir(), 'gh-attack-'));
    const ws = join(dir, 'workspace');
    await createTestDemoWorkspace(ws, { patients: PATIENTS, keys: KEYS });
    // A runaway query must be stopped quickly in this suite (the demo default is 20 s).
    const yamlPath = join(ws, 'gatehouse.yaml');
    const yaml = readFileSync(yamlPath, 'utf8');
    assert.match(yaml, /statementTimeoutMs: \d+/);
    writeFileSync(yamlPath, yaml.replace(/statementTimeoutMs: \d+/, `statementTimeoutMs: ${STATEMENT_TIMEOUT_MS}`));
    precreateAuditKeys(join(dir, 'audit'));
    const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true });
    try {
      const truth = await readGroundTruth(join(ws, 'data'));
      const hashKey = readFileSync(join(ws, 'secrets', 'hash.key'), 'utf8').trim();
      return new AttackKit(dir, node, truth, [...Object.values(KEYS), hashKey]);
    } catch (err) {
      await node.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#node.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Sends one query as `who`, asserting the properties every request must have. */
  async attempt(who: Who | 'anonymous', sql: string, options: AttemptOptions = {}): Promise<Outcome> {
    const before = this.audit.size;
    const credential = options.credential !== undefined ? options.credential : who === 'anonymous' ? null : KEYS[who];
    const purpose = 'purpose' in options ? options.purpose : who === 'anonymous' ? 'operations' : PURPOSE[who];
    const t0 = performance.now();
    let res: QueryResponse | null = null;
    let err: GatehouseError | null = null;
    try {
      res = await this.gh.query({ credential, source: '127.0.0.1', channel: 'test', sql, purpose: purpose as string });
    } catch (e) {
      assert.ok(e instanceof GatehouseError, `a refusal must be a GatehouseError, got ${String(e)}`);
      err = e;
    }
    const ms = performance.now() - t0;
    assert.equal(this.audit.size, before + 1, 'every request appends exactly one audit entry');
    const entry = this.audit.leaf(before).entry;
    assert.equal(entry.action, 'query');
    if (res) {
      assert.equal(entry.decision, 'allow');
      assert.equal(res.governance.auditId, String(before));
      assert.equal(entry.rowsReturned, res.rows.length);
      assert.equal(entry.errorCode, null);
    } else {
      assert.equal(entry.errorCode, err!.code, 'the audit entry records the error code returned');
      assert.notEqual(entry.decision, 'allow');
    }
    const out: Outcome = { who, sql, res, err, entry, ms };
    this.assertNoLeak(out);
    return out;
  }

  /**
   * Raw values the principal may not see, found in `text`. A token the attacker wrote into
   * the SQL itself is not counted (echoing the attacker's own literal leaks nothing).
   */
  leaksIn(text: string, who: Who | 'anonymous', sql: string): string[] {
    const t = this.truth;
    const found = new Set<string>();
    const scan = (re: RegExp, set: ReadonlySet<string>): void => {
      for (const m of text.matchAll(re)) if (set.has(m[0]) && !sql.includes(m[0])) found.add(m[0]);
    };
    // SSNs and phones are masked for every principal.
    scan(/\d{3}-\d{2}-\d{4}/g, t.ssns);
    scan(/(?<![0-9a-f])\d{9}(?![0-9a-f])/g, t.ssnDigits);
    scan(/\(\d{3}\) 555-\d{4}/g, t.phones);
    // Emails are unmasked for the internal analyst only; names for the analyst and the insurer.
    if (who !== 'ada') scan(/[a-z]+\.[a-z]+\d+@[a-z]+\.example/g, t.emails);
    if (who === 'rhea' || who === 'anonymous') scan(/[A-Z][a-z]+ [A-Z][a-z]+/g, t.names);
    for (const m of FILE_MARKERS) if (text.includes(m)) found.add(m);
    for (const s of this.#secrets) if (text.includes(s)) found.add('<secret>');
    if (/gh_(ds|src)_/.test(text) && !/gh_(ds|src)_/.test(sql)) found.add('<engine table name>');
    return [...found];
  }

  assertNoLeak(o: Outcome): void {
    const parts: [string, unknown][] = [['audit entry', o.entry]];
    if (o.res) parts.push(['response', o.res]);
    if (o.err) parts.push(['error', { ...o.err.toJSON(), name: o.err.name }]);
    for (const [where, x] of parts) {
      const leaks = this.leaksIn(serialize(x), o.who, o.sql);
      assert.deepEqual(leaks, [], `the ${where} reveals protected values: ${leaks.slice(0, 5).join(', ')}`);
    }
    if (o.who === 'ivan' && o.res) {
      o.res.columns.forEach((c, i) => {
        if (!/region/i.test(c.name)) return;
        for (const row of o.res!.rows) {
          const v = row[i];
          assert.ok(v === null || v === IVAN_REGION, `column ${c.name} shows a row outside the insurer's region: ${String(v)}`);
        }
      });
    }
  }
}

// ---- small readers for assertions ---------------------------------------------------------

export function column(res: QueryResponse, name: string): unknown[] {
  const i = res.columns.findIndex((c) => c.name === name);
  assert.ok(i >= 0, `no column ${name} in ${res.columns.map((c) => c.name).join(', ')}`);
  return res.rows.map((r) => r[i]);
}

export function scalar(res: QueryResponse): unknown {
  assert.equal(res.rows.length, 1, `expected one row, got ${res.rows.length}`);
  assert.equal(res.rows[0]!.length, 1, 'expected one column');
  return res.rows[0]![0];
}

export type { ErrorCode, QueryResponse };
