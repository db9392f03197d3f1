/**
 * The transparency log: an AuditSink whose entries are leaves of an RFC 6962 Merkle tree
 * (RFC 9162 §2.1), with C2SP tlog-checkpoint / signed-note checkpoints, inclusion and
 * consistency proofs, receipts, search and export.
 *
 * Leaf bytes are the RFC 8785 canonical JSON of {"entry": <pseudonymised record>,
 * "index": <position>, "v": 1}; carrying the index in the leaf makes reordering, reuse
 * and gaps visible to any verifier.
 *
 * Appends use group commit: every append of the current event-loop turn joins one batch
 * that is written and fdatasync'ed once; each promise resolves only after that.
 * A checkpoint is signed at most `checkpointIntervalMs` after new entries become durable
 * (default 500 ms), and before signing the log checks that the new tree is consistent
 * with the last checkpoint it signed, so it never signs two inconsistent checkpoints.
 */
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type { AuditAppendResult, AuditRecord, AuditSink } from './types.ts';
import { canonicalAuditEntry } from './canonical.ts';
import { EntryNotFound, InconsistentCheckpoint, InputInvalid, LogUnavailable, ProofRangeInvalid, RecordInvalid } from './errors.ts';
import { consistencyProof, hashEquals, inclusionProof, verifyConsistency, type SubtreeSource } from './merkle.ts';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, parseNote, signNote, type NoteVerifier } from './note.ts';
import { FileStore, type FileStoreOptions, type LogStorage } from './store.ts';
import { LogKeyring, PseudonymKeyring, epochOf, resolvePassphrase, type PseudonymEpoch, type SigningKeyRecord } from './keys.ts';

export const EXPORT_FORMAT = 'gatehouse-audit-export/v1';
export const RECEIPT_FORMAT = 'gatehouse-audit-receipt/v1';

export interface TransparencyLogOptions {
  /** Log origin (checkpoint first line and signing key name). Default "gatehouse.local/audit". */
  readonly origin?: string;
  /** Passphrase for the encrypted key files; default: GATEHOUSE_KEY_PASSPHRASE. */
  readonly passphrase?: string;
  /** Allow the documented, non-secret demo passphrase when none is configured. */
  readonly demo?: boolean;
  /** Where the signing keys live. Default `<dir>/keys`. */
  readonly keyDir?: string;
  /** Where the pseudonym keys live; keep it outside the log's backups. Default `<dir>/pseudonym-keys`. */
  readonly pseudonymKeyDir?: string;
  readonly pseudonymEpoch?: PseudonymEpoch;
  /** Longest delay between an entry becoming durable and a checkpoint covering it. Default 500. */
  readonly checkpointIntervalMs?: number;
  /** Largest batch one fsync covers. Default 16384. */
  readonly maxBatch?: number;
}

/** Options for a log opened on a given storage: where the keys live must be said explicitly. */
export interface OpenOnOptions extends TransparencyLogOptions {
  readonly keyDir: string;
  readonly pseudonymKeyDir: string;
}

/** What a caller may pass as one entry's extra personal identifiers (pseudonymised like principal). */
export interface AuditRecordWithSubjects extends AuditRecord {
  readonly subjects?: readonly string[];
}

export interface StoredAuditEntry {
  readonly time: string;
  readonly principal: string | null;
  readonly source: string;
  readonly channel: string;
  readonly action: string;
  readonly purpose: string | null;
  readonly datasets: readonly string[];
  readonly columns: readonly string[];
  readonly decision: string;
  readonly reasons: readonly string[];
  readonly policyVersion: string | null;
  readonly obligations: readonly string[];
  readonly sqlFingerprint: string | null;
  readonly rowsReturned: number | null;
  readonly resultDigest: string | null;
  readonly errorCode: string | null;
  readonly subjects: readonly string[];
  readonly pseudonymEpoch: string;
}

export interface Leaf { readonly entry: StoredAuditEntry; readonly index: number; readonly v: 1 }

export interface InclusionProofResult { readonly index: number; readonly size: number; readonly leafHash: string; readonly proof: string[] }
export interface ConsistencyProofResult { readonly first: number; readonly second: number; readonly proof: string[] }

