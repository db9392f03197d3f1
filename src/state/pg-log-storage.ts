/**
 * Transparency-log storage in PostgreSQL (LogStorage), shared by several Gatehouse nodes.
 *
 * Tables (migrations.ts): audit_entries (idx, payload = the RFC 8785 leaf bytes,
 * leaf_hash = SHA-256(0x00 || payload)), audit_head (the next index; its row lock is the
 * one-writer-at-a-time lock) and audit_checkpoint (the signed checkpoint of the largest
 * size any node stored).
 *
 * Sequencing. appendSequenced locks the head row (SELECT … FOR UPDATE) inside a
 * transaction, catches up with every entry other nodes committed before it (they all held
 * the same lock), lets the caller build its payloads for the next index, inserts them and
 * advances the head, and commits. So indexes are dense, unique and in commit order, and
 * every leaf carries the index it is stored at.
 *
 * Synchronous reads. LogStorage's reads (size, root, leafHash, subtreeHash) are synchronous,
 * and proofs need them: each node keeps an in-memory mirror of the Merkle tree (PackedTree,
 * ≈ 64 bytes per entry; the entry bytes stay in PostgreSQL). The mirror is brought up to date
 * inside every append (under the lock) and by refresh(), which TransparencyLog calls before
 * it signs a checkpoint, makes a receipt or an export, or searches. Between refreshes a node
 * answers proofs for the prefix it has seen, which is always a prefix of the shared log.
 *
 * Integrity while catching up. Every row read is checked: its index follows the previous
 * one, the leaf inside claims that index, and its stored leaf hash is the hash of its bytes;
 * and the stored checkpoint must verify with this node's log keys and match the mirrored
 * root. Any mismatch is StoreCorrupt: the node stops serving the log instead of signing
 * over altered rows. (Rows already mirrored are re-read for exports; the offline verifier
 * recomputes their hashes, so a row altered later is caught there.)
 *
 * Durability. Appends and checkpoints commit with synchronous_commit = on (SET LOCAL), so an
 * entry acknowledged to its request is on disk even where the server's default is off.
 *
 * Failure. Every PostgreSQL error is LogUnavailable; the append's promise rejects and the
 * request that wanted the audit entry fails closed. An append whose COMMIT outcome is
 * unknown (connection lost during COMMIT) is reported as failed even if PostgreSQL kept
 * it; the next refresh picks it up, so the log stays consistent (the entry exists, its
 * request failed).
 */
import type { Pool, PoolClient } from 'pg';
import { LogUnavailable, StoreCorrupt } from '../audit/errors.ts';
import { hashEquals, HASH_SIZE, sha256 } from '../audit/merkle.ts';
import type { FileStoreOptions, LogStorage, StoredEntry } from '../audit/store.ts';
import { quoteSchema } from '../sql/migrations.ts';
import { PackedTree } from './packed-tree.ts';
import { StateBusy } from '../sql/errors.ts';
import { DEFAULT_RETRY, isRetryable, withRetry } from '../sql/retry.ts';
import { DURABLE } from '../sql/postgres.ts';

export interface PgLogStorageOptions {
  /** Schema holding the tables (default "gatehouse"). */
  readonly schema?: string;
  /** Entries kept in memory for the synchronous readEntry (default 4096, most recent first). */
  readonly entryCache?: number;
  /** Rows fetched per query while catching up or scanning (default 2000). */
  readonly pageSize?: number;
}

const MAX_RECORD = 16 * 1024 * 1024;

function leafHashOf(payload: Buffer): Buffer {
  const prefixed = Buffer.allocUnsafe(payload.length + 1);
  prefixed[0] = 0x00;
  payload.copy(prefixed, 1);
  return sha256(prefixed);
}

export class PgLogStorage implements LogStorage {
  readonly schema: string;
  readonly #pool: Pool;
  readonly #S: string;
  readonly #tree = new PackedTree();
  readonly #cacheMax: number;
  readonly #page: number;
  #cache = new Map<number, Buffer>();
  #parsers: FileStoreOptions | null = null;
  #checkpoint: string | null = null;
  #checkpointChecked: string | null = null;
  #bytes = 0;
  #closed = false;
  /** Serialises everything that grows the mirror (appends and refreshes of this node). */
  #queue: Promise<unknown> = Promise.resolve();

