/**
 * Data keys: one random AES-256 key per subject (a dataset, a saved result, an export, a
 * secret), stored only wrapped by a key-encryption key (keyring.ts): in one node:sqlite
 * file in the state directory (WAL, `PRAGMA secure_delete = ON`), or in PostgreSQL shared by
 * every node. One implementation (SqlDataKeyBackend) on the state SQL driver serves both; the
 * tables are declared once in src/sql/tables/keys.ts.
 *
 * The wrap context binds each wrapped key to its row: "data-key\n<key id>\n<kind>\n<subject>",
 * so a wrapped key copied onto another row does not unwrap.
 *
 * Destroying a key (crypto-shredding) deletes its row in one transaction with a tombstone
 * (when, why, the SHA-256 of the wrapped key bytes), then checkpoints the WAL with
 * TRUNCATE: secure_delete overwrites the freed cell with zeros in the database file and the
 * truncated WAL no longer holds the old page images. Whatever the key encrypted, in every
 * copy, can no longer be decrypted. (Copies of the key store in backups still hold the
 * wrapped key: rotate the KEK and retire the old version — rewrapAll({ retire: true }) —
 * to make those useless too.)
 *
 * Unwrapped keys are cached (small LRU) to spare the key service, but every unwrap still
 * checks that the row exists, so a key destroyed by another process is refused at once.
 *
 * `DataKeyStore.open` opens the embedded file; src/state/keys-pg.ts (`DataKeyStore.onBackend`)
 * puts the same backend on the PostgreSQL state, so that several Gatehouse
 * nodes share one set of keys: a key destroyed on one node is gone for all of them (the
 * next unwrap anywhere is refused), because the cache never answers without the row.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { StateError } from '../sql/errors.ts';
import type { SqlDriver } from '../sql/driver.ts';
import { SqliteDriver, sqliteDialect } from '../sql/sqlite.ts';
import { dataKeyTables } from '../sql/tables/keys.ts';
import { DataKeyDestroyed, DataKeyNotFound, KeyInputInvalid, KeyStoreUnavailable } from './errors.ts';
import { decodeWrappedKey, encodeWrappedKey, type KeyEncryptionService, type RotatableKeyService } from './keyring.ts';

export type DataKeyKind = 'dataset' | 'result' | 'export' | 'secret';
export const DATA_KEY_KINDS: readonly DataKeyKind[] = ['dataset', 'result', 'export', 'secret'];

export interface DataKeyInfo {
  readonly keyId: string;
  readonly subject: string;
  readonly kind: DataKeyKind;
  readonly labels: Readonly<Record<string, string>>;
  readonly kekVersion: string;
  readonly createdAt: string;
}

/** What remains of a destroyed key: enough to prove which key went, when and why. */
export interface DestructionRecord {
  readonly keyId: string;
  readonly subject: string;
  readonly kind: DataKeyKind;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: string;
  readonly destroyedAt: string;
  readonly reason: string;
  /** hex SHA-256 of the wrapped key as it was stored (its encoded bytes). */
  readonly wrappedKeyDigest: string;
  readonly kekVersion: string;
}

export interface DataKeyStatus {
  readonly live: number;
  readonly destroyed: number;
  readonly byKekVersion: Readonly<Record<string, number>>;
  readonly byKind: Readonly<Record<string, number>>;
  readonly activeKekVersion: string;
}

export interface RewrapReport {
  readonly rewrapped: number;
  readonly skipped: number;
  readonly activeKekVersion: string;
  readonly retired: readonly string[];
}

export interface DataKeyStoreOptions {
  readonly now?: () => Date;
  /** Unwrapped keys kept in memory (default 256). */
  readonly cacheSize?: number;
}


const LABEL_KEY = /^[a-z][a-z0-9_.-]{0,63}$/;

function checkLabels(labels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (!LABEL_KEY.test(k)) throw new KeyInputInvalid(`label name ${JSON.stringify(k)} must be lower-case letters, digits, _ . - (up to 64)`);
    if (typeof v !== 'string' || v.length > 512) throw new KeyInputInvalid(`label ${k} must be a string of at most 512 characters`);
    out[k] = v;
  }
  return out;
}

export function wrapContext(keyId: string, kind: string, subject: string): string {
  return `data-key\n${keyId}\n${kind}\n${subject}`;
}

