/**
 * The artefact store: what Gatehouse keeps for users — saved query results and exports —
 * each encrypted under its own data key (data-keys.ts), as a chunked AES-256-GCM blob
 * (blob.ts) in `<dir>/blobs/<id>.ghb`, with its metadata in `<dir>/artefacts.sqlite`.
 *
 * One key per artefact means one artefact can be destroyed alone: `destroy` crypto-shreds
 * (destroys the data keys), then deletes the files, and returns a destruction certificate
 * meant for the audit log. Metadata rows stay (marked destroyed) so a later `get` says
 * clearly that the artefact was destroyed, when and why. Artefacts under legal hold are
 * never destroyed: a destruction that selects one is refused whole.
 *
 * Metadata is kept by one implementation on the state SQL driver (SqlArtefactBackend; tables
 * declared once in src/sql/tables/keys.ts); only the ciphertext's place differs: one file per
 * blob on an embedded node (`ArtefactStore.open`), a bytea row where the artefacts are shared in
 * PostgreSQL (src/state/keys-pg.ts, `ArtefactStore.onBackend`),
 * so a result saved on one node is readable on another and destroyed everywhere by
 * destroying its key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SqlDriver } from '../sql/driver.ts';
import { SqliteDriver, sqliteDialect } from '../sql/sqlite.ts';
import { artefactTables } from '../sql/tables/keys.ts';
import { writeFileAtomic } from '../audit/fsutil.ts';
import { decryptFile, open as openBlob, seal } from './blob.ts';
import { guard, type DataKeyStore, type DestructionRecord } from './data-keys.ts';
import {
  ArtefactDestroyed, ArtefactNotFound, CiphertextTampered, DataKeyDestroyed, KeyInputInvalid, KeyStoreUnavailable, LegalHoldActive,
} from './errors.ts';

export type ArtefactKind = 'result' | 'export';

export interface ArtefactLabels {
  readonly agreement?: string;
  readonly dataset?: string;
  readonly [name: string]: string | undefined;
}

export interface ArtefactMeta {
  readonly id: string;
  readonly kind: ArtefactKind;
  readonly owner: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly mediaType: string;
  readonly retainUntil: string | null;
  readonly keyId: string;
  /** hex SHA-256 of the plaintext content. */
  readonly sha256: string;
  /** hex SHA-256 of the encrypted file. */
  readonly ciphertextSha256: string;
  readonly bytes: number;
  readonly createdAt: string;
  readonly legalHold: string | null;
  readonly destroyedAt: string | null;
  readonly destroyReason: string | null;
}

export interface ArtefactFilter {
  readonly kind?: ArtefactKind;
  readonly owner?: string;
  /** Every label given must match. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Only artefacts whose retainUntil is at or before this instant. */
  readonly expiredAt?: Date;
  readonly includeDestroyed?: boolean;
}

export interface PutInput {
  readonly kind: ArtefactKind;
  readonly owner: string;
  readonly labels?: ArtefactLabels;
  readonly retainUntil: string | null;
  readonly content: Buffer;
  readonly mediaType: string;
}

export interface CertificateEntry {
  readonly id: string;
  readonly kind: ArtefactKind;
  readonly owner: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly bytes: number;
  readonly contentSha256: string;
  readonly ciphertextSha256: string;
  readonly keyId: string;
  readonly wrappedKeyDigest: string;
  readonly kekVersion: string;
  readonly keyDestroyedAt: string;
}

/** A JSON object meant for the audit log. */
export interface DestructionCertificate {
  readonly type: 'gatehouse.destruction-certificate';
  readonly version: 1;
  readonly certificateId: string;
  readonly method: 'crypto-shredding: data keys destroyed';
  readonly reason: string;
  readonly destroyedAt: string;
  /** What was asked: explicit ids, or the filter. */
  readonly selector: { readonly ids: readonly string[] } | { readonly filter: Record<string, unknown> };
  readonly count: number;
  readonly totalBytes: number;
  readonly artefacts: readonly CertificateEntry[];
  /** Ids selected by id that had already been destroyed earlier (nothing to do). */
  readonly alreadyDestroyed: readonly string[];
  /** hex SHA-256 of the canonical JSON of every field above. */
  readonly digest: string;
}


