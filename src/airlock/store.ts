/**
 * Airlock requests, their pinned outputs and every review, on the state's SQL driver
 * (src/sql/driver.ts; tables in src/sql/tables/jobs.ts): an embedded file on one node, or the
 * PostgreSQL state a cluster shares. The outputs are copied in at submission together with
 * their SHA-256; release re-hashes what it is about to hand out and refuses if a byte changed.
 * A state change is a compare-and-set on the current state, and a review runs in one
 * transaction holding the request's lock (one writer per request across every node), so two
 * reviewers racing can neither both move the same request nor both count as "the first".
 *
 * A released request's outputs live on only in the partner's workspace (issue 23):
 * `forgetOutputs` empties the copy here and keeps its SHA-256, the reviews and the checks
 * report (which names outputs, checks, columns and rows, never a value).
 */
import type { SqlDriver, SqlQueries } from '../sql/driver.ts';
import type { AirlockState } from './states.ts';

export interface AirlockRequest {
  readonly id: string;
  readonly jobId: string;
  readonly runId: string;
  readonly requester: string;
  /** The job's submitter: the outputs' author, who may not review them either. */
  readonly author: string;
  readonly state: AirlockState;
  readonly outputs: string;
  readonly outputsSha256: string;
  readonly checks: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Review {
  readonly requestId: string;
  readonly reviewer: string;
  readonly decision: 'approve' | 'reject';
  readonly reason: string;
  readonly at: string;
}

/** The statements of one request's review, inside its transaction. */
export interface AirlockTx {
  reviews(requestId: string): Promise<Review[]>;
  addReview(r: Review): Promise<void>;
  move(id: string, from: AirlockState, to: AirlockState, at: string, checks?: string): Promise<boolean>;
}

export class AirlockStore {
  readonly #sql: SqlDriver;

  constructor(sql: SqlDriver) {
    this.#sql = sql;
  }

  async create(r: Omit<AirlockRequest, 'state' | 'checks' | 'updatedAt'>): Promise<void> {
    await this.#sql.run("INSERT INTO {airlock_requests} (id, job_id, run_id, requester, author, state, outputs, outputs_sha256, checks, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'draft', ?, ?, NULL, ?, ?)",
      [r.id, r.jobId, r.runId, r.requester, r.author, r.outputs, r.outputsSha256, r.createdAt, r.createdAt]);
  }

  async get(id: string): Promise<AirlockRequest | null> {
    const r = await this.#sql.get<Record<string, string | null>>('SELECT * FROM {airlock_requests} WHERE id = ?', [id]);
    return r ? toRequest(r) : null;
  }

  async list(): Promise<AirlockRequest[]> {
    return (await this.#sql.query<Record<string, string | null>>('SELECT * FROM {airlock_requests} ORDER BY created_at, id')).map(toRequest);
  }

  /** Moves `id` from `from` to `to`; false if its state is no longer `from` (nothing changed). */
  move(id: string, from: AirlockState, to: AirlockState, at: string, checks?: string): Promise<boolean> {
    return moveOn(this.#sql, id, from, to, at, checks);
  }

  reviews(requestId: string): Promise<Review[]> {
    return reviewsOn(this.#sql, requestId);
  }

  /** Empties a released request's copy of the outputs (only once released; false otherwise). */
  async forgetOutputs(id: string): Promise<boolean> {
    return (await this.#sql.run("UPDATE {airlock_requests} SET outputs = '' WHERE id = ? AND state = 'released'", [id])) === 1;
  }

  /**
   * Runs `fn` as one write transaction holding request `id`'s lock (a review and the state
   * change it causes): committed if it returns, rolled back if it throws.
   */
  transaction<T>(id: string, fn: (tx: AirlockTx) => Promise<T>): Promise<T> {
    return this.#sql.transaction((q) => fn({
      reviews: (requestId) => reviewsOn(q, requestId),
      addReview: async (r) => { await q.run('INSERT INTO {airlock_reviews} (request_id, reviewer, decision, reason, at) VALUES (?, ?, ?, ?, ?)', [r.requestId, r.reviewer, r.decision, r.reason, r.at]); },
      move: (rid, from, to, at, checks) => moveOn(q, rid, from, to, at, checks),
    }), { mode: 'write', lock: `gatehouse-airlock:${id}` });
  }
}

async function moveOn(q: SqlQueries, id: string, from: AirlockState, to: AirlockState, at: string, checks?: string): Promise<boolean> {
  const n = checks === undefined
    ? await q.run('UPDATE {airlock_requests} SET state = ?, updated_at = ? WHERE id = ? AND state = ?', [to, at, id, from])
    : await q.run('UPDATE {airlock_requests} SET state = ?, updated_at = ?, checks = ? WHERE id = ? AND state = ?', [to, at, checks, id, from]);
  return n === 1;
}

async function reviewsOn(q: SqlQueries, requestId: string): Promise<Review[]> {
  const rows = await q.query<Record<string, string>>('SELECT * FROM {airlock_reviews} WHERE request_id = ? ORDER BY at, reviewer', [requestId]);
  return rows.map((r) => ({ requestId: r.request_id!, reviewer: r.reviewer!, decision: r.decision as Review['decision'], reason: r.reason!, at: r.at! }));
}

function toRequest(r: Record<string, string | null>): AirlockRequest {
  return {
    id: r.id!, jobId: r.job_id!, runId: r.run_id!, requester: r.requester!, author: r.author!, state: r.state as AirlockState,
    outputs: r.outputs!, outputsSha256: r.outputs_sha256!, checks: r.checks ?? null, createdAt: r.created_at!, updatedAt: r.updated_at!,
  };
}
