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
 *
 * The key files are sealed under a key derived from the passphrase with scrypt at
 * N=2^15 (keys.ts); `keyKdf` lowers that cost for key files created by this open (tests,
 * which create hundreds of logs). An existing key file is always opened with its own cost.
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
import { SqliteCheckpointAnchor, noteHash, type AnchoredCheckpoint, type CheckpointAnchor } from './anchor.ts';
import { HttpWitnessClient, cosignCheckpoint, checkQuorum, rememberWitnessSize, type WitnessClient, type WitnessPolicy } from './witness.ts';
import { AuditError, LogRollbackDetected } from './errors.ts';
import { LogKeyring, PseudonymKeyring, epochOf, resolvePassphrase, type KeyKdfCost, type PseudonymEpoch, type SigningKeyRecord } from './keys.ts';

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
  /** scrypt cost for key files this open creates (default N=2^15, r=8, p=1; only tests lower it). */
  readonly keyKdf?: KeyKdfCost;
  /** Longest delay between an entry becoming durable and a checkpoint covering it. Default 500. */
  readonly checkpointIntervalMs?: number;
  /** Largest batch one fsync covers. Default 16384. */
  readonly maxBatch?: number;
  /**
   * Where the latest signed checkpoint is anchored outside the log's files (anchor.ts): the
   * node's state (src/sql/tables/checkpoints.ts). Default for a log directory: a
   * SqliteCheckpointAnchor in `<dir>/checkpoints.sqlite`; null turns anchoring off.
   * An anchor whose latest() is asynchronous needs TransparencyLog.start or openOn.
   */
  readonly anchor?: CheckpointAnchor | null;
  /**
   * Witnesses (C2SP tlog-witness) every new checkpoint is sent to; only checkpoints
   * cosigned by `witnessQuorum` of them are published. `{url, key}`: a `gatehouse witness`
   * server and its cosignature vkey.
   */
  readonly witnesses?: readonly (WitnessClient | { readonly url: string; readonly key: string })[];
  /** k of the n witnesses that must cosign (default: all of them). */
  readonly witnessQuorum?: number;
}

