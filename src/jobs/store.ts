/**
 * What a node keeps about jobs: registered partner signing keys, submitted bundles (by code
 * hash), the owner's approvals (code hash × dataset × purpose → the principal the job reads
 * as), and runs with their logs and pinned outputs. One node:sqlite file in the state
 * directory (`jobs.sqlite`); every write is one statement or one transaction.
 *
 * Outputs of a run are kept here only to hand them to the airlock; they never leave the node
 * except through an airlock release (src/airlock/).
 */
import { DatabaseSync } from 'node:sqlite';
import type { CodeBundle } from './bundle.ts';

export type JobStatus = 'submitted' | 'approved' | 'running' | 'completed' | 'failed';

export interface JobRecord {
  readonly id: string;
  readonly codeHash: string;
  readonly bundle: CodeBundle;
  readonly submitter: string;
  readonly submittedAt: string;
  readonly status: JobStatus;
}

export interface Approval {
  readonly codeHash: string;
  readonly dataset: string;
  readonly purpose: string;
  readonly principal: string;
  readonly approver: string;
  readonly approvedAt: string;
  /** Enclave measurements (Nitro PCR0) the owner accepts for this job's key release. */
  readonly measurements: readonly string[];
}

export interface RunRecord {
  readonly id: string;
  readonly jobId: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly status: 'running' | 'completed' | 'failed';
  readonly error: string | null;
  readonly limit: string | null;
  readonly logs: readonly string[];
  /** The outputs as returned (JSON text) and their SHA-256, pinned for the airlock. */
  readonly outputs: string | null;
  readonly outputsSha256: string | null;
  readonly cpuMs: number | null;
  readonly rowsRead: number | null;
}