export interface Receipt {
  readonly type: typeof RECEIPT_FORMAT;
  readonly origin: string;
  readonly index: number;
  readonly leaf: Leaf;
  readonly proof: string[];
  readonly checkpoint: string;
}

export interface SearchFilter {
  /** Raw principal id: mapped to its pseudonyms with the pseudonym keys. */
  readonly principal?: string;
  /** A pseudonym as stored in the log. */
  readonly pseudonym?: string;
  readonly dataset?: string;
  readonly decision?: string;
  readonly purpose?: string;
  readonly action?: string;
  /** ISO-8601 inclusive lower bound on `time`. */
  readonly from?: string;
  /** ISO-8601 exclusive upper bound on `time`. */
  readonly to?: string;
  /** First index to consider. */
  readonly fromIndex?: number;
  /** Maximum number of results (default 1000). */
  readonly limit?: number;
}

export interface SearchHit { readonly auditId: string; readonly index: number; readonly entry: StoredAuditEntry }

export interface ExportOptions {
  readonly filter?: SearchFilter;
  /** Include inclusion proofs (default true). */
  readonly proofs?: boolean;
}

export interface PublicKeyInfo {
  readonly origin: string;
  /** Every signing key the log has used (C2SP vkeys), oldest first. */
  readonly vkeys: string[];
  readonly history: readonly Omit<SigningKeyRecord, 'sealed'>[];
}

const DECISIONS = new Set(['allow', 'deny', 'error']);

function isStr(v: unknown): v is string { return typeof v === 'string'; }
function strOrNull(v: unknown): boolean { return v === null || typeof v === 'string'; }
function strArr(v: unknown): v is readonly string[] { return Array.isArray(v) && v.every(isStr); }

function validateRecord(r: AuditRecordWithSubjects): void {
  if (typeof r !== 'object' || r === null) throw new RecordInvalid('audit record must be an object');
  if (!isStr(r.time) || Number.isNaN(Date.parse(r.time))) throw new RecordInvalid('time must be an ISO-8601 string');
  for (const k of ['source', 'channel', 'action'] as const) if (!isStr(r[k])) throw new RecordInvalid(`${k} must be a string`);
  for (const k of ['principal', 'purpose', 'policyVersion', 'sqlFingerprint', 'resultDigest', 'errorCode'] as const) {
    if (!strOrNull(r[k])) throw new RecordInvalid(`${k} must be a string or null`);
  }
  for (const k of ['datasets', 'columns', 'reasons', 'obligations'] as const) if (!strArr(r[k])) throw new RecordInvalid(`${k} must be an array of strings`);
  if (r.subjects !== undefined && !strArr(r.subjects)) throw new RecordInvalid('subjects must be an array of strings');
  if (!DECISIONS.has(r.decision)) throw new RecordInvalid('decision must be allow, deny or error');
  if (r.rowsReturned !== null && !(Number.isSafeInteger(r.rowsReturned) && r.rowsReturned >= 0)) throw new RecordInvalid('rowsReturned must be a non-negative integer or null');
}

function checkIndex(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ProofRangeInvalid(`${name} must be a non-negative integer`);
}

/** Leaf-index and checkpoint parsers the storage uses to check what it loads. */
function storageParsers(keys: LogKeyring, origin: string): FileStoreOptions {
  return {
    indexOf: (payload) => {
      const leaf = JSON.parse(payload.toString('utf8')) as Leaf;
      if (!Number.isSafeInteger(leaf.index)) throw new Error('no index');
      return leaf.index;
    },
    checkpointSizeRoot: (note) => {
      // The keyring as it is now: a rotation on this node adds its new key.
      const cp = openCheckpoint(note, keys.verifiers(), origin);
      return { size: cp.size, root: cp.root };
    },
  };
}

