/**
 * Airlock requests, their pinned outputs and every review, in one node:sqlite file
 * (state/jobs/airlock.sqlite). The outputs are copied in at submission together with their
 * SHA-256; release re-hashes what it is about to hand out and refuses if a byte changed.
 * A state change is a compare-and-set on the current state, so two reviewers racing cannot
 * both move the same request.
 */
import { DatabaseSync } from 'node:sqlite';
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

export class AirlockStore {
  readonly #db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  static open(file: string): AirlockStore {
    const db = new DatabaseSync(file);
    db.exec(`
      PRAGMA journal_mode = WAL;
      CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, job_id TEXT NOT NULL, run_id TEXT NOT NULL, requester TEXT NOT NULL, author TEXT NOT NULL, state TEXT NOT NULL, outputs TEXT NOT NULL, outputs_sha256 TEXT NOT NULL, checks TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS reviews (request_id TEXT NOT NULL, reviewer TEXT NOT NULL, decision TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (request_id, reviewer));
    `);
    return new AirlockStore(db);
  }

  close(): void { this.#db.close(); }

  create(r: Omit<AirlockRequest, 'state' | 'checks' | 'updatedAt'>): void {
    this.#db.prepare("INSERT INTO requests (id, job_id, run_id, requester, author, state, outputs, outputs_sha256, checks, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'draft', ?, ?, NULL, ?, ?)")
      .run(r.id, r.jobId, r.runId, r.requester, r.author, r.outputs, r.outputsSha256, r.createdAt, r.createdAt);
  }

  get(id: string): AirlockRequest | null {
    const r = this.#db.prepare('SELECT * FROM requests WHERE id = ?').get(id) as Record<string, string | null> | undefined;
    return r ? toRequest(r) : null;
  }

  list(): AirlockRequest[] {
    return (this.#db.prepare('SELECT * FROM requests ORDER BY created_at, id').all() as Record<string, string | null>[]).map(toRequest);
  }

  /** Moves `id` from `from` to `to`; false if its state is no longer `from` (nothing changed). */
  move(id: string, from: AirlockState, to: AirlockState, at: string, checks?: string): boolean {
    const r = checks === undefined
      ? this.#db.prepare('UPDATE requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?').run(to, at, id, from)
      : this.#db.prepare('UPDATE requests SET state = ?, updated_at = ?, checks = ? WHERE id = ? AND state = ?').run(to, at, checks, id, from);
    return r.changes === 1;
  }

  addReview(r: Review): void {
    this.#db.prepare('INSERT INTO reviews (request_id, reviewer, decision, reason, at) VALUES (?, ?, ?, ?, ?)').run(r.requestId, r.reviewer, r.decision, r.reason, r.at);
  }

  reviews(requestId: string): Review[] {
    const rows = this.#db.prepare('SELECT * FROM reviews WHERE request_id = ? ORDER BY at, reviewer').all(requestId) as Record<string, string>[];
    return rows.map((r) => ({ requestId: r.request_id!, reviewer: r.reviewer!, decision: r.decision as Review['decision'], reason: r.reason!, at: r.at! }));
  }

  /** Runs `fn` in one transaction (a review and the state change it causes). */
  transaction<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }
}

function toRequest(r: Record<string, string | null>): AirlockRequest {
  return {
    id: r.id!, jobId: r.job_id!, runId: r.run_id!, requester: r.requester!, author: r.author!, state: r.state as AirlockState,
    outputs: r.outputs!, outputsSha256: r.outputs_sha256!, checks: r.checks ?? null, createdAt: r.created_at!, updatedAt: r.updated_at!,
  };
}