  /** Uses `pool` (not owned: close() does not end it). The schema must be migrated. */
  constructor(pool: Pool, options: PgLogStorageOptions = {}) {
    this.schema = options.schema ?? 'gatehouse';
    this.#S = quoteSchema(this.schema);
    this.#pool = pool;
    this.#cacheMax = options.entryCache ?? 4096;
    this.#page = options.pageSize ?? 2000;
  }

  get size(): number { return this.#tree.size; }

  async attach(options: FileStoreOptions): Promise<void> {
    if (this.#parsers) throw new LogUnavailable('this PostgreSQL log storage is already attached to a log');
    this.#parsers = options;
    await this.refresh();
  }

  async refresh(): Promise<void> {
    return this.#serial(async () => {
      const c = await this.#connect();
      let broken = false;
      try {
        // The checkpoint first, then the entries: the checkpoint never covers more than we read.
        const cp = await c.query<{ note: string }>(`SELECT note FROM ${this.#S}.audit_checkpoint WHERE id = 1`);
        await this.#catchUp(c, null);
        if (cp.rowCount) this.#adoptCheckpoint(cp.rows[0]!.note);
      } catch (e) {
        broken = !(e instanceof StoreCorrupt || e instanceof LogUnavailable);
        throw this.#wrap(e, 'cannot read the audit log from PostgreSQL');
      } finally {
        c.release(broken);
      }
    });
  }

  /** Catches up with the rows from the mirror's size up to `until` (exclusive; null: all). */
  async #catchUp(c: PoolClient, until: number | null): Promise<void> {
    const parsers = this.#requireAttached();
    for (;;) {
      const from = this.#tree.size;
      if (until !== null && from >= until) return;
      const limit = until === null ? this.#page : Math.min(this.#page, until - from);
      const r = await c.query<{ idx: string; payload: Buffer; leaf_hash: Buffer }>(
        `SELECT idx, payload, leaf_hash FROM ${this.#S}.audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2`, [from, limit]);
      if (r.rowCount === 0) {
        if (until !== null) throw new StoreCorrupt(`audit_entries ends at ${from} but the head says ${until}`);
        return;
      }
      const hashes = Buffer.allocUnsafe(r.rows.length * HASH_SIZE);
      r.rows.forEach((row, i) => {
        const expected = from + i;
        if (Number(row.idx) !== expected) throw new StoreCorrupt(`audit_entries: entry ${expected} is missing (next row is ${row.idx})`);
        let claimed: number;
        try { claimed = parsers.indexOf(row.payload); } catch { throw new StoreCorrupt(`audit_entries: entry ${expected} is not a valid leaf`); }
        if (claimed !== expected) throw new StoreCorrupt(`audit_entries: row ${expected} holds a leaf that claims index ${claimed}`);
        const h = leafHashOf(row.payload);
        if (!hashEquals(h, row.leaf_hash)) throw new StoreCorrupt(`audit_entries: entry ${expected} does not match its stored leaf hash`);
        h.copy(hashes, i * HASH_SIZE);
        this.#remember(expected, row.payload);
      });
      this.#tree.append(hashes);
      if (r.rows.length < limit) {
        if (until !== null && this.#tree.size < until) throw new StoreCorrupt(`audit_entries ends at ${this.#tree.size} but the head says ${until}`);
        if (until === null) return;
      }
    }
  }

