/**
 * Where a node remembers the latest checkpoint it signed, outside the log's own files, so
 * that rolling the log directory back (an older checkpoint.note, edited entries behind it)
 * is detected at start instead of being re-signed.
 *
 * The anchor only ever moves forward: `advance` with a smaller size is ignored, the same
 * size with another root is refused (two different trees were signed: a fork). The log
 * refuses to start when its stored tree does not extend the anchored checkpoint
 * (LogRollbackDetected). Witness cosignatures (witness.ts) protect the same property
 * against an attacker who can also rewrite the anchor.
 *
 * Two implementations: SqliteCheckpointAnchor below (node:sqlite, synchronous, the
 * embedded default, kept in the node's state directory or beside the log) and the state
 * backend's table (src/sql/tables/checkpoints.ts, on SQLite or PostgreSQL).
 */
import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { AuditError, LogUnavailable } from './errors.ts';
import type { AdvanceReply } from './anchor-worker.ts';

export interface AnchoredCheckpoint {
  readonly size: number;
  /** Base64 RFC 6962 root hash of the first `size` entries. */
  readonly rootHash: string;
  /** Hex SHA-256 of the signed note as published. */
  readonly noteHash: string;
  /** The signed note itself (log signature and any witness cosignatures). */
  readonly note: string;
}

type MaybePromise<T> = T | Promise<T>;

export interface CheckpointAnchor {
  latest(): MaybePromise<AnchoredCheckpoint | null>;
  /** Records a newer checkpoint durably before the log publishes it. */
  advance(cp: AnchoredCheckpoint): MaybePromise<void>;
  /**
   * The same as `advance`, without blocking the event loop while the record becomes durable
   * (the log's periodic checkpoints run beside the requests). Optional: without it the log
   * calls `advance`.
   */
  advanceOffThread?(cp: AnchoredCheckpoint): Promise<void>;
  close?(): MaybePromise<void>;
}

export function noteHash(note: string): string {
  return createHash('sha256').update(note, 'utf8').digest('hex');
}

/** The same size anchored with two different roots: two trees were signed. */
export class AnchorForked extends AuditError {
  constructor(size: number) {
    super('AUDIT_CHECKPOINT_INCONSISTENT', `a different root for size ${size} is already anchored: refusing to record a fork`, 500);
  }
}

/** The table both implementations use (SQLite dialect; checkpoints.ts declares it for both). */
export const ANCHOR_DDL = `CREATE TABLE IF NOT EXISTS audit_checkpoints (
  origin      TEXT NOT NULL,
  size        INTEGER NOT NULL CHECK (size >= 0),
  root_hash   TEXT NOT NULL,
  note_hash   TEXT NOT NULL,
  note        TEXT NOT NULL,
  anchored_ms INTEGER NOT NULL,
  PRIMARY KEY (origin, size)
) STRICT;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;`;

interface Row { size: number; root_hash: string; note_hash: string; note: string }

/** The anchor's thread ends after this long without a checkpoint to record. */
const WORKER_IDLE_MS = 10_000;

/**
 * A synchronous anchor in one node:sqlite file (WAL, synchronous = FULL). Its commit waits
 * for the disk (an fsync of the WAL), so the log's periodic checkpoints use
 * `advanceOffThread`: the same transaction on a worker thread's own connection
 * (anchor-worker.ts), started on first use, holding the process open only while a record is
 * under way, and ended after 10 s without one.
 */
export class SqliteCheckpointAnchor implements CheckpointAnchor {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #origin: string;
  #worker: Worker | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #nextId = 0;
  readonly #waiting = new Map<number, { size: number; resolve: () => void; reject: (e: Error) => void }>();

  private constructor(path: string, db: DatabaseSync, origin: string) {
    this.path = path;
    this.#db = db;
    this.#origin = origin;
  }