export interface DataKeyRow { key_id: string; subject: string; kind: string; labels: string; wrapped: string; kek_version: string; created_at: string }
export interface DataKeyTomb { key_id: string; subject: string; kind: string; labels: string; kek_version: string; created_at: string; destroyed_at: string; reason: string; wrapped_key_digest: string }
type Row = DataKeyRow;
type Tomb = DataKeyTomb;

/**
 * Where wrapped data keys and tombstones are kept. Every method is one atomic step; `destroy`
 * deletes the row and writes its tombstone in one transaction (null when there is no row).
 */
export interface DataKeyBackend {
  readonly kind: 'sqlite' | 'postgres';
  insert(row: DataKeyRow): Promise<void>;
  get(keyId: string): Promise<DataKeyRow | undefined>;
  exists(keyId: string): Promise<boolean>;
  tomb(keyId: string): Promise<DataKeyTomb | undefined>;
  destroy(keyId: string, make: (row: DataKeyRow) => DataKeyTomb): Promise<DataKeyTomb | null>;
  list(): Promise<DataKeyRow[]>;
  listDestroyed(): Promise<DataKeyTomb[]>;
  /** Up to `limit` keys not wrapped under `kekVersion`, by key id. */
  notUnder(kekVersion: string, limit: number): Promise<DataKeyRow[]>;
  /** Compare-and-set rewraps in one transaction: [wrapped, kekVersion, keyId, oldWrapped]; returns how many applied. */
  rewrap(updates: readonly (readonly [string, string, string, string])[]): Promise<number>;
  counts(): Promise<{ byKek: Record<string, number>; byKind: Record<string, number>; destroyed: number }>;
  /** After a destruction or a rewrap: scrub what the storage still holds of old wrapped keys. */
  scrub(): Promise<void>;
  close(): void;
}

/**
 * The one data-key backend, on the state SQL driver (src/sql/driver.ts): node:sqlite
 * (data-keys.sqlite) or PostgreSQL (shared by every node), tables declared once in
 * src/sql/tables/keys.ts. `scrub` is what the storage does after a destruction or a rewrap
 * (sqlite: truncate the WAL; PostgreSQL: nothing, see src/state/keys-pg.ts).
 */
export class SqlDataKeyBackend implements DataKeyBackend {
  readonly kind: 'sqlite' | 'postgres';
  readonly #d: SqlDriver;
  readonly #scrub: () => Promise<void>;
  readonly #close: () => void;

  constructor(driver: SqlDriver, options: { scrub?: () => Promise<void>; close?: () => void } = {}) {
    this.#d = driver;
    this.kind = driver.dialect.name;
    this.#scrub = options.scrub ?? (async () => undefined);
    this.#close = options.close ?? (() => undefined);
  }