export class JobStore {
  readonly #db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  static open(file: string): JobStore {
    const db = new DatabaseSync(file);
    db.exec(`
      PRAGMA journal_mode = WAL;
      CREATE TABLE IF NOT EXISTS signers (key_id TEXT PRIMARY KEY, org TEXT NOT NULL, public_key_pem TEXT NOT NULL, added_by TEXT NOT NULL, added_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, code_hash TEXT NOT NULL, bundle TEXT NOT NULL, submitter TEXT NOT NULL, submitted_at TEXT NOT NULL, status TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS approvals (code_hash TEXT NOT NULL, dataset TEXT NOT NULL, purpose TEXT NOT NULL, principal TEXT NOT NULL, approver TEXT NOT NULL, approved_at TEXT NOT NULL, measurements TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (code_hash, dataset, purpose));
      CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, job_id TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, status TEXT NOT NULL, error TEXT, limit_kind TEXT, logs TEXT NOT NULL DEFAULT '[]', outputs TEXT, outputs_sha256 TEXT, cpu_ms REAL, rows_read INTEGER);
    `);
    return new JobStore(db);
  }

  close(): void { this.#db.close(); }

  addSigner(keyId: string, org: string, pem: string, by: string, at: string): void {
    this.#db.prepare('INSERT INTO signers (key_id, org, public_key_pem, added_by, added_at) VALUES (?, ?, ?, ?, ?)').run(keyId, org, pem, by, at);
  }

  signer(keyId: string): { org: string; pem: string } | null {
    const r = this.#db.prepare('SELECT org, public_key_pem FROM signers WHERE key_id = ?').get(keyId) as { org: string; public_key_pem: string } | undefined;
    return r ? { org: r.org, pem: r.public_key_pem } : null;
  }

  addJob(j: Omit<JobRecord, 'status'>): void {
    this.#db.prepare('INSERT INTO jobs (id, code_hash, bundle, submitter, submitted_at, status) VALUES (?, ?, ?, ?, ?, ?)').run(j.id, j.codeHash, JSON.stringify(j.bundle), j.submitter, j.submittedAt, 'submitted');
  }

  job(id: string): JobRecord | null {
    const r = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Record<string, string> | undefined;
    return r ? { id: r.id!, codeHash: r.code_hash!, bundle: JSON.parse(r.bundle!) as CodeBundle, submitter: r.submitter!, submittedAt: r.submitted_at!, status: r.status as JobStatus } : null;
  }

  jobs(): { id: string; codeHash: string; name: string; submitter: string; status: JobStatus; submittedAt: string }[] {
    const rows = this.#db.prepare('SELECT id, code_hash, bundle, submitter, status, submitted_at FROM jobs ORDER BY submitted_at, id').all() as Record<string, string>[];
    return rows.map((r) => ({ id: r.id!, codeHash: r.code_hash!, name: (JSON.parse(r.bundle!) as CodeBundle).manifest.name, submitter: r.submitter!, status: r.status as JobStatus, submittedAt: r.submitted_at! }));
  }

  setStatus(id: string, status: JobStatus): void {
    this.#db.prepare('UPDATE jobs SET status = ? WHERE id = ?').run(status, id);
  }

  approve(a: Approval): void {
    this.#db.prepare('INSERT OR REPLACE INTO approvals (code_hash, dataset, purpose, principal, approver, approved_at, measurements) VALUES (?, ?, ?, ?, ?, ?, ?)').run(a.codeHash, a.dataset, a.purpose, a.principal, a.approver, a.approvedAt, JSON.stringify(a.measurements));
  }

  approvals(codeHash: string): Approval[] {
    const rows = this.#db.prepare('SELECT * FROM approvals WHERE code_hash = ? ORDER BY dataset, purpose').all(codeHash) as Record<string, string>[];
    return rows.map((r) => ({ codeHash: r.code_hash!, dataset: r.dataset!, purpose: r.purpose!, principal: r.principal!, approver: r.approver!, approvedAt: r.approved_at!, measurements: JSON.parse(r.measurements ?? '[]') as string[] }));
  }

  /** Enclave measurements approved for a dataset (any job). */
  approvedMeasurements(dataset: string): string[] {
    const rows = this.#db.prepare('SELECT measurements FROM approvals WHERE dataset = ?').all(dataset) as { measurements: string }[];
    return [...new Set(rows.flatMap((r) => JSON.parse(r.measurements) as string[]))];
  }

  /** Code hashes approved for a dataset (any purpose): what the key broker may release to. */
  approvedHashes(dataset: string): string[] {
    return (this.#db.prepare('SELECT DISTINCT code_hash FROM approvals WHERE dataset = ?').all(dataset) as { code_hash: string }[]).map((r) => r.code_hash);
  }

  startRun(id: string, jobId: string, at: string): void {
    this.#db.prepare("INSERT INTO runs (id, job_id, started_at, status) VALUES (?, ?, ?, 'running')").run(id, jobId, at);
  }

  endRun(id: string, r: Pick<RunRecord, 'status' | 'error' | 'limit' | 'logs' | 'outputs' | 'outputsSha256' | 'cpuMs' | 'rowsRead'>, at: string): void {
    this.#db.prepare('UPDATE runs SET ended_at = ?, status = ?, error = ?, limit_kind = ?, logs = ?, outputs = ?, outputs_sha256 = ?, cpu_ms = ?, rows_read = ? WHERE id = ?')
      .run(at, r.status, r.error, r.limit, JSON.stringify(r.logs), r.outputs, r.outputsSha256, r.cpuMs, r.rowsRead, id);
  }

  runs(jobId: string): RunRecord[] {
    const rows = this.#db.prepare('SELECT * FROM runs WHERE job_id = ? ORDER BY started_at, id').all(jobId) as Record<string, string | number | null>[];
    return rows.map(toRun);
  }

  run(id: string): RunRecord | null {
    const r = this.#db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as Record<string, string | number | null> | undefined;
    return r ? toRun(r) : null;
  }
}

function toRun(r: Record<string, string | number | null>): RunRecord {
  return {
    id: r.id as string, jobId: r.job_id as string, startedAt: r.started_at as string, endedAt: r.ended_at as string | null,
    status: r.status as RunRecord['status'], error: r.error as string | null, limit: r.limit_kind as string | null,
    logs: JSON.parse((r.logs as string) ?? '[]') as string[], outputs: r.outputs as string | null, outputsSha256: r.outputs_sha256 as string | null,
    cpuMs: r.cpu_ms as number | null, rowsRead: r.rows_read as number | null,
  };
}