  static open(path: string, origin: string): SqliteCheckpointAnchor {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { timeout: 1000 });
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
      db.exec(ANCHOR_DDL);
    } catch (e) {
      throw new LogUnavailable(`cannot open the checkpoint anchor ${path} (check the directory's permissions and disk)`, { cause: e });
    }
    return new SqliteCheckpointAnchor(path, db, origin);
  }

  latest(): AnchoredCheckpoint | null {
    const r = this.#db.prepare('SELECT size, root_hash, note_hash, note FROM audit_checkpoints WHERE origin = ? ORDER BY size DESC LIMIT 1').get(this.#origin) as Row | undefined;
    return r ? { size: Number(r.size), rootHash: r.root_hash, noteHash: r.note_hash, note: r.note } : null;
  }

  advance(cp: AnchoredCheckpoint): void {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const same = this.#db.prepare('SELECT root_hash FROM audit_checkpoints WHERE origin = ? AND size = ?').get(this.#origin, cp.size) as { root_hash: string } | undefined;
        if (same && same.root_hash !== cp.rootHash) throw new AnchorForked(cp.size);
        const top = this.latest();
        if (!same && (!top || top.size < cp.size)) {
          this.#db.prepare('INSERT INTO audit_checkpoints (origin, size, root_hash, note_hash, note, anchored_ms) VALUES (?, ?, ?, ?, ?, ?)')
            .run(this.#origin, cp.size, cp.rootHash, cp.noteHash, cp.note, Date.now());
        }
        this.#db.exec('COMMIT');
      } catch (e) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw e;
      }
    } catch (e) {
      if (e instanceof AuditError) throw e;
      throw new LogUnavailable('cannot record the checkpoint in the anchor (check the state directory: permissions, disk space)', { cause: e });
    }
  }

  advanceOffThread(cp: AnchoredCheckpoint): Promise<void> {
    const w = this.#thread();
    if (this.#idleTimer) { clearTimeout(this.#idleTimer); this.#idleTimer = null; }
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#waiting.set(id, { size: cp.size, resolve, reject });
      w.ref();
      w.postMessage({ id, cp });
    });
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./anchor-worker.ts', import.meta.url), { workerData: { path: this.path, origin: this.#origin } });
    w.unref();
    const settle = (id: number, err: ((size: number) => Error) | null): void => {
      const p = this.#waiting.get(id);
      if (!p) return;
      this.#waiting.delete(id);
      if (this.#waiting.size === 0) {
        w.unref();
        // An idle node (no checkpoints) does not keep a thread and a connection open.
        if (!this.#idleTimer && this.#worker === w) {
          this.#idleTimer = setTimeout(() => { this.#idleTimer = null; if (this.#waiting.size === 0 && this.#worker === w) { this.#worker = null; void w.terminate(); } }, WORKER_IDLE_MS);
          this.#idleTimer.unref();
        }
      }
      if (err) p.reject(err(p.size)); else p.resolve();
    };
    w.on('message', (r: AdvanceReply) => {
      settle(r.id, r.ok ? null : r.forked ? (size) => new AnchorForked(size) : () => new LogUnavailable('cannot record the checkpoint in the anchor (check the state directory: permissions, disk space)', { cause: new Error(r.message) }));
    });
    const fail = (e: unknown): void => {
      this.#worker = null;
      const err = new LogUnavailable('the checkpoint anchor\'s thread stopped; the next checkpoint starts a new one', { cause: e });
      for (const id of [...this.#waiting.keys()]) settle(id, () => err);
    };
    w.on('error', fail);
    w.on('exit', (code) => { if (this.#worker === w) fail(new Error(`exit code ${code}`)); });
    this.#worker = w;
    return w;
  }

  close(): void {
    const w = this.#worker;
    this.#worker = null;
    if (this.#idleTimer) { clearTimeout(this.#idleTimer); this.#idleTimer = null; }
    for (const [id, p] of this.#waiting) { this.#waiting.delete(id); p.reject(new LogUnavailable('the checkpoint anchor was closed before the checkpoint was recorded')); }
    if (w) void w.terminate();
    try { this.#db.close(); } catch { /* closed */ }
  }
}