export interface ArtefactRow {
  id: string; kind: string; owner: string; labels: string; media_type: string; retain_until: string | null; key_id: string;
  sha256: string; ciphertext_sha256: string; bytes: number; created_at: string; legal_hold: string | null; destroyed_at: string | null; destroy_reason: string | null;
}
type Row = ArtefactRow;

/** Where artefact metadata and ciphertext are kept. */
export interface ArtefactBackend {
  readonly kind: 'local' | 'postgres';
  /** Stores the encrypted blob of `id` (before its metadata row is inserted). */
  putBlob(id: string, blob: Buffer): Promise<void>;
  /** The encrypted blob's content, decrypted with `key` (CiphertextTampered if it is missing or altered). */
  openBlob(id: string, key: Buffer, keyId: string): Promise<Buffer>;
  removeBlob(id: string): Promise<void>;
  insert(row: Omit<ArtefactRow, 'legal_hold' | 'destroyed_at' | 'destroy_reason'>): Promise<void>;
  get(id: string): Promise<ArtefactRow | undefined>;
  list(): Promise<ArtefactRow[]>;
  setHold(id: string, hold: string | null): Promise<void>;
  markDestroyed(id: string, at: string, reason: string): Promise<void>;
  close(): void;
}

const ID = /^art_[A-Za-z0-9_-]{16,64}$/;

/** Where each artefact's ciphertext lives: a file per artefact (embedded) or a table (shared). */
export interface BlobPlace {
  put(id: string, blob: Buffer): Promise<void>;
  /** Decrypted with `key`; CiphertextTampered if the blob is missing or altered. */
  open(id: string, key: Buffer, keyId: string): Promise<Buffer>;
  remove(id: string): Promise<void>;
}

