/**
 * What a node keeps about jobs: registered partner signing keys, submitted bundles (by code
 * hash), the owner's approvals (code hash × dataset × purpose → the principal the job reads
 * as), and runs with their logs and pinned outputs. Written once on the state's SQL driver
 * (src/sql/driver.ts; tables in src/sql/tables/jobs.ts): an embedded file on one node, or the
 * PostgreSQL state every node of a cluster shares. Every write is one statement.
 *
 * Outputs of a run are kept here only to hand them to the airlock; they never leave the node
 * except through an airlock release (src/airlock/). Once released they live in the partner's
 * workspace (issue 23) and the run keeps only their SHA-256 (`forgetOutputs`).
 */
import type { SqlDriver, SqlValue } from '../sql/driver.ts';
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
  readonly #sql: SqlDriver;

  constructor(sql: SqlDriver) {
    this.#sql = sql;
  }

  async addSigner(keyId: string, org: string, pem: string, by: string, at: string): Promise<boolean> {
    return (await this.#sql.run('INSERT INTO {job_signers} (key_id, org, public_key_pem, added_by, added_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING', [keyId, org, pem, by, at])) === 1;
  }

  async signer(keyId: string): Promise<{ org: string; pem: string } | null> {
    const r = await this.#sql.get<{ org: string; public_key_pem: string }>('SELECT org, public_key_pem FROM {job_signers} WHERE key_id = ?', [keyId]);
    return r ? { org: r.org, pem: r.public_key_pem } : null;
  }

  async addJob(j: Omit<JobRecord, 'status'>): Promise<void> {
    await this.#sql.run("INSERT INTO {jobs} (id, code_hash, bundle, submitter, submitted_at, status) VALUES (?, ?, ?, ?, ?, 'submitted')", [j.id, j.codeHash, JSON.stringify(j.bundle), j.submitter, j.submittedAt]);
  }

  async job(id: string): Promise<JobRecord | null> {
    const r = await this.#sql.get<Record<string, string>>('SELECT * FROM {jobs} WHERE id = ?', [id]);
    return r ? { id: r.id!, codeHash: r.code_hash!, bundle: JSON.parse(r.bundle!) as CodeBundle, submitter: r.submitter!, submittedAt: r.submitted_at!, status: r.status as JobStatus } : null;
  }

  async jobs(): Promise<{ id: string; codeHash: string; name: string; submitter: string; status: JobStatus; submittedAt: string }[]> {
    const rows = await this.#sql.query<Record<string, string>>('SELECT id, code_hash, bundle, submitter, status, submitted_at FROM {jobs} ORDER BY submitted_at, id');
    return rows.map((r) => ({ id: r.id!, codeHash: r.code_hash!, name: (JSON.parse(r.bundle!) as CodeBundle).manifest.name, submitter: r.submitter!, status: r.status as JobStatus, submittedAt: r.submitted_at! }));
  }

  async setStatus(id: string, status: JobStatus): Promise<void> {
    await this.#sql.run('UPDATE {jobs} SET status = ? WHERE id = ?', [status, id]);
  }

  async approve(a: Approval): Promise<void> {
    await this.#sql.run(`INSERT INTO {job_approvals} (code_hash, dataset, purpose, principal, approver, approved_at, measurements) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (code_hash, dataset, purpose) DO UPDATE SET principal = excluded.principal, approver = excluded.approver, approved_at = excluded.approved_at, measurements = excluded.measurements`,
    [a.codeHash, a.dataset, a.purpose, a.principal, a.approver, a.approvedAt, JSON.stringify(a.measurements)]);
  }

  async approvals(codeHash: string): Promise<Approval[]> {
    const rows = await this.#sql.query<Record<string, string>>('SELECT * FROM {job_approvals} WHERE code_hash = ? ORDER BY dataset, purpose', [codeHash]);
    return rows.map((r) => ({ codeHash: r.code_hash!, dataset: r.dataset!, purpose: r.purpose!, principal: r.principal!, approver: r.approver!, approvedAt: r.approved_at!, measurements: JSON.parse(r.measurements ?? '[]') as string[] }));
  }

  /** Enclave measurements approved for a dataset (any job). */
  async approvedMeasurements(dataset: string): Promise<string[]> {
    const rows = await this.#sql.query<{ measurements: string }>('SELECT measurements FROM {job_approvals} WHERE dataset = ?', [dataset]);
    return [...new Set(rows.flatMap((r) => JSON.parse(r.measurements) as string[]))].sort();
  }

  /** Code hashes approved for a dataset (any purpose): what the key broker may release to. */
  async approvedHashes(dataset: string): Promise<string[]> {
    return (await this.#sql.query<{ code_hash: string }>('SELECT DISTINCT code_hash FROM {job_approvals} WHERE dataset = ? ORDER BY code_hash', [dataset])).map((r) => r.code_hash);
  }

  async startRun(id: string, jobId: string, at: string): Promise<void> {
    await this.#sql.run("INSERT INTO {job_runs} (id, job_id, started_at, status, logs) VALUES (?, ?, ?, 'running', '[]')", [id, jobId, at]);
  }

  async endRun(id: string, r: Pick<RunRecord, 'status' | 'error' | 'limit' | 'logs' | 'outputs' | 'outputsSha256' | 'cpuMs' | 'rowsRead'>, at: string): Promise<void> {
    await this.#sql.run('UPDATE {job_runs} SET ended_at = ?, status = ?, error = ?, limit_kind = ?, logs = ?, outputs = ?, outputs_sha256 = ?, cpu_ms = ?, rows_read = ? WHERE id = ?',
      [at, r.status, r.error, r.limit, JSON.stringify(r.logs), r.outputs, r.outputsSha256, r.cpuMs, r.rowsRead, id]);
  }

  /**
   * Drops a run's outputs once the airlock released them into the partner's workspace: the
   * run keeps their SHA-256 (what was reviewed and released), never a second copy. A run whose
   * outputs are gone cannot be submitted again.
   */
  async forgetOutputs(runId: string): Promise<void> {
    await this.#sql.run('UPDATE {job_runs} SET outputs = NULL WHERE id = ?', [runId]);
  }

  async runs(jobId: string): Promise<RunRecord[]> {
    return (await this.#sql.query<Record<string, SqlValue>>('SELECT * FROM {job_runs} WHERE job_id = ? ORDER BY started_at, id', [jobId])).map(toRun);
  }

  async run(id: string): Promise<RunRecord | null> {
    const r = await this.#sql.get<Record<string, SqlValue>>('SELECT * FROM {job_runs} WHERE id = ?', [id]);
    return r ? toRun(r) : null;
  }
}

function toRun(r: Record<string, SqlValue>): RunRecord {
  const num = (v: SqlValue): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    id: r.id as string, jobId: r.job_id as string, startedAt: r.started_at as string, endedAt: (r.ended_at ?? null) as string | null,
    status: r.status as RunRecord['status'], error: (r.error ?? null) as string | null, limit: (r.limit_kind ?? null) as string | null,
    logs: JSON.parse((r.logs as string) ?? '[]') as string[], outputs: (r.outputs ?? null) as string | null, outputsSha256: (r.outputs_sha256 ?? null) as string | null,
    cpuMs: num(r.cpu_ms ?? null), rowsRead: num(r.rows_read ?? null),
  };
}