  async insert(r: Row): Promise<void> {
    await guard('storing a data key', () => this.#d.run('INSERT INTO {data_keys} (key_id, subject, kind, labels, wrapped, kek_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [r.key_id, r.subject, r.kind, r.labels, r.wrapped, r.kek_version, r.created_at]));
  }
  get(keyId: string): Promise<Row | undefined> { return guard('reading a data key', () => this.#d.get<Row>('SELECT * FROM {data_keys} WHERE key_id = ?', [keyId])); }
  async exists(keyId: string): Promise<boolean> { return (await guard('reading a data key', () => this.#d.get('SELECT 1 AS x FROM {data_keys} WHERE key_id = ?', [keyId]))) !== undefined; }
  tomb(keyId: string): Promise<Tomb | undefined> { return guard('reading a tombstone', () => this.#d.get<Tomb>('SELECT * FROM {destroyed_keys} WHERE key_id = ?', [keyId])); }
  destroy(keyId: string, make: (row: Row) => Tomb): Promise<Tomb | null> {
    return guard('destroying a data key', () => this.#d.transaction(async (q) => {
      // DELETE … RETURNING takes the row lock: of two nodes destroying the same key, one gets the row.
      const row = await q.get<Row>('DELETE FROM {data_keys} WHERE key_id = ? RETURNING *', [keyId]);
      if (!row) return null;
      const t = make(row);
      await q.run('INSERT INTO {destroyed_keys} (key_id, subject, kind, labels, kek_version, created_at, destroyed_at, reason, wrapped_key_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [t.key_id, t.subject, t.kind, t.labels, t.kek_version, t.created_at, t.destroyed_at, t.reason, t.wrapped_key_digest]);
      return t;
    }, { mode: 'write' }));
  }
  list(): Promise<Row[]> { return guard('listing data keys', () => this.#d.query<Row>('SELECT * FROM {data_keys} ORDER BY created_at, key_id')); }
  listDestroyed(): Promise<Tomb[]> { return guard('listing tombstones', () => this.#d.query<Tomb>('SELECT * FROM {destroyed_keys} ORDER BY destroyed_at, key_id')); }
  notUnder(kekVersion: string, limit: number): Promise<Row[]> {
    return guard('listing data keys', () => this.#d.query<Row>('SELECT * FROM {data_keys} WHERE kek_version <> ? ORDER BY key_id LIMIT ?', [kekVersion, limit]));
  }
  rewrap(updates: readonly (readonly [string, string, string, string])[]): Promise<number> {
    return guard('rewrapping data keys', () => this.#d.transaction(async (q) => {
      let n = 0;
      for (const u of updates) if (await q.run('UPDATE {data_keys} SET wrapped = ?, kek_version = ? WHERE key_id = ? AND wrapped = ?', [...u]) === 1) n++;
      return n;
    }, { mode: 'write' }));
  }
  counts(): Promise<{ byKek: Record<string, number>; byKind: Record<string, number>; destroyed: number }> {
    return guard('counting data keys', () => this.#d.transaction(async (q) => {
      const byKek: Record<string, number> = {};
      for (const r of await q.query<{ v: string; n: number }>('SELECT kek_version AS v, count(*) AS n FROM {data_keys} GROUP BY kek_version')) byKek[r.v] = Number(r.n);
      const byKind: Record<string, number> = {};
      for (const r of await q.query<{ k: string; n: number }>('SELECT kind AS k, count(*) AS n FROM {data_keys} GROUP BY kind')) byKind[r.k] = Number(r.n);
      const destroyed = Number((await q.get<{ n: number }>('SELECT count(*) AS n FROM {destroyed_keys}'))!.n);
      return { byKek, byKind, destroyed };
    }, { mode: 'read' }));
  }
  scrub(): Promise<void> { return this.#scrub(); }
  close(): void { this.#close(); }
}

/** Storage failures (unreachable, busy, closed) as the key store's own typed error; nothing was changed. */
export async function guard<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof StateError) throw new KeyStoreUnavailable(`${what}: the key store is unavailable (${e.detail})`, { cause: e });
    throw e;
  }
}

/** SQLite keeps a freed page's old image in the WAL until it is checkpointed and truncated. */
async function truncateWal(driver: SqliteDriver): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const r = await driver.get<{ busy: number }>('PRAGMA wal_checkpoint(TRUNCATE)');
    if (!r || Number(r.busy) === 0) return;
    // A reader in another connection holds an old snapshot: retry once it is gone.
    await new Promise<void>((res) => setImmediate(res));
  }
  throw new KeyStoreUnavailable('the key was deleted but the write-ahead log could not be truncated (another reader is active); retry the destruction to finish scrubbing');
}

export class DataKeyStore {
  /** The SQLite file, or `postgres:<schema>` for the shared store. */
  readonly path: string;
  readonly #b: DataKeyBackend;
  readonly #kms: KeyEncryptionService;
  readonly #now: () => Date;
  readonly #cacheSize: number;
  readonly #cache = new Map<string, Buffer>();
  #closed = false;

  private constructor(path: string, backend: DataKeyBackend, kms: KeyEncryptionService, options: DataKeyStoreOptions) {
    this.path = path;
    this.#b = backend;
    this.#kms = kms;
    this.#now = options.now ?? (() => new Date());
    this.#cacheSize = options.cacheSize ?? 256;
  }

  /** Opens (creating if needed) the key store at `path`, wrapping with `kms`. */
  static open(path: string, kms: KeyEncryptionService, options: DataKeyStoreOptions = {}): DataKeyStore {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let driver: SqliteDriver;
    try {
      driver = SqliteDriver.openSync(path, { busyTimeoutMs: 5000, schema: dataKeyTables(sqliteDialect()) });
      // A deleted wrapped key is overwritten with zeros in the file, not just unlinked from the b-tree.
      driver.db.exec('PRAGMA secure_delete = ON');
    } catch (e) {
      throw new KeyStoreUnavailable(`cannot open the data key store ${path}`, { cause: e });
    }
    const backend = new SqlDataKeyBackend(driver, {
      scrub: () => truncateWal(driver),
      close: () => { void truncateWal(driver).catch(() => undefined).finally(() => driver.close()); },
    });
    return new DataKeyStore(path, backend, kms, options);
  }

  /** A key store over another backend (PostgreSQL: src/state/keys-pg.ts `openPgDataKeys`). */
  static onBackend(name: string, backend: DataKeyBackend, kms: KeyEncryptionService, options: DataKeyStoreOptions = {}): DataKeyStore {
    return new DataKeyStore(name, backend, kms, options);
  }

  /** 'sqlite' or 'postgres'. */
  get backend(): 'sqlite' | 'postgres' {
    return this.#b.kind;
  }

  /** A fresh random AES-256 data key for `subject`, stored wrapped by the active KEK. */
  async create(input: { subject: string; kind: DataKeyKind; labels?: Record<string, string> }): Promise<{ keyId: string; createdAt: string; kekVersion: string }> {
    this.#live();
    if (typeof input?.subject !== 'string' || input.subject.length === 0 || input.subject.length > 512) throw new KeyInputInvalid('a data key needs a subject (1-512 characters)');
    if (!DATA_KEY_KINDS.includes(input.kind)) throw new KeyInputInvalid(`kind must be one of ${DATA_KEY_KINDS.join(', ')}`);
    const labels = checkLabels(input.labels);
    const keyId = `dk_${randomBytes(16).toString('base64url')}`;
    const dek = randomBytes(32);
    const w = await this.#kms.wrap(dek, wrapContext(keyId, input.kind, input.subject));
    const createdAt = this.#now().toISOString();
    this.#live();
    await this.#b.insert({ key_id: keyId, subject: input.subject, kind: input.kind, labels: JSON.stringify(labels), wrapped: encodeWrappedKey(w), kek_version: w.kekVersion, created_at: createdAt });
    this.#remember(keyId, dek);
    return { keyId, createdAt, kekVersion: w.kekVersion };
  }

  /** The plaintext data key (a copy: wipe it with fill(0) when done). */
  async unwrap(keyId: string): Promise<Buffer> {
    this.#live();
    const cached = this.#cache.get(keyId);
    if (cached) {
      // Still there? (another process or node may have destroyed it)
      if (await this.#b.exists(keyId)) {
        const still = this.#cache.get(keyId);
        if (still) {
          this.#cache.delete(keyId);
          this.#cache.set(keyId, still);
          return Buffer.from(still);
        }
      } else {
        this.#forget(keyId);
      }
    }
    const row = await this.#b.get(keyId);
    if (!row) throw await this.#missing(keyId);
    const dek = await this.#kms.unwrap(decodeWrappedKey(row.wrapped), wrapContext(row.key_id, row.kind, row.subject));
    // Destroyed while the key service was answering?
    if (!(await this.#b.exists(keyId))) { dek.fill(0); throw await this.#missing(keyId); }
    const copy = Buffer.from(dek);
    this.#remember(keyId, dek);
    return copy;
  }

  async info(keyId: string): Promise<DataKeyInfo> {
    this.#live();
    const row = await this.#b.get(keyId);
    if (!row) throw await this.#missing(keyId);
    return toInfo(row);
  }

  /** The tombstone of a destroyed key, or null if it was never destroyed. */
  async destruction(keyId: string): Promise<DestructionRecord | null> {
    this.#live();
    const t = await this.#b.tomb(keyId);
    return t ? toRecord(t) : null;
  }

  /**
   * Crypto-shreds a data key: its wrapped form is deleted (SQLite: secure_delete, WAL
   * truncated; PostgreSQL: DELETE) and a tombstone remembers it. Throws DataKeyDestroyed if
   * it already was (on any node).
   */
  async destroy(keyId: string, reason: string): Promise<DestructionRecord> {
    this.#live();
    if (typeof reason !== 'string' || reason.trim() === '') throw new KeyInputInvalid('destroying a data key needs a reason');
    const destroyedAt = this.#now().toISOString();
    const t = await this.#b.destroy(keyId, (row) => ({
      key_id: row.key_id, subject: row.subject, kind: row.kind, labels: row.labels, kek_version: row.kek_version, created_at: row.created_at,
      destroyed_at: destroyedAt, reason, wrapped_key_digest: createHash('sha256').update(row.wrapped, 'utf8').digest('hex'),
    }));
    this.#forget(keyId);
    if (!t) throw await this.#missing(keyId);
    await this.#b.scrub();
    return toRecord(t);
  }

  async list(filter: { kind?: DataKeyKind; label?: Record<string, string>; subject?: string } = {}): Promise<DataKeyInfo[]> {
    this.#live();
    const rows = await this.#b.list();
    return rows.map(toInfo).filter((k) =>
      (filter.kind === undefined || k.kind === filter.kind)
      && (filter.subject === undefined || k.subject === filter.subject)
      && Object.entries(filter.label ?? {}).every(([n, v]) => k.labels[n] === v));
  }

  async listDestroyed(filter: { kind?: DataKeyKind } = {}): Promise<DestructionRecord[]> {
    this.#live();
    const rows = await this.#b.listDestroyed();
    return rows.map(toRecord).filter((r) => filter.kind === undefined || r.kind === filter.kind);
  }

  /**
   * Rewraps every data key not under the active KEK version, in small batches, without
   * locking readers out: each batch is unwrapped and rewrapped outside any transaction,
   * then written with compare-and-set (a key destroyed meanwhile is simply skipped).
   * With `retire`, KEK versions no longer used by any key are then retired (erased) when
   * the key service supports it.
   */
  async rewrapAll(options: { batchSize?: number; retire?: boolean } = {}): Promise<RewrapReport> {
    this.#live();
    const batchSize = options.batchSize ?? 100;
    const active = this.#kms.activeVersion();
    let rewrapped = 0;
    let skipped = 0;
    const seen = new Set<string>();
    for (;;) {
      const batch = (await this.#b.notUnder(active, batchSize + seen.size)).filter((r) => !seen.has(r.key_id)).slice(0, batchSize);
      if (batch.length === 0) break;
      const updates: [string, string, string, string][] = [];
      for (const row of batch) {
        seen.add(row.key_id);
        const ctx = wrapContext(row.key_id, row.kind, row.subject);
        const dek = await this.#kms.unwrap(decodeWrappedKey(row.wrapped), ctx);
        const w = await this.#kms.wrap(dek, ctx);
        dek.fill(0);
        updates.push([encodeWrappedKey(w), w.kekVersion, row.key_id, row.wrapped]);
      }
      this.#live();
      const n = await this.#b.rewrap(updates);
      rewrapped += n;
      skipped += updates.length - n;
      // Let readers in between batches.
      await new Promise<void>((r) => setImmediate(r));
    }
    await this.#b.scrub();
    const retired: string[] = [];
    const svc = this.#kms as Partial<RotatableKeyService>;
    if (options.retire && typeof svc.retire === 'function' && typeof svc.versions === 'function') {
      const used = new Set(Object.keys((await this.status()).byKekVersion));
      for (const v of svc.versions()) {
        if (!v.active && v.retiredAt === null && !used.has(v.version)) {
          await svc.retire(v.version);
          retired.push(v.version);
        }
      }
    }
    return { rewrapped, skipped, activeKekVersion: active, retired };
  }

  async status(): Promise<DataKeyStatus> {
    this.#live();
    const { byKek, byKind, destroyed } = await this.#b.counts();
    const live = Object.values(byKind).reduce((a, b) => a + b, 0);
    return { live, destroyed, byKekVersion: byKek, byKind, activeKekVersion: this.#kms.activeVersion() };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const k of this.#cache.values()) k.fill(0);
    this.#cache.clear();
    this.#b.close();
  }

  async #missing(keyId: string): Promise<Error> {
    const t = await this.#b.tomb(keyId);
    return t ? new DataKeyDestroyed(keyId, t.destroyed_at) : new DataKeyNotFound(keyId);
  }

  #remember(keyId: string, dek: Buffer): void {
    this.#cache.set(keyId, Buffer.from(dek));
    dek.fill(0);
    while (this.#cache.size > this.#cacheSize) {
      const [oldest, k] = this.#cache.entries().next().value!;
      k.fill(0);
      this.#cache.delete(oldest);
    }
  }

  #forget(keyId: string): void {
    this.#cache.get(keyId)?.fill(0);
    this.#cache.delete(keyId);
  }

  #live(): void {
    if (this.#closed) throw new KeyStoreUnavailable('the data key store is closed');
  }
}

function toInfo(r: Row): DataKeyInfo {
  return { keyId: r.key_id, subject: r.subject, kind: r.kind as DataKeyKind, labels: JSON.parse(r.labels), kekVersion: r.kek_version, createdAt: r.created_at };
}

function toRecord(t: Tomb): DestructionRecord {
  return { keyId: t.key_id, subject: t.subject, kind: t.kind as DataKeyKind, labels: JSON.parse(t.labels), createdAt: t.created_at, destroyedAt: t.destroyed_at, reason: t.reason, wrappedKeyDigest: t.wrapped_key_digest, kekVersion: t.kek_version };
}