/** `<dir>/blobs/<id>.ghb`, written atomically. */
export class FileBlobs implements BlobPlace {
  readonly #dir: string;
  constructor(dir: string) { this.#dir = dir; }
  #file(id: string): string { return join(this.#dir, 'blobs', `${id}.ghb`); }
  async put(id: string, blob: Buffer): Promise<void> { await writeFileAtomic(this.#file(id), blob, 0o600); }
  async open(id: string, key: Buffer, keyId: string): Promise<Buffer> {
    try {
      return await decryptFile(this.#file(id), key, { expectedKeyId: keyId });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CiphertextTampered(`${id}.ghb`, null, 'the encrypted file is missing');
      throw e;
    }
  }
  async remove(id: string): Promise<void> { await rm(this.#file(id), { force: true }); }
}

/** The artefact_blobs table (src/sql/tables/keys.ts) on the state SQL driver. */
export class SqlBlobs implements BlobPlace {
  readonly #d: SqlDriver;
  constructor(driver: SqlDriver) { this.#d = driver; }
  async put(id: string, blob: Buffer): Promise<void> {
    await guard('storing an artefact', () => this.#d.run('INSERT INTO {artefact_blobs} (id, ciphertext) VALUES (?, ?)', [id, blob]));
  }
  async open(id: string, key: Buffer, keyId: string): Promise<Buffer> {
    const r = await guard('reading an artefact', () => this.#d.get<{ ciphertext: Uint8Array }>('SELECT ciphertext FROM {artefact_blobs} WHERE id = ?', [id]));
    if (!r) throw new CiphertextTampered(`${id}.ghb`, null, 'the encrypted blob is missing');
    const blob = Buffer.isBuffer(r.ciphertext) ? r.ciphertext : Buffer.from(r.ciphertext);
    return openBlob(blob, key, { name: `${id}.ghb`, expectedKeyId: keyId });
  }
  async remove(id: string): Promise<void> {
    await guard('removing an artefact', () => this.#d.run('DELETE FROM {artefact_blobs} WHERE id = ?', [id]));
  }
}

/**
 * The one artefact backend: metadata on the state SQL driver (tables declared once in
 * src/sql/tables/keys.ts), ciphertext in a BlobPlace.
 */
export class SqlArtefactBackend implements ArtefactBackend {
  readonly kind: 'local' | 'postgres';
  readonly #d: SqlDriver;
  readonly #blobs: BlobPlace;
  readonly #close: () => void;

  constructor(driver: SqlDriver, blobs: BlobPlace, options: { close?: () => void } = {}) {
    this.#d = driver;
    this.#blobs = blobs;
    this.kind = driver.dialect.name === 'postgres' ? 'postgres' : 'local';
    this.#close = options.close ?? (() => undefined);
  }

  putBlob(id: string, blob: Buffer): Promise<void> { return this.#blobs.put(id, blob); }
  openBlob(id: string, key: Buffer, keyId: string): Promise<Buffer> { return this.#blobs.open(id, key, keyId); }
  removeBlob(id: string): Promise<void> { return this.#blobs.remove(id); }

  async insert(r: Omit<Row, 'legal_hold' | 'destroyed_at' | 'destroy_reason'>): Promise<void> {
    await guard('storing an artefact', () => this.#d.run(`INSERT INTO {artefacts} (id, kind, owner, labels, media_type, retain_until, key_id, sha256, ciphertext_sha256, bytes, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [r.id, r.kind, r.owner, r.labels, r.media_type, r.retain_until, r.key_id, r.sha256, r.ciphertext_sha256, r.bytes, r.created_at]));
  }
  get(id: string): Promise<Row | undefined> { return guard('reading an artefact', () => this.#d.get<Row>('SELECT * FROM {artefacts} WHERE id = ?', [id])); }
  list(): Promise<Row[]> { return guard('listing artefacts', () => this.#d.query<Row>('SELECT * FROM {artefacts} ORDER BY created_at, id')); }
  async setHold(id: string, hold: string | null): Promise<void> {
    await guard('setting a legal hold', () => this.#d.run('UPDATE {artefacts} SET legal_hold = ? WHERE id = ?', [hold, id]));
  }
  async markDestroyed(id: string, at: string, reason: string): Promise<void> {
    await guard('marking an artefact destroyed', () => this.#d.run('UPDATE {artefacts} SET destroyed_at = ?, destroy_reason = ? WHERE id = ? AND destroyed_at IS NULL', [at, reason, id]));
  }
  close(): void { this.#close(); }
}

export class ArtefactStore {
  /** The local directory, or `postgres:<schema>` for the shared store. */
  readonly dir: string;
  readonly #b: ArtefactBackend;
  readonly #keys: DataKeyStore;
  readonly #now: () => Date;
  #closed = false;

  private constructor(dir: string, backend: ArtefactBackend, keys: DataKeyStore, now: () => Date) {
    this.dir = dir;
    this.#b = backend;
    this.#keys = keys;
    this.#now = now;
  }

  static open(options: { dir: string; keys: DataKeyStore; now?: () => Date }): ArtefactStore {
    mkdirSync(join(options.dir, 'blobs'), { recursive: true, mode: 0o700 });
    let driver: SqliteDriver;
    try {
      driver = SqliteDriver.openSync(join(options.dir, 'artefacts.sqlite'), { busyTimeoutMs: 5000, schema: artefactTables(sqliteDialect()) });
    } catch (e) {
      throw new KeyStoreUnavailable(`cannot open the artefact store in ${options.dir}`, { cause: e });
    }
    const backend = new SqlArtefactBackend(driver, new FileBlobs(options.dir), { close: () => { void driver.close(); } });
    return new ArtefactStore(options.dir, backend, options.keys, options.now ?? (() => new Date()));
  }

  /** An artefact store over another backend (PostgreSQL: src/state/keys-pg.ts `openPgArtefacts`). */
  static onBackend(name: string, backend: ArtefactBackend, keys: DataKeyStore, now: () => Date = () => new Date()): ArtefactStore {
    return new ArtefactStore(name, backend, keys, now);
  }

  /** 'local' or 'postgres'. */
  get backend(): 'local' | 'postgres' {
    return this.#b.kind;
  }

  /** Stores `content` encrypted under a fresh data key of its own. */
  async put(input: PutInput): Promise<{ id: string; keyId: string; sha256: string; ciphertextSha256: string; bytes: number }> {
    this.#live();
    if (input?.kind !== 'result' && input?.kind !== 'export') throw new KeyInputInvalid("an artefact's kind is 'result' or 'export'");
    if (typeof input.owner !== 'string' || input.owner.length === 0) throw new KeyInputInvalid('an artefact needs an owner (principal id)');
    if (!Buffer.isBuffer(input.content)) throw new KeyInputInvalid('artefact content must be a Buffer');
    if (typeof input.mediaType !== 'string' || !/^[\w.+-]+\/[\w.+-]+(;.*)?$/.test(input.mediaType)) throw new KeyInputInvalid('mediaType must look like type/subtype');
    if (input.retainUntil !== null && (typeof input.retainUntil !== 'string' || Number.isNaN(Date.parse(input.retainUntil)))) throw new KeyInputInvalid('retainUntil must be an ISO date-time or null');
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(input.labels ?? {})) if (v !== undefined) labels[k] = v;
    const retainUntil = input.retainUntil === null ? null : new Date(input.retainUntil).toISOString();
    const id = `art_${randomBytes(16).toString('base64url')}`;
    const { keyId } = await this.#keys.create({ subject: `${input.kind}:${id}`, kind: input.kind, labels: { ...labels, owner: input.owner } });
    try {
      const key = await this.#keys.unwrap(keyId);
      let blob: Buffer;
      try { blob = seal(input.content, key, keyId); } finally { key.fill(0); }
      await this.#b.putBlob(id, blob);
      const sha256 = createHash('sha256').update(input.content).digest('hex');
      const ciphertextSha256 = createHash('sha256').update(blob).digest('hex');
      this.#live();
      await this.#b.insert({ id, kind: input.kind, owner: input.owner, labels: JSON.stringify(labels), media_type: input.mediaType, retain_until: retainUntil, key_id: keyId, sha256, ciphertext_sha256: ciphertextSha256, bytes: input.content.length, created_at: this.#now().toISOString() });
      return { id, keyId, sha256, ciphertextSha256, bytes: input.content.length };
    } catch (e) {
      // Nothing half-stored: no blob, and the unused key is shredded.
      await this.#b.removeBlob(id).catch(() => {});
      await this.#keys.destroy(keyId, 'artefact store: put failed, unused key').catch(() => { /* best effort */ });
      throw e;
    }
  }

  async meta(id: string): Promise<ArtefactMeta> {
    this.#live();
    const row = typeof id === 'string' && ID.test(id) ? await this.#b.get(id) : undefined;
    if (!row) throw new ArtefactNotFound(String(id).slice(0, 80));
    return toMeta(row);
  }

  /** The decrypted content; refuses destroyed artefacts with ARTEFACT_DESTROYED. */
  async get(id: string): Promise<{ meta: ArtefactMeta; content: Buffer }> {
    const meta = await this.meta(id);
    if (meta.destroyedAt) throw new ArtefactDestroyed(id, meta.destroyedAt, meta.destroyReason);
    let key: Buffer;
    try {
      key = await this.#keys.unwrap(meta.keyId);
    } catch (e) {
      if (e instanceof DataKeyDestroyed) throw new ArtefactDestroyed(id, e.destroyedAt, null);
      throw e;
    }
    try {
      const content = await this.#b.openBlob(id, key, meta.keyId);
      if (createHash('sha256').update(content).digest('hex') !== meta.sha256) {
        content.fill(0);
        throw new CiphertextTampered(`${id}.ghb`, null, 'content does not match the digest recorded when it was stored');
      }
      return { meta, content };
    } finally {
      key.fill(0);
    }
  }

  async list(filter: ArtefactFilter = {}): Promise<ArtefactMeta[]> {
    this.#live();
    const rows = await this.#b.list();
    const at = filter.expiredAt?.getTime();
    return rows.map(toMeta).filter((m) =>
      (filter.includeDestroyed || m.destroyedAt === null)
      && (filter.kind === undefined || m.kind === filter.kind)
      && (filter.owner === undefined || m.owner === filter.owner)
      && Object.entries(filter.labels ?? {}).every(([k, v]) => m.labels[k] === v)
      && (at === undefined || (m.retainUntil !== null && Date.parse(m.retainUntil) <= at)));
  }

  /** Live artefacts whose retainUntil has passed (the retention scheduler destroys them). */
  expired(now: Date = this.#now()): Promise<ArtefactMeta[]> {
    return this.list({ expiredAt: now });
  }

  /** Places (reason) or releases (null) a legal hold: a held artefact cannot be destroyed. */
  async setLegalHold(id: string, hold: string | null): Promise<ArtefactMeta> {
    const meta = await this.meta(id);
    if (meta.destroyedAt) throw new ArtefactDestroyed(id, meta.destroyedAt, meta.destroyReason);
    if (hold !== null && (typeof hold !== 'string' || hold.trim() === '')) throw new KeyInputInvalid('a legal hold needs a reason (e.g. the matter number)');
    await this.#b.setHold(id, hold);
    return this.meta(id);
  }

  /**
   * Crypto-shreds the selected artefacts: destroys each one's data key, marks it destroyed
   * and deletes its blob. Refused whole (nothing changes) if an id is unknown or any
   * selected artefact is under legal hold.
   */
  async destroy(selector: readonly string[] | ArtefactFilter, reason: string): Promise<DestructionCertificate> {
    this.#live();
    if (typeof reason !== 'string' || reason.trim() === '') throw new KeyInputInvalid('a destruction needs a reason (it goes into the certificate)');
    let targets: ArtefactMeta[];
    const already: string[] = [];
    if (Array.isArray(selector)) {
      const metas: ArtefactMeta[] = [];
      for (const id of selector as readonly string[]) metas.push(await this.meta(id));
      targets = metas.filter((m) => m.destroyedAt === null);
      already.push(...metas.filter((m) => m.destroyedAt !== null).map((m) => m.id));
    } else {
      targets = await this.list({ ...(selector as ArtefactFilter), includeDestroyed: false });
    }
    const held = targets.filter((m) => m.legalHold !== null).map((m) => m.id);
    if (held.length > 0) throw new LegalHoldActive(held);

    const destroyedAt = this.#now().toISOString();
    const entries: CertificateEntry[] = [];
    for (const m of targets) {
      let rec: DestructionRecord;
      try {
        rec = await this.#keys.destroy(m.keyId, reason);
      } catch (e) {
        // Destroyed earlier (e.g. a crash between key and metadata, or by another node): finish the job.
        const prior = e instanceof DataKeyDestroyed ? await this.#keys.destruction(m.keyId) : null;
        if (!prior) throw e;
        rec = prior;
      }
      await this.#b.markDestroyed(m.id, destroyedAt, reason);
      await this.#b.removeBlob(m.id);
      entries.push({
        id: m.id, kind: m.kind, owner: m.owner, labels: m.labels, bytes: m.bytes, contentSha256: m.sha256, ciphertextSha256: m.ciphertextSha256,
        keyId: m.keyId, wrappedKeyDigest: rec.wrappedKeyDigest, kekVersion: rec.kekVersion, keyDestroyedAt: rec.destroyedAt,
      });
    }
    const body = {
      type: 'gatehouse.destruction-certificate' as const,
      version: 1 as const,
      certificateId: `dc_${randomBytes(12).toString('base64url')}`,
      method: 'crypto-shredding: data keys destroyed' as const,
      reason,
      destroyedAt,
      selector: Array.isArray(selector) ? { ids: [...(selector as readonly string[])] } : { filter: describeFilter(selector as ArtefactFilter) },
      count: entries.length,
      totalBytes: entries.reduce((a, e) => a + e.bytes, 0),
      artefacts: entries,
      alreadyDestroyed: already,
    };
    return { ...body, digest: createHash('sha256').update(JSON.stringify(body)).digest('hex') };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#b.close();
  }

  #live(): void {
    if (this.#closed) throw new KeyStoreUnavailable('the artefact store is closed');
  }
}

/** Recomputes a certificate's digest (true when it was not altered). */
export function verifyCertificateDigest(c: DestructionCertificate): boolean {
  const { digest, ...body } = c;
  const ordered = {
    type: body.type, version: body.version, certificateId: body.certificateId, method: body.method, reason: body.reason, destroyedAt: body.destroyedAt,
    selector: body.selector, count: body.count, totalBytes: body.totalBytes, artefacts: body.artefacts, alreadyDestroyed: body.alreadyDestroyed,
  };
  return createHash('sha256').update(JSON.stringify(ordered)).digest('hex') === digest;
}

function describeFilter(f: ArtefactFilter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (f.kind !== undefined) out.kind = f.kind;
  if (f.owner !== undefined) out.owner = f.owner;
  if (f.labels !== undefined) out.labels = f.labels;
  if (f.expiredAt !== undefined) out.expiredAt = f.expiredAt.toISOString();
  return out;
}

function toMeta(r: Row): ArtefactMeta {
  return {
    id: r.id, kind: r.kind as ArtefactKind, owner: r.owner, labels: JSON.parse(r.labels), mediaType: r.media_type, retainUntil: r.retain_until,
    keyId: r.key_id, sha256: r.sha256, ciphertextSha256: r.ciphertext_sha256, bytes: Number(r.bytes), createdAt: r.created_at,
    legalHold: r.legal_hold, destroyedAt: r.destroyed_at, destroyReason: r.destroy_reason,
  };
}