/** Readiness of the log for a /ready route: ready false says why (no secrets, no paths). */
export interface LogHealth { readonly ready: boolean; readonly reason: string | null }

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
  /**
   * Only entries whose principal is this raw principal id (any of its pseudonyms): how a
   * partner's reads are narrowed to its own entries. Combines with every other filter.
   */
  readonly owner?: string;
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
  readonly #anchor: CheckpointAnchor | null;
  /** The log opened the anchor itself (the default file) and closes it. */
  #ownsAnchor = false;
  readonly #witnesses: WitnessPolicy | null;
  /** The last storage or witness failure, cleared by the next success (health()). */
  #fault: string | null = null;

  private constructor(dir: string, origin: string, store: LogStorage, keys: LogKeyring, pseudonyms: PseudonymKeyring, options: TransparencyLogOptions, anchor: CheckpointAnchor | null) {
    this.dir = dir;
    this.origin = origin;
    this.#store = store;
    this.#anchor = anchor;
    const ws = (options.witnesses ?? []).map((w) => ('addCheckpoint' in w ? w : new HttpWitnessClient(w.url, w.key)));
    this.#witnesses = ws.length > 0 ? { witnesses: ws, quorum: options.witnessQuorum ?? ws.length } : null;
    if (this.#witnesses) checkQuorum(this.#witnesses);
    else if (options.witnessQuorum !== undefined) throw new InputInvalid('witnessQuorum needs witnesses');
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

  /**
   * Opens (creating if needed) the file log in `dir`, checked against its anchored
   * checkpoint (synchronous anchors only). A server with witnesses or an asynchronous
   * anchor uses `start`, which also checks the witnesses' latest cosigned checkpoints.
   */
  static open(dir: string, options: TransparencyLogOptions = {}): TransparencyLog {
    const { origin, passphrase } = TransparencyLog.#identity(options);
    const keys = LogKeyring.open(options.keyDir ?? join(dir, 'keys'), origin, passphrase, options.keyKdf);
    let pseudonyms: PseudonymKeyring;
    try {
      pseudonyms = PseudonymKeyring.open(options.pseudonymKeyDir ?? join(dir, 'pseudonym-keys'), passphrase, options.pseudonymEpoch ?? 'month', options.keyKdf);
    } catch (e) {
      keys.close();
      throw e;
    }
    const log = TransparencyLog.#openFiles(dir, options, keys, pseudonyms);
    try {
      const anchored = log.#anchor?.latest() ?? null;
      if (anchored instanceof Promise) {
        anchored.catch(() => {});
        throw new InputInvalid('this checkpoint anchor is asynchronous: open the log with TransparencyLog.start');
      }
      const advance = log.#checkAnchored(anchored);
      if (advance) {
        const r = log.#anchor!.advance(advance);
        if (r instanceof Promise) { r.catch(() => {}); throw new InputInvalid('this checkpoint anchor is asynchronous: open the log with TransparencyLog.start'); }
      }
    } catch (e) {
      log.#abandon();
      throw e;
    }
    if (log.#store.size > (log.#last?.size ?? 0)) log.#scheduleCheckpoint();
    return log;
  }

  /**
   * What a server uses: opens the file log and refuses to start (LogRollbackDetected) unless
   * the stored tree extends both the checkpoint anchored in the node's state and the latest
   * checkpoint each reachable witness cosigned.
   */
  static async start(dir: string, options: TransparencyLogOptions = {}): Promise<TransparencyLog> {
    const { keys, pseudonyms } = await TransparencyLog.#openKeys(options, options.keyDir ?? join(dir, 'keys'), options.pseudonymKeyDir ?? join(dir, 'pseudonym-keys'));
    const log = TransparencyLog.#openFiles(dir, options, keys, pseudonyms);
    try {
      await log.#verifyHistory();
    } catch (e) {
      log.#abandon();
      throw e;
    }
    if (log.#store.size > (log.#last?.size ?? 0)) log.#scheduleCheckpoint();
    return log;
  }

  static #identity(options: TransparencyLogOptions): { origin: string; passphrase: string } {
    return { origin: options.origin ?? 'gatehouse.local/audit', passphrase: resolvePassphrase(options.passphrase, options.demo ?? false) };
  }

  /**
   * Both key files at once: each costs one scrypt, run on the thread pool, so a restart pays
   * for one of them instead of two in sequence on the event loop.
   */
  static async #openKeys(options: TransparencyLogOptions, keyDir: string, pseudonymKeyDir: string): Promise<{ keys: LogKeyring; pseudonyms: PseudonymKeyring }> {
    const { origin, passphrase } = TransparencyLog.#identity(options);
    const [k, p] = await Promise.allSettled([
      LogKeyring.openAsync(keyDir, origin, passphrase, options.keyKdf),
      PseudonymKeyring.openAsync(pseudonymKeyDir, passphrase, options.pseudonymEpoch ?? 'month', options.keyKdf),
    ]);
    if (k.status === 'fulfilled' && p.status === 'fulfilled') return { keys: k.value, pseudonyms: p.value };
    if (k.status === 'fulfilled') k.value.close();
    if (p.status === 'fulfilled') p.value.close();
    throw k.status === 'rejected' ? k.reason : (p as PromiseRejectedResult).reason;
  }

  static #openFiles(dir: string, options: TransparencyLogOptions, keys: LogKeyring, pseudonyms: PseudonymKeyring): TransparencyLog {
    const origin = options.origin ?? 'gatehouse.local/audit';
    let store: FileStore | null = null;
    let anchor: CheckpointAnchor | null = null;
    try {
      store = FileStore.open(dir, storageParsers(keys, origin));
      anchor = options.anchor === undefined ? SqliteCheckpointAnchor.open(join(dir, 'checkpoints.sqlite'), origin) : options.anchor;
      const log = new TransparencyLog(dir, origin, store, keys, pseudonyms, options, anchor);
      log.#ownsAnchor = options.anchor === undefined;
      return log;
    } catch (e) {
      if (options.anchor === undefined) void anchor?.close?.();
      void store?.close();
      keys.close();
      pseudonyms?.close();
      throw e;
    }
  }

  /** Releases everything after a failed open (the anchor too when the log opened it). */
  #abandon(): void {
    this.#closed = true;
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = null; }
    void this.#store.close();
    if (this.#ownsAnchor) void this.#anchor?.close?.();
    this.#keys.close();
    this.#pseudonyms.close();
  }

  /**
   * The stored tree must extend the anchored checkpoint: at least its size, and the same
   * root at that size. A disk checkpoint older than the anchor is replaced by the anchored
   * one (its signature checked); a disk checkpoint newer than the anchor (a crash between
   * the two writes) is returned to be anchored.
   */
  #checkAnchored(anchored: AnchoredCheckpoint | null): AnchoredCheckpoint | null {
    if (anchored) {
      this.#checkExtends(anchored.note, 'anchored in the node state');
      if (noteHash(anchored.note) !== anchored.noteHash) throw new LogRollbackDetected('the anchored checkpoint does not match its recorded hash');
      if (!this.#last || this.#last.size < anchored.size) {
        const cp = openCheckpoint(anchored.note, this.#keys.verifiers(), this.origin);
        this.#last = { size: cp.size, root: cp.root, note: anchored.note, at: Date.now() };
      }
    }
    if (this.#last && (!anchored || anchored.size < this.#last.size)) return this.#anchorRecord(this.#last.note, this.#last.size, this.#last.root);
    return null;
  }

  /** Throws LogRollbackDetected unless the stored tree extends the signed checkpoint `note`. */
  #checkExtends(note: string, where: string): void {
    const cp = openCheckpoint(note, this.#keys.verifiers(), this.origin);
    if (cp.size > this.#store.size) {
      throw new LogRollbackDetected(`the log holds ${this.#store.size} entries but a checkpoint of size ${cp.size} was ${where}: entries were removed or the directory was rolled back`);
    }
    if (!hashEquals(this.#store.root(cp.size), cp.root)) {
      throw new LogRollbackDetected(`the stored entries do not hash to the checkpoint of size ${cp.size} ${where}: the log was rewritten`);
    }
  }

  #anchorRecord(note: string, size: number, root: Buffer): AnchoredCheckpoint {
    return { size, rootHash: root.toString('base64'), noteHash: noteHash(note), note };
  }

  /** Anchor and witnesses, asynchronously (start and openOn). */
  async #verifyHistory(): Promise<void> {
    const advance = this.#checkAnchored(this.#anchor ? await this.#anchor.latest() : null);
    for (const w of this.#witnesses?.witnesses ?? []) {
      if (!w.latest) continue;
      let note: string | null;
      try { note = await w.latest(this.origin); } catch { continue; /* unreachable now: publishing will need its quorum */ }
      if (note === null) continue;
      this.#checkExtends(note, `cosigned by witness ${w.name}`);
      rememberWitnessSize(w, openCheckpoint(note, this.#keys.verifiers(), this.origin).size);
    }
    if (advance && this.#anchor) await this.#anchor.advance(advance);
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
    const { keys, pseudonyms } = await TransparencyLog.#openKeys(options, options.keyDir, options.pseudonymKeyDir);
    try {
      await storage.attach?.(storageParsers(keys, origin));
      const log = new TransparencyLog(options.keyDir, origin, storage, keys, pseudonyms, options, options.anchor ?? null);
      try {
        await log.#verifyHistory();
      } catch (e) {
        log.#closed = true;
        throw e;
      }
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
          const err = e instanceof AuditError ? e : new LogUnavailable('audit log write failed', { cause: e });
          this.#fault = err.detail;
          for (const reject of rejects) reject(err);
          continue;
        }
        if (this.#fault === 'AUDIT_UNAVAILABLE') this.#fault = null;
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
    // The interval counts from when this checkpoint's size was taken, so the time spent
    // making it durable does not push the next one back.
    const at = Date.now();
    const note = await this.#publishable(signNote(formatCheckpoint({ origin: this.origin, size, root, extensions: [] }), [this.#keys.signer]), size, root);
    // Another node's newer checkpoint may have been adopted (refresh) while this one was
    // being stored: never move back to a smaller tree.
    if (!this.#last || this.#last.size <= size) this.#last = { size, root, note, at };
    return note;
  }

  /**
   * Cosigns a freshly signed note with the witness quorum (if any), stores it on disk and
   * in the anchor, in that order: a checkpoint is published only once it is cosigned and
   * anchored. Any failure is coded (503) and recorded for health() until the next success.
   */
  async #publishable(signed: string, size: number, root: Buffer): Promise<string> {
    try {
      const note = this.#witnesses
        ? await cosignCheckpoint(signed, this.#keys.verifiers(), (a, b) => consistencyProof(this.#store, a, b), this.#witnesses)
        : signed;
      try {
        await this.#store.saveCheckpointAsync(note);
        if (this.#anchor) {
          const record = this.#anchorRecord(note, size, root);
          await (this.#anchor.advanceOffThread ? this.#anchor.advanceOffThread(record) : this.#anchor.advance(record));
        }
      } catch (e) {
        if (e instanceof AuditError) throw e;
        throw new LogUnavailable('cannot store the signed checkpoint (audit storage failing: check the audit directory, disk space and permissions)', { cause: e });
      }
      this.#fault = null;
      return note;
    } catch (e) {
      this.#fault = e instanceof AuditError ? e.detail : 'AUDIT_UNAVAILABLE';
      throw e;
    }
  }

  /**
   * Readiness for a /ready route: false while the log cannot record or publish (storage
   * failing, witness quorum lost, closed, or halted on an inconsistency), with the code.
   * It turns true again by itself once the next append or checkpoint succeeds.
   */
  health(): LogHealth {
    if (this.#closed) return { ready: false, reason: 'AUDIT_UNAVAILABLE: the log is closed' };
    if (this.#halted) return { ready: false, reason: `${(this.#halted as AuditError).detail ?? 'AUDIT_CHECKPOINT_INCONSISTENT'}: the log halted; it needs an operator` };
    if (this.#fault) return { ready: false, reason: `${this.#fault}: the last write or checkpoint failed; retrying on the next request` };
    return { ready: true, reason: null };
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

  /**
   * entry + inclusion proof + signed checkpoint, verifiable offline with the log's public
   * key. With `owner`, an entry whose principal is not that principal is answered exactly
   * like one that does not exist (EntryNotFound), before any checkpoint is signed for it.
   */
  async receipt(auditId: string, options: { readonly owner?: string } = {}): Promise<Receipt> {
    if (typeof auditId !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(auditId)) throw new EntryNotFound(String(auditId));
    const index = Number(auditId);
    if (index >= this.#store.size) await this.#drain();
    if (index >= this.#store.size) await this.refresh();
    if (index >= this.#store.size) throw new EntryNotFound(auditId);
    const bytes = this.#store.readEntryAsync ? await this.#store.readEntryAsync(index) : this.#store.readEntry(index);
    const leaf = JSON.parse(bytes.toString('utf8')) as Leaf;
    if (options.owner !== undefined) {
      const principal = leaf.entry.principal;
      if (principal === null || !this.pseudonymsOf(options.owner).includes(principal)) throw new EntryNotFound(auditId);
    }
    const note = this.#last && this.#last.size > index ? this.#last.note : await this.checkpoint();
    const size = parseCheckpoint(parseNote(note).text).size;
    const p = this.inclusionProof(index, size);
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
      const note = await this.#publishable(signNote(parseNote(this.#last.note).text, [this.#keys.signer]), this.#last.size, this.#last.root);
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
    const owned = filter.owner !== undefined ? new Set(this.pseudonymsOf(filter.owner)) : null;
    if (owned && owned.size === 0) return;
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
      if (owned && (e.principal === null || !owned.has(e.principal))) continue;
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
      // Entries are durable; without the witness quorum the next start signs their checkpoint.
      if (!this.#halted && this.#store.size > (this.#last?.size ?? 0)) {
        await this.#signAndStore().catch((e: unknown) => { if (!(e instanceof AuditError && e.detail === 'AUDIT_WITNESS_QUORUM')) throw e; });
      }
    } finally {
      await this.#store.close();
      if (this.#ownsAnchor) await this.#anchor?.close?.();
      this.#keys.close();
      this.#pseudonyms.close();
    }
  }
}
