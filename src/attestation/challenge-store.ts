/**
 * Where the key broker (key-broker.ts) keeps its single-use challenges and the digests of
 * evidence already presented. Both must be shared by every node that can answer
 * `POST /v1/attestation/release`: a challenge issued by one node is redeemed at another, and a
 * replay sent to a second node must still be seen as a replay. So the node's store is SQL on
 * the state's driver (tables in src/sql/tables/jobs.ts): embedded on one node, PostgreSQL in a
 * cluster. The atomicity the broker relies on is in the statements themselves:
 *
 *  - `take` is one `DELETE … RETURNING`: of two nodes redeeming the same challenge at once,
 *    exactly one gets the row (RFC 9334 §10.2 freshness by nonce needs single use);
 *  - `firstSeen` is one `INSERT … ON CONFLICT DO NOTHING` on the digest as primary key.
 *
 * The in-memory store is for a broker without a node (unit tests, the benchmark).
 */
import type { SqlDriver } from '../sql/driver.ts';
import type { TeeFormat } from './types.ts';

export interface StoredChallenge {
  readonly id: string;
  readonly jobId: string;
  readonly format: TeeFormat;
  readonly nonce: Uint8Array;
  readonly expiresMs: number;
}

export interface ChallengeStore {
  /** Stores a new challenge; drops expired ones (bounded growth). */
  put(c: StoredChallenge, nowMs: number): Promise<void>;
  /** Removes and returns the challenge (null if unknown or already taken): single use. */
  take(id: string): Promise<StoredChallenge | null>;
  /** Records an evidence digest; false if it was seen before (a replay). Forgets digests older than `forgetBeforeMs`. */
  firstSeen(digest: string, nowMs: number, forgetBeforeMs: number): Promise<boolean>;
}

const MAX_PENDING = 10_000;
const MAX_SEEN = 100_000;

export class MemoryChallengeStore implements ChallengeStore {
  readonly #challenges = new Map<string, StoredChallenge>();
  readonly #seen = new Map<string, number>();

  async put(c: StoredChallenge, nowMs: number): Promise<void> {
    for (const [id, x] of this.#challenges) if (x.expiresMs < nowMs || this.#challenges.size >= MAX_PENDING) this.#challenges.delete(id); else break;
    this.#challenges.set(c.id, c);
  }

  async take(id: string): Promise<StoredChallenge | null> {
    const c = this.#challenges.get(id) ?? null;
    this.#challenges.delete(id);
    return c;
  }

  async firstSeen(digest: string, nowMs: number, forgetBeforeMs: number): Promise<boolean> {
    for (const [d, at] of this.#seen) if (at < forgetBeforeMs || this.#seen.size >= MAX_SEEN) this.#seen.delete(d); else break;
    if (this.#seen.has(digest)) return false;
    this.#seen.set(digest, nowMs);
    return true;
  }
}

interface Row { id: string; job_id: string; format: string; nonce: Uint8Array; expires_ms: number | bigint | string }

export class SqlChallengeStore implements ChallengeStore {
  readonly #sql: SqlDriver;

  constructor(sql: SqlDriver) {
    this.#sql = sql;
  }

  async put(c: StoredChallenge, nowMs: number): Promise<void> {
    await this.#sql.run('DELETE FROM {attestation_challenges} WHERE expires_ms < ?', [nowMs]);
    await this.#sql.run('INSERT INTO {attestation_challenges} (id, job_id, format, nonce, expires_ms) VALUES (?, ?, ?, ?, ?)', [c.id, c.jobId, c.format, c.nonce, c.expiresMs]);
  }

  async take(id: string): Promise<StoredChallenge | null> {
    const rows = await this.#sql.query<Row>('DELETE FROM {attestation_challenges} WHERE id = ? RETURNING id, job_id, format, nonce, expires_ms', [id]);
    const r = rows[0];
    return r ? { id: r.id, jobId: r.job_id, format: r.format as TeeFormat, nonce: new Uint8Array(r.nonce), expiresMs: Number(r.expires_ms) } : null;
  }

  async firstSeen(digest: string, nowMs: number, forgetBeforeMs: number): Promise<boolean> {
    await this.#sql.run('DELETE FROM {attestation_evidence} WHERE seen_ms < ?', [forgetBeforeMs]);
    return (await this.#sql.run('INSERT INTO {attestation_evidence} (digest, seen_ms) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING', [digest, nowMs])) === 1;
  }
}
