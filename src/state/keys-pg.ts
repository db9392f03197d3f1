/**
 * Data keys and artefacts on PostgreSQL, shared by every Gatehouse node on the database:
 *
 *   data_keys        one row per live data key: the key wrapped by the keyring's KEK (never plaintext)
 *   destroyed_keys   tombstones (when, why, SHA-256 of the wrapped key); append-only
 *   artefacts        saved results and exports: metadata, legal hold, destruction mark
 *   artefact_blobs   each artefact's ciphertext (bytea), sealed under its own data key (blob.ts)
 *
 *   const keys = openPgDataKeys(state, keyring);          // DataKeyStore
 *   const artefacts = openPgArtefacts(state, keys);       // ArtefactStore
 *
 * Crypto-shredding is `DELETE FROM data_keys` with the tombstone in the same transaction: the
 * next unwrap on any node finds no row and is refused (DataKeyStore checks the row even when
 * it has the key cached), so an artefact saved on node A and destroyed on node B is undecryptable
 * everywhere at once. The ciphertext row is deleted too. PostgreSQL keeps a deleted row's bytes
 * in the table (until VACUUM) and in WAL and backups for a while: those copies hold only the
 * *wrapped* key, which is useless without the KEK; to make old copies useless for good, rotate
 * the KEK and retire the old version (`keys rotate`, DataKeyStore.rewrapAll({ retire: true })).
 *
 * Every node must use the same keyring (the same keyring.json and passphrase, or the same key
 * service): a key wrapped on one node is unwrapped on another.
 */
import { createHash } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { open as openBlob } from '../keys/blob.ts';
import { ArtefactStore, type ArtefactBackend, type ArtefactRow } from '../keys/artefacts.ts';
import { DataKeyStore, type DataKeyBackend, type DataKeyRow, type DataKeyStoreOptions, type DataKeyTomb } from '../keys/data-keys.ts';
import { CiphertextTampered, KeyStoreUnavailable } from '../keys/errors.ts';
import type { KeyEncryptionService } from '../keys/keyring.ts';
import { quoteSchema } from './migrations.ts';
import { DEFAULT_RETRY, withRetry } from './sql/retry.ts';
import type { PostgresState } from './postgres.ts';

type Q = Pick<Pool, 'query'>;

/** Named statements differ per schema (their text names it). */
const tag = (schema: string): string => createHash('sha256').update(schema).digest('hex').slice(0, 16);

/** Driver failures (PostgreSQL unreachable) as the key store's own typed error; nothing was changed. */
async function guard<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const err = e as { severity?: unknown; code?: unknown; message?: unknown };
    if (err && err.severity === undefined && !(e instanceof CiphertextTampered)) {
      throw new KeyStoreUnavailable(`${what}: PostgreSQL is unavailable (${typeof err.code === 'string' ? err.code : 'connection error'})`, { cause: e });
    }
    throw e;
  }
}

/** One transaction; a lost race is re-run by the state's one retry policy (src/state/sql/retry.ts). */
function inTx<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withRetry(DEFAULT_RETRY, () => inTxOnce(pool, fn), { what: 'the key store' });
}

async function inTxOnce<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken = false;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => { broken = true; });
    throw e;
  } finally {
    c.release(broken);
  }
}

export class PgDataKeyBackend implements DataKeyBackend {
  readonly kind = 'postgres' as const;
  readonly #pool: Pool;
  readonly #S: string;

  constructor(pool: Pool, schema = 'gatehouse') {
    this.#pool = pool;
    this.#S = quoteSchema(schema);
  }