/** Memoises subtree hashes while generating many neighbouring proofs (export). */
class CachingSource implements SubtreeSource {
  readonly #inner: SubtreeSource;
  readonly #cache = new Map<string, Buffer>();
  constructor(inner: SubtreeSource) { this.#inner = inner; }
  subtreeHash(start: number, end: number): Buffer {
    const k = `${start}:${end}`;
    let h = this.#cache.get(k);
    if (!h) {
      h = this.#inner.subtreeHash(start, end);
      if (this.#cache.size >= 8192) this.#cache.clear();
      this.#cache.set(k, h);
    }
    return h;
  }
}

export class TransparencyLog implements AuditSink {
  readonly dir: string;
  readonly origin: string;
  readonly #store: LogStorage;
  readonly #keys: LogKeyring;
  readonly #pseudonyms: PseudonymKeyring;
  readonly #interval: number;
  readonly #maxBatch: number;
  // Appends waiting for the next batch: canonical entry JSON and promise callbacks, as
  // parallel arrays (no object per entry).
  #pendingJson: string[] = [];
  #pendingResolve: ((r: AuditAppendResult) => void)[] = [];
  #pendingReject: ((e: unknown) => void)[] = [];
  #flushScheduled = false;
  #flushing: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #last: { size: number; root: Buffer; note: string; at: number } | null = null;
  #halted: Error | null = null;
  /** The checkpoint being signed and stored, if any (one at a time). */
  #signing: Promise<string> | null = null;
  #closed = false;
  #batches = 0;

  private constructor(dir: string, origin: string, store: LogStorage, keys: LogKeyring, pseudonyms: PseudonymKeyring, options: TransparencyLogOptions) {
    this.dir = dir;
    this.origin = origin;
    this.#store = store;
    this.#keys = keys;
    this.#pseudonyms = pseudonyms;
    this.#interval = options.checkpointIntervalMs ?? 500;
    this.#maxBatch = options.maxBatch ?? 16384;
    const note = store.latestCheckpoint();
    if (note) {
      const cp = openCheckpoint(note, keys.verifiers(), origin);
      this.#last = { size: cp.size, root: cp.root, note, at: Date.now() };
    }
  }

  static open(dir: string, options: TransparencyLogOptions = {}): TransparencyLog {
    const origin = options.origin ?? 'gatehouse.local/audit';
    const passphrase = resolvePassphrase(options.passphrase, options.demo ?? false);
    const keys = LogKeyring.open(options.keyDir ?? join(dir, 'keys'), origin, passphrase);
    let pseudonyms: PseudonymKeyring | null = null;
    try {
      pseudonyms = PseudonymKeyring.open(options.pseudonymKeyDir ?? join(dir, 'pseudonym-keys'), passphrase, options.pseudonymEpoch ?? 'month');
      const store = FileStore.open(dir, storageParsers(keys, origin));
      const log = new TransparencyLog(dir, origin, store, keys, pseudonyms, options);
      if (store.size > (log.#last?.size ?? 0)) log.#scheduleCheckpoint();
      return log;
    } catch (e) {
      keys.close();
      pseudonyms?.close();
      throw e;
    }
  }

  /**
   * Opens the log on a given storage — e.g. PostgreSQL shared by several nodes
   * (src/state/pg-log-storage.ts). Keys and pseudonym keys stay in local directories; every
   * node writing to the same storage must hold the same key files (docs/state-postgres.md).
   */
  static async openOn(storage: LogStorage, options: OpenOnOptions): Promise<TransparencyLog> {
    if (typeof options?.keyDir !== 'string' || typeof options.pseudonymKeyDir !== 'string') {
      throw new InputInvalid('openOn needs keyDir and pseudonymKeyDir');
    }
    const origin = options.origin ?? 'gatehouse.local/audit';
    const passphrase = resolvePassphrase(options.passphrase, options.demo ?? false);
    const keys = LogKeyring.open(options.keyDir, origin, passphrase);
    let pseudonyms: PseudonymKeyring | null = null;
    try {
      pseudonyms = PseudonymKeyring.open(options.pseudonymKeyDir, passphrase, options.pseudonymEpoch ?? 'month');
      await storage.attach?.(storageParsers(keys, origin));
      const log = new TransparencyLog(options.keyDir, origin, storage, keys, pseudonyms, options);
      if (storage.size > (log.#last?.size ?? 0)) log.#scheduleCheckpoint();
      return log;
    } catch (e) {
      keys.close();
      pseudonyms?.close();
      throw e;
    }
  }

  /** Number of durable entries (on shared storage: those this node has seen, see refresh()). */
  get size(): number { return this.#store.size; }

  /**
   * On storage shared with other nodes: catches up with the entries and the checkpoint they
   * stored, so size, proofs and roots cover them. A no-op on the file store.
   */
  async refresh(): Promise<void> {
    if (!this.#store.refresh) return;
    await this.#store.refresh();
    const note = this.#store.latestCheckpoint();
    if (!note || note === this.#last?.note) return;
    // The storage checked that the note verifies and signs the tree it holds; adopt it if
    // it is newer than ours. Our next checkpoint is then checked for consistency with it.
    const cp = openCheckpoint(note, this.#keys.verifiers(), this.origin);
    if (this.#last && cp.size <= this.#last.size) return;
    if (!hashEquals(this.#store.root(cp.size), cp.root)) {
      this.#halted = new InconsistentCheckpoint(`a stored checkpoint of size ${cp.size} does not match this node's tree`);
      throw this.#halted;
    }
    this.#last = { size: cp.size, root: cp.root, note, at: this.#last?.at ?? Date.now() };
  }

  // ---- AuditSink ----------------------------------------------------------------------

  append(record: AuditRecord): Promise<AuditAppendResult> {
    if (this.#closed) return Promise.reject(new LogUnavailable('audit log is closed'));
    let entryJson: string;
    try {
      entryJson = canonicalAuditEntry(this.#toEntry(record as AuditRecordWithSubjects));
    } catch (e) {
      return Promise.reject(e);
    }
    this.#pendingJson.push(entryJson);
    if (!this.#flushScheduled && !this.#flushing) this.#scheduleFlush();
    return new Promise((resolve, reject) => {
      this.#pendingResolve.push(resolve);
      this.#pendingReject.push(reject);
    });
  }

  #toEntry(r: AuditRecordWithSubjects): StoredAuditEntry {
    validateRecord(r);
    const epoch = epochOf(r.time, this.#pseudonyms.granularity);
    const ps = (id: string) => this.#pseudonyms.pseudonym(id, epoch);
    return {
      time: r.time,
      principal: r.principal === null ? null : ps(r.principal),
      source: ps(r.source),
      channel: r.channel,
      action: r.action,
      purpose: r.purpose,
      datasets: r.datasets,
      columns: r.columns,
      decision: r.decision,
      reasons: r.reasons,
      policyVersion: r.policyVersion,
      obligations: r.obligations,
      sqlFingerprint: r.sqlFingerprint,
      rowsReturned: r.rowsReturned,
      resultDigest: r.resultDigest,
      errorCode: r.errorCode,
      subjects: (r.subjects ?? []).map(ps),
      pseudonymEpoch: epoch,
    };
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#flushing) return;
    this.#flushScheduled = true;
    // setImmediate: every append of this event-loop turn joins the same batch and fsync.
    setImmediate(() => this.#startFlush());
  }

  #startFlush(): void {
    this.#flushScheduled = false;
    const p = this.#flush();
    this.#flushing = p;
    void p.then(() => {
      if (this.#flushing === p) this.#flushing = null;
      if (this.#pendingJson.length > 0) this.#scheduleFlush();
    });
  }

  async #flush(): Promise<void> {
    {
      while (this.#pendingJson.length > 0) {
        let json: string[], resolves: ((r: AuditAppendResult) => void)[], rejects: ((e: unknown) => void)[];
        if (this.#pendingJson.length <= this.#maxBatch) {
          json = this.#pendingJson; resolves = this.#pendingResolve; rejects = this.#pendingReject;
          this.#pendingJson = []; this.#pendingResolve = []; this.#pendingReject = [];
        } else {
          json = this.#pendingJson.splice(0, this.#maxBatch);
          resolves = this.#pendingResolve.splice(0, this.#maxBatch);
          rejects = this.#pendingReject.splice(0, this.#maxBatch);
        }
        // The leaf: RFC 8785 canonical JSON of {"entry", "index", "v"} (members in that order).
        const leaves = (from: number): string[] => {
          const payloads = new Array<string>(json.length);
          for (let i = 0; i < json.length; i++) payloads[i] = '{"entry":' + json[i] + ',"index":' + (from + i) + ',"v":1}';
          return payloads;
        };
        let base = this.#store.size;
        try {
          this.#batches++;
          // Shared storage assigns the index under its writer lock; the file store has one writer.
          if (this.#store.appendSequenced) base = await this.#store.appendSequenced(leaves);
          else await this.#store.appendBatch(leaves(base));
        } catch (e) {
          for (const reject of rejects) reject(e);
          continue;
        }
        for (let i = 0; i < resolves.length; i++) resolves[i]!({ auditId: String(base + i) });
        this.#scheduleCheckpoint();
      }
    }
  }

  async #drain(): Promise<void> {
    while (this.#flushing || this.#flushScheduled || this.#pendingJson.length > 0) {
      if (this.#flushing) await this.#flushing;
      else if (this.#pendingJson.length > 0 && !this.#flushScheduled) this.#scheduleFlush();
      else await new Promise((r) => setImmediate(r));
    }
  }

  #scheduleCheckpoint(): void {
    if (this.#timer || this.#closed) return;
    const due = (this.#last?.at ?? 0) + this.#interval;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#signAndStore().catch(() => { /* halted or I/O failure: reported by checkpoint() */ });
    }, Math.max(0, due - Date.now()));
    this.#timer.unref();
  }

  /**
   * Signs a checkpoint for the current durable size, if it grew, and stores it. One
   * signing at a time: the derived files are fdatasync'ed and the note replaced
   * atomically off the event loop, and `#last` moves only after the note is durable.
   */
  async #signAndStore(): Promise<string> {
    while (this.#signing) await this.#signing.catch(() => {});
    const p = this.#signOnce();
    this.#signing = p;
    try { return await p; } finally { if (this.#signing === p) this.#signing = null; }
  }

  async #signOnce(): Promise<string> {
    if (this.#halted) throw this.#halted;
    const size = this.#store.size;
    const last = this.#last;
    if (last && last.size === size) return last.note;
    if (last && size < last.size) {
      this.#halted = new InconsistentCheckpoint(`log shrank from ${last.size} to ${size}`);
      throw this.#halted;
    }
    const root = this.#store.root(size);
    if (last) {
      try {
        verifyConsistency(last.size, size, last.root, root, consistencyProof(this.#store, last.size, size));
      } catch (e) {
        this.#halted = new InconsistentCheckpoint(`tree of size ${size} is not an extension of the signed checkpoint of size ${last.size}`);
        throw this.#halted;
      }
    }
    const note = signNote(formatCheckpoint({ origin: this.origin, size, root, extensions: [] }), [this.#keys.signer]);
    // The interval counts from when this checkpoint's size was taken, so the time spent
    // making it durable does not push the next one back.
    const at = Date.now();
    await this.#store.saveCheckpointAsync(note);
    // Another node's newer checkpoint may have been adopted (refresh) while this one was
    // being stored: never move back to a smaller tree.
    if (!this.#last || this.#last.size <= size) this.#last = { size, root, note, at };
    return note;
  }

  // ---- Checkpoints and proofs -----------------------------------------------------------

  /** The latest signed checkpoint, after waiting for in-flight appends and signing if the log grew. */
  async checkpoint(): Promise<string> {
    await this.#drain();
    await this.refresh();
    return this.#signAndStore();
  }

  /** The latest signed checkpoint without signing a new one (null for a log never checkpointed). */
  latestCheckpoint(): string | null { return this.#last?.note ?? null; }

  #defaultSize(): number {
    if (!this.#last) throw new ProofRangeInvalid('the log has no checkpoint yet');
    return this.#last.size;
  }

  inclusionProof(index: number, size?: number): InclusionProofResult {
    const n = size ?? this.#defaultSize();
    checkIndex('index', index);
    checkIndex('size', n);
    if (n > this.#store.size) throw new ProofRangeInvalid(`size ${n} exceeds the log size ${this.#store.size}`);
    if (index >= n) throw new ProofRangeInvalid(`index ${index} is not below tree size ${n}`);
    return {
      index, size: n,
      leafHash: this.#store.leafHash(index).toString('base64'),
      proof: inclusionProof(this.#store, index, n).map((h) => h.toString('base64')),
    };
  }

  consistencyProof(first: number, second?: number): ConsistencyProofResult {
    const n = second ?? this.#defaultSize();
    checkIndex('first', first);
    checkIndex('second', n);
    if (first > n) throw new ProofRangeInvalid(`first size ${first} exceeds second size ${n}`);
    if (n > this.#store.size) throw new ProofRangeInvalid(`size ${n} exceeds the log size ${this.#store.size}`);
    return { first, second: n, proof: consistencyProof(this.#store, first, n).map((h) => h.toString('base64')) };
  }

  /** Root hash of the tree of the first `size` entries. */
  rootAt(size: number): Buffer {
    checkIndex('size', size);
    if (size > this.#store.size) throw new ProofRangeInvalid(`size ${size} exceeds the log size ${this.#store.size}`);
    return this.#store.root(size);
  }

  leaf(index: number): Leaf {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.#store.size) throw new EntryNotFound(String(index));
    return JSON.parse(this.#store.readEntry(index).toString('utf8')) as Leaf;
  }

  /** entry + inclusion proof + signed checkpoint, verifiable offline with the log's public key. */
  async receipt(auditId: string): Promise<Receipt> {
    if (typeof auditId !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(auditId)) throw new EntryNotFound(String(auditId));
    const index = Number(auditId);
    if (index >= this.#store.size) await this.#drain();
    if (index >= this.#store.size) await this.refresh();
    if (index >= this.#store.size) throw new EntryNotFound(auditId);
    const note = this.#last && this.#last.size > index ? this.#last.note : await this.checkpoint();
    const size = parseCheckpoint(parseNote(note).text).size;
    const p = this.inclusionProof(index, size);
    const bytes = this.#store.readEntryAsync ? await this.#store.readEntryAsync(index) : this.#store.readEntry(index);
    const leaf = JSON.parse(bytes.toString('utf8')) as Leaf;
    return { type: RECEIPT_FORMAT, origin: this.origin, index, leaf, proof: p.proof, checkpoint: note };
  }

  // ---- Keys and pseudonyms --------------------------------------------------------------

  publicKeys(): PublicKeyInfo {
    return { origin: this.origin, vkeys: this.#keys.verifiers().map((v) => v.vkey), history: this.#keys.history() };
  }

  verifiers(): NoteVerifier[] { return this.#keys.verifiers(); }

  /** Signs a checkpoint with the current key, then rotates to a new one. */
  async rotateSigningKey(): Promise<SigningKeyRecord> {
    await this.checkpoint();
    const rec = this.#keys.rotate();
    // Re-sign the current head with the new key so the latest checkpoint uses it.
    if (this.#last) {
      const note = signNote(parseNote(this.#last.note).text, [this.#keys.signer]);
      await this.#store.saveCheckpointAsync(note);
      this.#last = { ...this.#last, note };
    }
    return rec;
  }

  /** Pseudonyms a principal (or other subject id) has in the epochs whose keys still exist. */
  pseudonymsOf(id: string): string[] { return this.#pseudonyms.lookup(id); }

  pseudonymEpochs() { return this.#pseudonyms.epochs(); }

  /** Crypto-shreds the pseudonym key of an epoch. The log and its tree are untouched. */
  destroyPseudonymKey(epoch: string): void { this.#pseudonyms.destroy(epoch); }

  // ---- Search and export ----------------------------------------------------------------

  async *scan(filter: SearchFilter = {}, end = this.#store.size): AsyncGenerator<{ index: number; bytes: Buffer; leaf: Leaf }> {
    const start = filter.fromIndex ?? 0;
    checkIndex('fromIndex', start);
    const pseudonyms = filter.principal !== undefined ? new Set(this.pseudonymsOf(filter.principal)) : null;
    if (pseudonyms && pseudonyms.size === 0) return;
    const needles: string[] = [];
    if (filter.pseudonym) needles.push(JSON.stringify(filter.pseudonym));
    if (filter.dataset) needles.push(JSON.stringify(filter.dataset));
    if (filter.purpose) needles.push(JSON.stringify(filter.purpose));
    const from = filter.from !== undefined ? Date.parse(filter.from) : null;
    const to = filter.to !== undefined ? Date.parse(filter.to) : null;
    if (from !== null && Number.isNaN(from)) throw new InputInvalid('from must be an ISO-8601 time');
    if (to !== null && Number.isNaN(to)) throw new InputInvalid('to must be an ISO-8601 time');
    for await (const { index, bytes } of this.#store.entries(start, end)) {
      if (needles.length > 0) {
        const s = bytes.toString('utf8');
        if (!needles.every((n) => s.includes(n))) continue;
      }
      const leaf = JSON.parse(bytes.toString('utf8')) as Leaf;
      const e = leaf.entry;
      if (pseudonyms && (e.principal === null || !pseudonyms.has(e.principal))) continue;
      if (filter.pseudonym && e.principal !== filter.pseudonym && !e.subjects.includes(filter.pseudonym)) continue;
      if (filter.dataset && !e.datasets.includes(filter.dataset)) continue;
      if (filter.decision && e.decision !== filter.decision) continue;
      if (filter.purpose && e.purpose !== filter.purpose) continue;
      if (filter.action && e.action !== filter.action) continue;
      if (from !== null || to !== null) {
        const t = Date.parse(e.time);
        if (from !== null && t < from) continue;
        if (to !== null && t >= to) continue;
      }
      yield { index, bytes, leaf };
    }
  }

  async search(filter: SearchFilter = {}): Promise<SearchHit[]> {
    const limit = filter.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new InputInvalid('limit must be a positive integer');
    await this.refresh();
    const hits: SearchHit[] = [];
    for await (const { index, leaf } of this.scan(filter)) {
      hits.push({ auditId: String(index), index, entry: leaf.entry });
      if (hits.length >= limit) break;
    }
    return hits;
  }

  /**
   * Writes the log as JSON lines: a header with a freshly signed checkpoint, one line per
   * entry with its inclusion proof against that checkpoint, and a trailer with the count.
   */
  async export(out: Writable, options: ExportOptions = {}): Promise<{ size: number; count: number }> {
    const note = await this.checkpoint();
    const size = parseCheckpoint(parseNote(note).text).size;
    const complete = options.filter === undefined;
    const withProofs = options.proofs ?? true;
    const source = new CachingSource(this.#store);
    const write = async (line: string) => { if (!out.write(line + '\n')) await once(out, 'drain'); };
    await write(JSON.stringify({ type: EXPORT_FORMAT, origin: this.origin, size, complete, checkpoint: note }));
    let count = 0;
    for await (const { index, bytes } of this.scan(options.filter ?? {}, size)) {
      const proof = withProofs ? `,"proof":${JSON.stringify(inclusionProof(source, index, size).map((h) => h.toString('base64')))}` : '';
      await write(`{"index":${index},"leaf":${bytes.toString('utf8')}${proof},"type":"entry"}`);
      count++;
    }
    await write(JSON.stringify({ type: 'end', count }));
    return { size, count };
  }

  diskUsage(): number { return this.#store.diskUsage(); }

  /** Counters for tests and the benchmark: batches written (one fdatasync each). */
  stats(): { size: number; batches: number; checkpointSize: number } {
    return { size: this.#store.size, batches: this.#batches, checkpointSize: this.#last?.size ?? 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#drain();
    this.#closed = true;
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = null; }
    try {
      while (this.#signing) await this.#signing.catch(() => {});
      if (!this.#halted && this.#store.size > (this.#last?.size ?? 0)) await this.#signAndStore();
    } finally {
      await this.#store.close();
      this.#keys.close();
      this.#pseudonyms.close();
    }
  }
}