  /** Takes a stored checkpoint as the latest after checking it signs our mirrored tree. */
  #adoptCheckpoint(note: string): void {
    if (note === this.#checkpointChecked) { this.#checkpoint = note; return; }
    const parsers = this.#requireAttached();
    let size: number, root: Buffer;
    try {
      ({ size, root } = parsers.checkpointSizeRoot(note));
    } catch (e) {
      throw new LogUnavailable('the stored audit checkpoint does not verify with this node\'s log keys: every node must use the same log signing keys', { cause: e });
    }
    if (size > this.#tree.size) throw new StoreCorrupt(`audit_entries holds ${this.#tree.size} entries but the stored checkpoint covers ${size}`);
    if (!hashEquals(this.#tree.root(size), root)) throw new StoreCorrupt(`stored entries do not match the signed checkpoint (size ${size})`);
    this.#checkpoint = note;
    this.#checkpointChecked = note;
  }

  async appendSequenced(build: (base: number) => readonly (Buffer | string)[]): Promise<number> {
    // A lost race (deadlock, serialization failure) is re-run by the state's one retry policy
    // (src/sql/retry.ts); `build` is a pure function of the base index.
    return this.#serial(() => withRetry(DEFAULT_RETRY, () => this.#appendOnce(build), { what: 'the audit log' })
      .catch((e: unknown) => { throw e instanceof StateBusy ? this.#wrap(e, 'audit log write to PostgreSQL failed') : e; }));
  }

  async #appendOnce(build: (base: number) => readonly (Buffer | string)[]): Promise<number> {
    {
      this.#requireAttached();
      const c = await this.#connect();
      let broken = false;
      try {
        // Durable whatever the server's synchronous_commit: an acknowledged audit entry must
        // survive a crash of PostgreSQL (see DURABLE in sql/postgres.ts).
        await c.query(`BEGIN; ${DURABLE}`);
        const head = await c.query<{ next_index: string }>(`SELECT next_index FROM ${this.#S}.audit_head WHERE id = 1 FOR UPDATE`);
        if (!head.rowCount) throw new StoreCorrupt('audit_head is missing');
        const base = Number(head.rows[0]!.next_index);
        if (base < this.#tree.size) throw new StoreCorrupt(`audit_head (${base}) is behind the entries this node has seen (${this.#tree.size})`);
        await this.#catchUp(c, base);
        const payloads = build(base).map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
        if (payloads.length === 0) { await c.query('ROLLBACK'); return base; }
        const idx: string[] = [];
        const hashes = Buffer.allocUnsafe(payloads.length * HASH_SIZE);
        const hashList: Buffer[] = [];
        payloads.forEach((p, i) => {
          if (p.length === 0 || p.length > MAX_RECORD) throw new LogUnavailable('audit entry size out of range');
          idx.push(String(base + i));
          const h = leafHashOf(p);
          h.copy(hashes, i * HASH_SIZE);
          hashList.push(h);
        });
        await c.query(`INSERT INTO ${this.#S}.audit_entries (idx, payload, leaf_hash)
            SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])`, [idx, payloads, hashList]);
        await c.query(`UPDATE ${this.#S}.audit_head SET next_index = $1 WHERE id = 1`, [base + payloads.length]);
        await c.query('COMMIT');
        this.#tree.append(hashes);
        payloads.forEach((p, i) => this.#remember(base + i, p));
        return base;
      } catch (e) {
        try { await c.query('ROLLBACK'); } catch { broken = true; }
        throw isRetryable(e) ? e : this.#wrap(e, 'audit log write to PostgreSQL failed');
      } finally {
        c.release(broken);
      }
    }
  }

  /** For a single writer only: the payloads must carry the indexes size, size+1, …. */
  async appendBatch(payloads: readonly (Buffer | string)[]): Promise<void> {
    const expected = this.#tree.size;
    await this.appendSequenced((base) => {
      if (base !== expected) throw new LogUnavailable('another node appended to the shared audit log: use appendSequenced');
      return payloads;
    });
  }

  readEntry(index: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.#tree.size) throw new StoreCorrupt(`entry ${index} is outside the log`);
    const hit = this.#cache.get(index);
    if (!hit) throw new LogUnavailable(`entry ${index} is not cached on this node; read it with readEntryAsync`);
    return hit;
  }

  async readEntryAsync(index: number): Promise<Buffer> {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.#tree.size) throw new StoreCorrupt(`entry ${index} is outside the log`);
    const hit = this.#cache.get(index);
    if (hit) return hit;
    for await (const e of this.entries(index, index + 1)) return e.bytes;
    throw new StoreCorrupt(`entry ${index} is missing`);
  }

  leafHash(index: number): Buffer { return this.#tree.leafHash(index); }

  subtreeHash(start: number, end: number): Buffer { return this.#tree.subtreeHash(start, end); }

  root(size: number): Buffer {
    if (size > this.#tree.size) throw new StoreCorrupt(`size ${size} is beyond the ${this.#tree.size} entries this node has seen`);
    return this.#tree.root(size);
  }

  async *entries(start: number, end: number): AsyncGenerator<StoredEntry> {
    end = Math.min(end, this.#tree.size);
    let next = start;
    while (next < end) {
      const c = await this.#connect();
      let rows: { idx: string; payload: Buffer }[];
      try {
        rows = (await c.query<{ idx: string; payload: Buffer }>(
          `SELECT idx, payload FROM ${this.#S}.audit_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3`,
          [next, end, this.#page])).rows;
      } catch (e) {
        throw this.#wrap(e, 'cannot read the audit log from PostgreSQL');
      } finally {
        c.release();
      }
      if (rows.length === 0) throw new StoreCorrupt(`audit_entries ends before entry ${next}`);
      for (const row of rows) {
        if (Number(row.idx) !== next) throw new StoreCorrupt(`audit_entries: entry ${next} is missing`);
        yield { index: next, bytes: row.payload };
        next++;
      }
    }
  }

  latestCheckpoint(): string | null { return this.#checkpoint; }

  saveCheckpoint(_note: string): void {
    throw new LogUnavailable('PostgreSQL log storage stores checkpoints asynchronously: use saveCheckpointAsync');
  }

  /** Stores the note unless a checkpoint of a larger tree is already stored (checkpoints never go back). */
  async saveCheckpointAsync(note: string): Promise<void> {
    const { size } = this.#requireAttached().checkpointSizeRoot(note);
    let r;
    const c = await this.#connect();
    let broken = false;
    try {
      await c.query(`BEGIN; ${DURABLE}`);
      r = await c.query<{ note: string }>(
        `INSERT INTO ${this.#S}.audit_checkpoint AS cp (id, size, note) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET size = excluded.size, note = excluded.note, stored_at = now()
           WHERE cp.size <= excluded.size
         RETURNING note`, [size, note]);
      await c.query('COMMIT');
    } catch (e) {
      try { await c.query('ROLLBACK'); } catch { broken = true; }
      throw this.#wrap(e, 'cannot store the audit checkpoint in PostgreSQL');
    } finally {
      c.release(broken);
    }
    if (r.rowCount) { this.#checkpoint = note; this.#checkpointChecked = note; }
  }

  /** Bytes of entries this node has seen plus its in-memory tree (an estimate; PostgreSQL's own size is larger). */
  diskUsage(): number {
    return this.#bytes + this.#tree.size * 2 * HASH_SIZE;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => undefined);
    this.#cache.clear();
  }

  // ---- internals -----------------------------------------------------------------------

  #requireAttached(): FileStoreOptions {
    if (!this.#parsers) throw new LogUnavailable('PostgreSQL log storage is not attached: open it with TransparencyLog.openOn');
    return this.#parsers;
  }

  #remember(index: number, payload: Buffer): void {
    this.#bytes += payload.length;
    if (this.#cacheMax <= 0) return;
    this.#cache.set(index, payload);
    if (this.#cache.size > this.#cacheMax) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
  }

  async #connect(): Promise<PoolClient> {
    if (this.#closed) throw new LogUnavailable('audit log is closed');
    try {
      return await this.#pool.connect();
    } catch (e) {
      throw new LogUnavailable('cannot reach PostgreSQL for the audit log', { cause: e });
    }
  }

  #wrap(e: unknown, message: string): Error {
    if (e instanceof StoreCorrupt || e instanceof LogUnavailable) return e;
    return new LogUnavailable(message, { cause: e });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