  #q(q: Q, name: string, text: string, values: unknown[]): Promise<{ rows: any[]; rowCount: number | null }> {
    return q.query({ name: `gh_keys_${name}_${tag(this.#S)}`, text, values });
  }

  insert(r: DataKeyRow): Promise<void> {
    return guard('storing a data key', async () => {
      await this.#q(this.#pool, 'insert', `INSERT INTO ${this.#S}.data_keys (key_id, subject, kind, labels, wrapped, kek_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [r.key_id, r.subject, r.kind, r.labels, r.wrapped, r.kek_version, r.created_at]);
    });
  }

  get(keyId: string): Promise<DataKeyRow | undefined> {
    return guard('reading a data key', async () => (await this.#q(this.#pool, 'get', `SELECT * FROM ${this.#S}.data_keys WHERE key_id = $1`, [keyId])).rows[0]);
  }

  exists(keyId: string): Promise<boolean> {
    return guard('reading a data key', async () => (await this.#q(this.#pool, 'exists', `SELECT 1 AS x FROM ${this.#S}.data_keys WHERE key_id = $1`, [keyId])).rows.length > 0);
  }

  tomb(keyId: string): Promise<DataKeyTomb | undefined> {
    return guard('reading a tombstone', async () => (await this.#q(this.#pool, 'tomb', `SELECT * FROM ${this.#S}.destroyed_keys WHERE key_id = $1`, [keyId])).rows[0]);
  }

  destroy(keyId: string, make: (row: DataKeyRow) => DataKeyTomb): Promise<DataKeyTomb | null> {
    return guard('destroying a data key', () => inTx(this.#pool, async (c) => {
      // DELETE … RETURNING takes the row lock: of two nodes destroying the same key, one gets the row.
      const r = await this.#q(c, 'delete', `DELETE FROM ${this.#S}.data_keys WHERE key_id = $1 RETURNING *`, [keyId]);
      const row = r.rows[0] as DataKeyRow | undefined;
      if (!row) return null;
      const t = make(row);
      await this.#q(c, 'instomb', `INSERT INTO ${this.#S}.destroyed_keys (key_id, subject, kind, labels, kek_version, created_at, destroyed_at, reason, wrapped_key_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [t.key_id, t.subject, t.kind, t.labels, t.kek_version, t.created_at, t.destroyed_at, t.reason, t.wrapped_key_digest]);
      return t;
    }));
  }

  list(): Promise<DataKeyRow[]> {
    return guard('listing data keys', async () => (await this.#q(this.#pool, 'list', `SELECT * FROM ${this.#S}.data_keys ORDER BY created_at, key_id`, [])).rows);
  }

  listDestroyed(): Promise<DataKeyTomb[]> {
    return guard('listing tombstones', async () => (await this.#q(this.#pool, 'tombs', `SELECT * FROM ${this.#S}.destroyed_keys ORDER BY destroyed_at, key_id`, [])).rows);
  }

  notUnder(kekVersion: string, limit: number): Promise<DataKeyRow[]> {
    return guard('listing data keys', async () => (await this.#q(this.#pool, 'pick', `SELECT * FROM ${this.#S}.data_keys WHERE kek_version <> $1 ORDER BY key_id LIMIT $2`, [kekVersion, limit])).rows);
  }

  rewrap(updates: readonly (readonly [string, string, string, string])[]): Promise<number> {
    return guard('rewrapping data keys', () => inTx(this.#pool, async (c) => {
      let n = 0;
      for (const u of updates) {
        const r = await this.#q(c, 'cas', `UPDATE ${this.#S}.data_keys SET wrapped = $1, kek_version = $2 WHERE key_id = $3 AND wrapped = $4`, [...u]);
        if (r.rowCount === 1) n++;
      }
      return n;
    }));
  }

  counts(): Promise<{ byKek: Record<string, number>; byKind: Record<string, number>; destroyed: number }> {
    return guard('counting data keys', async () => {
      const byKek: Record<string, number> = {};
      for (const r of (await this.#q(this.#pool, 'bykek', `SELECT kek_version AS v, count(*) AS n FROM ${this.#S}.data_keys GROUP BY kek_version`, [])).rows) byKek[r.v] = Number(r.n);
      const byKind: Record<string, number> = {};
      for (const r of (await this.#q(this.#pool, 'bykind', `SELECT kind AS k, count(*) AS n FROM ${this.#S}.data_keys GROUP BY kind`, [])).rows) byKind[r.k] = Number(r.n);
      const destroyed = Number((await this.#q(this.#pool, 'ntombs', `SELECT count(*) AS n FROM ${this.#S}.destroyed_keys`, [])).rows[0].n);
      return { byKek, byKind, destroyed };
    });
  }

  /** Nothing to scrub here: see the header (dead tuples hold only wrapped keys; rotate and retire the KEK). */
  async scrub(): Promise<void> {}

  /** The pool belongs to the PostgreSQL state. */
  close(): void {}
}

export class PgArtefactBackend implements ArtefactBackend {
  readonly kind = 'postgres' as const;
  readonly #pool: Pool;
  readonly #S: string;

  constructor(pool: Pool, schema = 'gatehouse') {
    this.#pool = pool;
    this.#S = quoteSchema(schema);
  }

  #q(name: string, text: string, values: unknown[]): Promise<{ rows: any[]; rowCount: number | null }> {
    return this.#pool.query({ name: `gh_art_${name}_${tag(this.#S)}`, text, values });
  }

  putBlob(id: string, blob: Buffer): Promise<void> {
    return guard('storing an artefact', async () => { await this.#q('putblob', `INSERT INTO ${this.#S}.artefact_blobs (id, ciphertext) VALUES ($1, $2)`, [id, blob]); });
  }

  openBlob(id: string, key: Buffer, keyId: string): Promise<Buffer> {
    return guard('reading an artefact', async () => {
      const r = await this.#q('getblob', `SELECT ciphertext FROM ${this.#S}.artefact_blobs WHERE id = $1`, [id]);
      const blob = r.rows[0]?.ciphertext as Buffer | undefined;
      if (!blob) throw new CiphertextTampered(`${id}.ghb`, null, 'the encrypted blob is missing');
      return openBlob(blob, key, { name: `${id}.ghb`, expectedKeyId: keyId });
    });
  }

  removeBlob(id: string): Promise<void> {
    return guard('removing an artefact', async () => { await this.#q('delblob', `DELETE FROM ${this.#S}.artefact_blobs WHERE id = $1`, [id]); });
  }

  insert(r: Omit<ArtefactRow, 'legal_hold' | 'destroyed_at' | 'destroy_reason'>): Promise<void> {
    return guard('storing an artefact', async () => {
      await this.#q('insert', `INSERT INTO ${this.#S}.artefacts (id, kind, owner, labels, media_type, retain_until, key_id, sha256, ciphertext_sha256, bytes, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [r.id, r.kind, r.owner, r.labels, r.media_type, r.retain_until, r.key_id, r.sha256, r.ciphertext_sha256, r.bytes, r.created_at]);
    });
  }

  get(id: string): Promise<ArtefactRow | undefined> {
    return guard('reading an artefact', async () => (await this.#q('get', `SELECT * FROM ${this.#S}.artefacts WHERE id = $1`, [id])).rows[0]);
  }

  list(): Promise<ArtefactRow[]> {
    return guard('listing artefacts', async () => (await this.#q('list', `SELECT * FROM ${this.#S}.artefacts ORDER BY created_at, id`, [])).rows);
  }

  setHold(id: string, hold: string | null): Promise<void> {
    return guard('setting a legal hold', async () => { await this.#q('hold', `UPDATE ${this.#S}.artefacts SET legal_hold = $1 WHERE id = $2`, [hold, id]); });
  }

  markDestroyed(id: string, at: string, reason: string): Promise<void> {
    return guard('marking an artefact destroyed', async () => {
      await this.#q('mark', `UPDATE ${this.#S}.artefacts SET destroyed_at = $1, destroy_reason = $2 WHERE id = $3 AND destroyed_at IS NULL`, [at, reason, id]);
    });
  }

  close(): void {}
}

/** The data keys of every node on this database, wrapped by `kms` (the same keyring on every node). */
export function openPgDataKeys(state: Pick<PostgresState, 'pool' | 'schema'>, kms: KeyEncryptionService, options: DataKeyStoreOptions = {}): DataKeyStore {
  return DataKeyStore.onBackend(`postgres:${state.schema}`, new PgDataKeyBackend(state.pool, state.schema), kms, options);
}

/** Saved results and exports of every node on this database (ciphertext in PostgreSQL). */
export function openPgArtefacts(state: Pick<PostgresState, 'pool' | 'schema'>, keys: DataKeyStore, now?: () => Date): ArtefactStore {
  return ArtefactStore.onBackend(`postgres:${state.schema}`, new PgArtefactBackend(state.pool, state.schema), keys, now);
}
