/**
 * Append-only, file-backed storage for the transparency log (the embedded default).
 *
 * The narrow interface `LogStorage` is all the log needs (Trillian/Tessera style): append
 * a batch durably, read entries, read subtree hashes, keep the latest signed checkpoint.
 * A PostgreSQL driver can implement the same interface.
 *
 * Layout of the directory:
 *   entries.dat     records: u32 length || u32 CRC-32 || payload (the RFC 8785 leaf bytes).
 *                   The only file fsynced per batch: it is the source of truth.
 *   offsets.dat     u64 byte offset of each record (derived; rebuilt from entries.dat)
 *   tree-LL.dat     RFC 6962 hashes of complete subtrees of height LL, 32 bytes each
 *                   (derived), so any proof at 10^6 entries reads O(log n) stored nodes.
 *   checkpoint.note latest signed checkpoint, replaced atomically (after the derived files
 *                   are written). On open the entries it covers are rehashed from
 *                   entries.dat and checked against the derived files up to its size; what
 *                   differs, is missing or lies beyond is recomputed from entries.dat.
 *
 * Crash safety: a batch is acknowledged only after fdatasync of entries.dat (group
 * commit). Leaf/node hashing runs while that fdatasync is on the thread pool; size and
 * compact range advance only after it returns. The derived data is kept in memory (reads
 * look there first) and written to its files only before a checkpoint, at close, or past
 * 4 MiB pending (one write per file then, instead of one per file per batch: two
 * system calls per group commit instead of four to six; issue 15). They were never synced per
 * batch, so a crash loses nothing it did not lose before: past the checkpoint they are
 * recomputed from entries.dat on open. On open, a torn trailing record (short header, short payload, or CRC mismatch
 * in the last record) is truncated; damage followed by valid records is corruption and
 * refuses to open. Every record carries its index, so a reused index or a gap is caught.
 */
import { closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, writeSync, existsSync, read as fsRead } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { promisify } from 'node:util';
import { LogUnavailable, StoreCorrupt } from './errors.ts';
import { HASH_SIZE, EMPTY_ROOT, hashChildren, hashEquals, hashLeaf, sha256, type SubtreeSource } from './merkle.ts';
import { writeFileAtomic, writeFileAtomicSync } from './fsutil.ts';
import { acquireDirLock, type ProcessLock } from './process-lock.ts';

const HEADER = 8;
/** Derived bytes kept in memory before they are written anyway (≈ 60,000 entries' worth). */
const PENDING_DERIVED_LIMIT = 4 * 1024 * 1024;
const MAX_RECORD = 16 * 1024 * 1024;
const fdatasyncAsync = promisify(fdatasync);
const readAsync = promisify(fsRead);

export interface StoredEntry { readonly index: number; readonly bytes: Buffer }

export interface LogStorage extends SubtreeSource {
  /** Number of durable entries. */
  readonly size: number;
  /**
   * Appends payloads durably; payload i must carry index size+i. A string payload is
   * stored as its UTF-8 bytes (saves a Buffer per entry).
   */
  appendBatch(payloads: readonly (Buffer | string)[]): Promise<void>;
  readEntry(index: number): Buffer;
  leafHash(index: number): Buffer;
  entries(start: number, end: number): AsyncGenerator<StoredEntry>;
  root(size: number): Buffer;
  latestCheckpoint(): string | null;
  /** Makes derived files durable, then atomically stores the checkpoint note. */
  saveCheckpoint(note: string): void;
  /** Atomically and durably stores the checkpoint note without blocking the event loop (derived files: see FileStore). */
  saveCheckpointAsync(note: string): Promise<void>;
  diskUsage(): number;
  close(): Promise<void>;

  // ---- Storage shared by several writers (e.g. PostgreSQL behind several nodes) ----------
  // A storage that other processes append to implements these; the file store does not.

  /**
   * Binds the leaf and checkpoint parsers and loads the current state (entries appended by
   * any writer, the latest stored checkpoint, checked against the entries). Called once by
   * TransparencyLog.openOn before anything else.
   */
  attach?(options: FileStoreOptions): Promise<void>;
  /**
   * Catches up with entries and the checkpoint other writers stored since the last call, so
   * the synchronous reads (size, root, leafHash, subtreeHash) cover them.
   */
  refresh?(): Promise<void>;
  /**
   * Appends a batch at the next free index of the shared log, one writer at a time: `build`
   * receives that index (every payload carries its own index) and returns the payloads.
   * Resolves with the index of the first payload once the batch is durable.
   */
  appendSequenced?(build: (base: number) => readonly (Buffer | string)[]): Promise<number>;
  /** Reads one entry asynchronously (storage whose readEntry only serves a cache). */
  readEntryAsync?(index: number): Promise<Buffer>;
}

/** Reads the index a leaf payload claims, without a full parse when possible. */
export type IndexOfPayload = (payload: Buffer) => number;

export interface FileStoreOptions {
  /** Returns the index recorded in a payload (throws if the payload is not a valid leaf). */
  readonly indexOf: IndexOfPayload;
  /** Parses a checkpoint note's size and root (no signature check: the log does that). */
  readonly checkpointSizeRoot: (note: string) => { size: number; root: Buffer };
}

export class FileStore implements LogStorage {
  readonly dir: string;
  #entriesFd: number;
  #offsetsFd: number;
  #levelFds: number[] = [];
  #size = 0;
  #end = 0;
  /** Compact range: roots of the complete subtrees of the current tree, largest first. */
  #range: { level: number; hash: Buffer }[] = [];
  #checkpoint: string | null = null;
  #broken: Error | null = null;
  #closed = false;
  #writing = false;
  /** Derived data not yet written, in order (file: offsets = -1, tree levels = level; byte position). */
  #pendingDerived: { file: number; at: number; buf: Buffer }[] = [];
  #pendingBytes = 0;
  /** Batch encoding buffer, reused across batches (appendBatch calls never overlap). */
  #batchBuf: Buffer = Buffer.allocUnsafe(1 << 20);

  readonly #lock: ProcessLock;
  #options: FileStoreOptions | null = null;

  private constructor(dir: string, lock: ProcessLock) {
    this.dir = dir;
    this.#lock = lock;
    this.#entriesFd = openSync(join(dir, 'entries.dat'), existsSync(join(dir, 'entries.dat')) ? 'r+' : 'w+');
    this.#offsetsFd = openSync(join(dir, 'offsets.dat'), existsSync(join(dir, 'offsets.dat')) ? 'r+' : 'w+');
  }

  static open(dir: string, options: FileStoreOptions): FileStore {
    mkdirSync(dir, { recursive: true });
    const lock = acquireDirLock(dir);
    let store: FileStore;
    try {
      store = new FileStore(dir, lock);
    } catch (e) {
      lock.release();
      throw e;
    }
    try {
      store.#options = options;
      store.#recover(options);
    } catch (e) {
      store.#closeFds();
      throw e;
    }
    return store;
  }

  get size(): number { return this.#size; }

  #levelFd(level: number): number {
    while (this.#levelFds.length <= level) {
      const p = join(this.dir, `tree-${String(this.#levelFds.length).padStart(2, '0')}.dat`);
      this.#levelFds.push(openSync(p, existsSync(p) ? 'r+' : 'w+'));
    }
    return this.#levelFds[level]!;
  }

  #recover(options: FileStoreOptions): void {
    this.#pendingDerived = [];
    this.#pendingBytes = 0;
    const cpPath = join(this.dir, 'checkpoint.note');
    let cpSize = 0;
    let cpRoot: Buffer | null = null;
    if (existsSync(cpPath)) {
      this.#checkpoint = readFileSync(cpPath, 'utf8');
      const { size, root } = options.checkpointSizeRoot(this.#checkpoint);
      cpSize = size;
      cpRoot = root;
    }
    // The entries the checkpoint covers must hash to its root: an edited byte or swapped
    // records are refused here, not served. Derived files that disagree are rebuilt.
    let trusted = cpSize;
    if (cpRoot && cpSize > 0 && !this.#verifyPrefix(cpSize, cpRoot)) trusted = 0;
    // Derived files are trusted up to the checkpoint size when they are long enough.
    if (fstatSync(this.#offsetsFd).size < trusted * 8) trusted = 0;
    for (let level = 0; 2 ** level <= trusted; level++) {
      if (fstatSync(this.#levelFd(level)).size < Math.floor(trusted / 2 ** level) * HASH_SIZE) { trusted = 0; break; }
    }
    ftruncateSync(this.#offsetsFd, trusted * 8);
    for (let level = 0; ; level++) {
      const p = join(this.dir, `tree-${String(level).padStart(2, '0')}.dat`);
      if (level >= this.#levelFds.length && !existsSync(p)) break;
      ftruncateSync(this.#levelFd(level), Math.floor(trusted / 2 ** level) * HASH_SIZE);
    }
    this.#size = trusted;
    this.#end = trusted === 0 ? 0 : this.#offsetOf(trusted - 1) + HEADER + this.#recordLength(this.#offsetOf(trusted - 1));
    this.#range = [];
    let pos = 0;
    for (let level = 52; level >= 0; level--) {
      const span = 2 ** level;
      if (pos + span <= trusted) {
        this.#range.push({ level, hash: this.#readNode(level, pos / span) });
        pos += span;
      }
    }
    // Replay the records after the trusted prefix.
    const fileSize = fstatSync(this.#entriesFd).size;
    let offset = this.#end;
    const header = Buffer.alloc(HEADER);
    const offsets: number[] = [];
    const pending: Buffer[] = [];
    while (offset < fileSize) {
      const remaining = fileSize - offset;
      const torn = (why: string) => { this.#truncateTail(offset, why); };
      if (remaining < HEADER) { torn('short header'); break; }
      readSync(this.#entriesFd, header, 0, HEADER, offset);
      const len = header.readUInt32BE(0);
      if (len === 0 || len > MAX_RECORD || HEADER + len > remaining) {
        if (len > 0 && len <= MAX_RECORD && HEADER + len > remaining) { torn('short payload'); break; }
        if (this.#allZero(offset, remaining)) { torn('zero-filled tail'); break; }
        if (HEADER + len > remaining) { torn('record length beyond end of file'); break; }
        throw new StoreCorrupt(`entries.dat: invalid record length at byte ${offset}`);
      }
      const payload = Buffer.alloc(len);
      readSync(this.#entriesFd, payload, 0, len, offset + HEADER);
      if (crc32(payload) !== header.readUInt32BE(4)) {
        if (HEADER + len === remaining) { torn('checksum mismatch in the last record'); break; }
        throw new StoreCorrupt(`entries.dat: checksum mismatch in entry ${this.#size + pending.length} at byte ${offset}, followed by more records`);
      }
      const expected = this.#size + pending.length;
      let claimed: number;
      try { claimed = options.indexOf(payload); } catch { throw new StoreCorrupt(`entries.dat: entry ${expected} is not a valid leaf`); }
      if (claimed !== expected) throw new StoreCorrupt(`entries.dat: record at position ${expected} claims index ${claimed}`);
      offsets.push(offset);
      pending.push(payload);
      offset += HEADER + len;
      if (pending.length >= 4096) { this.#applyRecovered(pending.splice(0), offsets.splice(0)); this.#end = offset; }
    }
    this.#applyRecovered(pending, offsets);
    this.#end = offset;
    if (cpSize > this.#size) throw new StoreCorrupt(`entries.dat holds ${this.#size} entries but the last signed checkpoint covers ${cpSize}`);
    if (cpRoot && !hashEquals(this.root(cpSize), cpRoot)) throw new StoreCorrupt(`stored tree does not match the last signed checkpoint (size ${cpSize})`);
    this.#flushDerived();
  }

  /**
   * Streams the first `size` records of entries.dat, recomputes every leaf and node hash
   * and the root, and compares them with the checkpoint root and with the stored derived
   * files (offsets.dat, tree-LL.dat). O(size) sequential reads and one hash per node: about
   * about 5 s per million entries. Throws StoreCorrupt naming the first entry that does not
   * match the signed log; returns false when only derived files are wrong (rebuilt from
   * entries.dat by the caller), true when everything matches.
   */
  #verifyPrefix(size: number, root: Buffer): boolean {
    const fileSize = fstatSync(this.#entriesFd).size;
    let derivedOk = true;
    let firstLeafMismatch = -1;
    let range: { level: number; hash: Buffer }[] = [];
    let done = 0;
    let offset = 0;
    let chunk = Buffer.alloc(0);
    let chunkAt = 0;
    const header = (at: number, n: number): Buffer => {
      if (at < chunkAt || at + n > chunkAt + chunk.length) {
        const want = Math.max(n, 1 << 20);
        chunk = Buffer.allocUnsafe(Math.min(want, Math.max(n, fileSize - at)));
        chunkAt = at;
        const got = chunk.length === 0 ? 0 : readSync(this.#entriesFd, chunk, 0, chunk.length, at);
        if (got < n) throw new StoreCorrupt(`entries.dat ends before entry ${done}, but the last signed checkpoint covers ${size} entries`);
      }
      return chunk.subarray(at - chunkAt, at - chunkAt + n);
    };
    const BATCH = 4096;
    while (done < size) {
      const count = Math.min(BATCH, size - done);
      const leafHashes = Buffer.allocUnsafe(count * HASH_SIZE);
      const offsets = Buffer.allocUnsafe(count * 8);
      for (let i = 0; i < count; i++) {
        const index = done + i;
        const h = header(offset, HEADER);
        const len = h.readUInt32BE(0);
        const crc = h.readUInt32BE(4);
        if (len === 0 || len > MAX_RECORD || offset + HEADER + len > fileSize) throw new StoreCorrupt(`entries.dat: entry ${index} has an invalid record length: the file was damaged or edited`);
        const payload = header(offset + HEADER, len);
        if (crc32(payload) !== crc) throw new StoreCorrupt(`entries.dat: entry ${index} fails its checksum: the file was damaged or edited`);
        hashLeaf(payload).copy(leafHashes, i * HASH_SIZE);
        writeOffset(offsets, i * 8, offset);
        offset += HEADER + len;
      }
      const ext = extendTree(done, range, leafHashes, count);
      if (derivedOk || firstLeafMismatch < 0) {
        for (let level = 0; level < ext.levels.length; level++) {
          const mine = ext.levels[level]!;
          const stored = Buffer.alloc(mine.length);
          const at = Math.floor(done / 2 ** level) * HASH_SIZE;
          const got = mine.length === 0 ? 0 : readSync(this.#levelFd(level), stored, 0, stored.length, at);
          if (got === mine.length && stored.equals(mine)) continue;
          derivedOk = false;
          if (level === 0 && firstLeafMismatch < 0) {
            for (let i = 0; i < count; i++) {
              const a = mine.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
              if (got < (i + 1) * HASH_SIZE) break;
              if (!a.equals(stored.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE))) { firstLeafMismatch = done + i; break; }
            }
          }
        }
        const storedOffsets = Buffer.alloc(offsets.length);
        if (readSync(this.#offsetsFd, storedOffsets, 0, offsets.length, done * 8) !== offsets.length || !storedOffsets.equals(offsets)) derivedOk = false;
      }
      range = ext.range;
      done += count;
    }
    if (!hashEquals(rootOfRange(range), root)) {
      if (firstLeafMismatch >= 0) throw new StoreCorrupt(`entries.dat: entry ${firstLeafMismatch} does not match the signed log (its hash differs from the stored leaf hash and the entries do not hash to the checkpoint root of size ${size}): the file was edited or records were swapped`);
      throw new StoreCorrupt(`entries.dat does not hash to the last signed checkpoint (size ${size}) and the stored tree was rewritten to match: the log was edited`);
    }
    return derivedOk;
  }

  #applyRecovered(payloads: readonly Buffer[], offsets: readonly number[]): void {
    if (payloads.length === 0) return;
    const leafHashes = Buffer.allocUnsafe(payloads.length * HASH_SIZE);
    let prefixed = Buffer.allocUnsafe(4096);
    for (let i = 0; i < payloads.length; i++) {
      const p = payloads[i]!;
      if (prefixed.length < 1 + p.length) prefixed = Buffer.allocUnsafe(1 + p.length);
      prefixed[0] = 0x00;
      p.copy(prefixed, 1);
      sha256(prefixed.subarray(0, 1 + p.length)).copy(leafHashes, i * HASH_SIZE);
    }
    const offsetBuf = Buffer.allocUnsafe(offsets.length * 8);
    for (let i = 0; i < offsets.length; i++) writeOffset(offsetBuf, i * 8, offsets[i]!);
    this.#commitDerived(this.#extend(leafHashes, payloads.length), offsetBuf);
  }

  #allZero(offset: number, length: number): boolean {
    const b = Buffer.alloc(Math.min(length, 1 << 20));
    readSync(this.#entriesFd, b, 0, b.length, offset);
    return b.every((x) => x === 0) && length <= b.length;
  }

  #truncateTail(offset: number, _why: string): void {
    ftruncateSync(this.#entriesFd, offset);
    fdatasyncSync(this.#entriesFd);
  }

  #offsetOf(index: number): number {
    const b = this.#pendingRead(-1, index * 8, 8);
    if (b) return Number(b.readBigUInt64BE(0));
    return this.#offsetOnDisk(index);
  }

  #offsetOnDisk(index: number): number {
    const b = Buffer.alloc(8);
    if (readSync(this.#offsetsFd, b, 0, 8, index * 8) !== 8) throw new StoreCorrupt(`offsets.dat: missing offset for entry ${index}`);
    return Number(b.readBigUInt64BE(0));
  }

  #recordLength(offset: number): number {
    const b = Buffer.alloc(4);
    if (readSync(this.#entriesFd, b, 0, 4, offset) !== 4) throw new StoreCorrupt(`entries.dat: missing record at byte ${offset}`);
    return b.readUInt32BE(0);
  }

  #readNode(level: number, index: number): Buffer {
    const mem = this.#pendingRead(level, index * HASH_SIZE, HASH_SIZE);
    if (mem) return mem;
    const b = Buffer.allocUnsafe(HASH_SIZE);
    if (readSync(this.#levelFd(level), b, 0, HASH_SIZE, index * HASH_SIZE) !== HASH_SIZE) {
      throw new StoreCorrupt(`tree-${level}: missing node ${index}`);
    }
    return b;
  }

  /**
   * Completed subtree nodes for `count` new leaves whose hashes are packed in
   * `leafHashes`: per level, the new nodes packed in one buffer (level 0 = the leaf
   * hashes), and the compact range after them. Pure: nothing is written or committed.
   */
  #extend(leafHashes: Buffer, count: number): Extension {
    return extendTree(this.#size, this.#range, leafHashes, count);
  }

  /** Writes derived files for an extension (at the current size) and advances the size. */
  #commitDerived(ext: Extension, offsets: Buffer): void {
    this.#writeDerived(ext, offsets);
    this.#range = ext.range;
    this.#size += ext.count;
  }

  /**
   * Writes the offsets and tree nodes of an extension at the current size. Harmless before
   * the entries are durable: derived data beyond the size is never read, and on open it
   * is trusted only up to the last signed checkpoint.
   */
  #writeDerived(ext: Extension, offsets: Buffer): void {
    this.#pendingDerived.push({ file: -1, at: this.#size * 8, buf: offsets });
    this.#pendingBytes += offsets.length;
    for (let level = 0; level < ext.levels.length; level++) {
      const buf = ext.levels[level]!;
      if (buf.length === 0) continue;
      this.#pendingDerived.push({ file: level, at: Math.floor(this.#size / 2 ** level) * HASH_SIZE, buf });
      this.#pendingBytes += buf.length;
    }
  }

  /**
   * Writes the pending derived data: per file, each run of contiguous pieces in one write.
   * A failure leaves the files unsure: the store is marked broken, so the next append rereads
   * everything from entries.dat as open does.
   */
  #flushDerived(): void {
    const pending = this.#pendingDerived;
    if (pending.length === 0) return;
    const byFile = new Map<number, { at: number; buf: Buffer }[]>();
    for (const w of pending) {
      let runs = byFile.get(w.file);
      if (!runs) { runs = []; byFile.set(w.file, runs); }
      runs.push(w);
    }
    try {
      for (const [file, pieces] of byFile) {
        const fd = file === -1 ? this.#offsetsFd : this.#levelFd(file);
        let i = 0;
        while (i < pieces.length) {
          let j = i + 1;
          let end = pieces[i]!.at + pieces[i]!.buf.length;
          while (j < pieces.length && pieces[j]!.at === end) { end += pieces[j]!.buf.length; j++; }
          writeAll(fd, j - i === 1 ? pieces[i]!.buf : Buffer.concat(pieces.slice(i, j).map((p) => p.buf)), pieces[i]!.at);
          i = j;
        }
      }
    } catch (e) {
      // Kept in memory (reads still find it) until the next append rereads everything.
      this.#broken = e as Error;
      throw new LogUnavailable('audit log index update failed', { cause: e });
    }
    this.#pendingDerived = [];
    this.#pendingBytes = 0;
  }

  /** Derived bytes [at, at + length) of `file` not yet written, newest first, or null. */
  #pendingRead(file: number, at: number, length: number): Buffer | null {
    const pending = this.#pendingDerived;
    for (let i = pending.length - 1; i >= 0; i--) {
      const w = pending[i]!;
      if (w.file === file && w.at <= at && at + length <= w.at + w.buf.length) return Buffer.from(w.buf.subarray(at - w.at, at - w.at + length));
    }
    return null;
  }

  /** Room for `need` bytes in the batch buffer, keeping its first `keep` bytes. */
  #ensureBatch(need: number, keep: number): Buffer {
    if (need <= this.#batchBuf.length) return this.#batchBuf;
    const bigger = Buffer.allocUnsafe(Math.max(need, this.#batchBuf.length * 2));
    this.#batchBuf.copy(bigger, 0, 0, keep);
    this.#batchBuf = bigger;
    return bigger;
  }

  async appendBatch(payloads: readonly (Buffer | string)[]): Promise<void> {
    if (this.#closed) throw new LogUnavailable('audit log is closed');
    if (this.#broken) this.#reload();
    if (this.#writing) throw new LogUnavailable('concurrent appendBatch calls are not allowed');
    if (payloads.length === 0) return;
    this.#writing = true;
    const start = this.#end;
    const count = payloads.length;
    const pendingBefore = this.#pendingDerived.length;
    try {
      // Encode the whole batch into one buffer: u32 length || u32 CRC-32 || payload per record.
      const offsets = Buffer.allocUnsafe(count * 8);
      const starts = new Float64Array(count + 1);
      let buf: Buffer = this.#batchBuf;
      let pos = 0;
      for (let i = 0; i < count; i++) {
        const p = payloads[i]!;
        let len: number;
        if (typeof p === 'string') {
          if (buf.length - pos - HEADER < p.length * 3) buf = this.#ensureBatch(pos + HEADER + Buffer.byteLength(p, 'utf8'), pos);
          len = buf.write(p, pos + HEADER, 'utf8');
        } else {
          buf = this.#ensureBatch(pos + HEADER + p.length, pos);
          len = p.copy(buf, pos + HEADER);
        }
        if (len === 0 || len > MAX_RECORD) throw new LogUnavailable('audit entry size out of range');
        writeOffset(offsets, i * 8, start + pos);
        starts[i] = pos;
        buf.writeUInt32BE(len, pos);
        buf.writeUInt32BE(crc32(buf.subarray(pos + HEADER, pos + HEADER + len)), pos + 4);
        pos += HEADER + len;
      }
      const total = pos;
      starts[count] = total;
      let synced: Promise<void>;
      try {
        writeAll(this.#entriesFd, buf.subarray(0, total), start);
        synced = fdatasyncAsync(this.#entriesFd);
      } catch (e) {
        this.#abortBatch(start);
        throw new LogUnavailable('audit log write failed', { cause: e });
      }
      // While the fdatasync runs on the thread pool: hash the leaves and the new tree nodes
      // and write the derived files. Size and range move only once the batch is durable.
      let ext: Extension | null = null;
      let extError: unknown = null;
      try {
        ext = this.#extend(leafHashesInPlace(buf, starts, count), count);
        this.#writeDerived(ext, offsets);
      } catch (e) { extError = e; ext = null; }
      try {
        await synced;
      } catch (e) {
        // This batch's derived data was for entries that are not in the log.
        this.#pendingDerived.length = Math.min(this.#pendingDerived.length, pendingBefore);
        this.#abortBatch(start);
        throw new LogUnavailable('audit log write failed', { cause: e });
      }
      this.#end = start + total;
      try {
        if (!ext) throw extError;
        this.#range = ext.range;
        this.#size += ext.count;
        if (this.#pendingBytes >= PENDING_DERIVED_LIMIT) this.#flushDerived();
      } catch (e) {
        // Entries are durable; derived files will be rebuilt on the next open.
        this.#broken = e as Error;
        throw new LogUnavailable('audit log index update failed', { cause: e });
      }
    } finally {
      this.#writing = false;
    }
  }

  /**
   * After a failed write left the store unsure of its state: rereads it from disk exactly as
   * open does (verify the signed prefix, rebuild derived files, cut a torn tail), so the
   * log recovers without a restart once storage works again.
   */
  #reload(): void {
    try {
      this.#recover(this.#options!);
      this.#broken = null;
    } catch (e) {
      throw new LogUnavailable('audit storage is still failing (check the audit directory, disk space and permissions); the next write retries', { cause: e });
    }
  }

  /** The batch's fate on disk is unknown: cut it off, or stop accepting writes. */
  #abortBatch(start: number): void {
    try { ftruncateSync(this.#entriesFd, start); fdatasyncSync(this.#entriesFd); } catch (e2) { this.#broken = e2 as Error; }
  }

  readEntry(index: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.#size) throw new StoreCorrupt(`entry ${index} is outside the log`);
    const offset = this.#offsetOf(index);
    const len = this.#recordLength(offset);
    const b = Buffer.alloc(len);
    readSync(this.#entriesFd, b, 0, len, offset + HEADER);
    return b;
  }

  leafHash(index: number): Buffer {
    return this.#readNode(0, index);
  }

  subtreeHash(start: number, end: number): Buffer {
    const n = end - start;
    if (n <= 0 || end > this.#size) throw new StoreCorrupt(`subtree [${start}, ${end}) is outside the log of size ${this.#size}`);
    let level = 0;
    while (2 ** (level + 1) <= n) level++;
    if (2 ** level === n && start % n === 0) return this.#readNode(level, start / n);
    const k = 2 ** (2 ** level === n ? level - 1 : level);
    return hashChildren(this.subtreeHash(start, start + k), this.subtreeHash(start + k, end));
  }

  root(size: number): Buffer {
    if (size === 0) return EMPTY_ROOT;
    if (size === this.#size) {
      let h: Buffer | null = null;
      for (let i = this.#range.length - 1; i >= 0; i--) h = h ? hashChildren(this.#range[i]!.hash, h) : this.#range[i]!.hash;
      return h!;
    }
    return this.subtreeHash(0, size);
  }

  async *entries(start: number, end: number): AsyncGenerator<StoredEntry> {
    end = Math.min(end, this.#size);
    if (start >= end) return;
    let offset = this.#offsetOf(start);
    const limit = end === this.#size ? this.#end : this.#offsetOf(end);
    let chunk = Buffer.alloc(0);
    let index = start;
    while (index < end) {
      if (chunk.length < HEADER || chunk.length < HEADER + chunk.readUInt32BE(0)) {
        const want = Math.min(1 << 20, limit - offset);
        if (want <= 0) throw new StoreCorrupt(`entries.dat ends before entry ${index}`);
        const more = Buffer.allocUnsafe(Math.max(want, chunk.length >= HEADER ? HEADER + chunk.readUInt32BE(0) - chunk.length : 0));
        const { bytesRead } = await readAsync(this.#entriesFd, more, 0, more.length, offset);
        if (bytesRead === 0) throw new StoreCorrupt(`entries.dat ends before entry ${index}`);
        offset += bytesRead;
        chunk = chunk.length === 0 ? more.subarray(0, bytesRead) : Buffer.concat([chunk, more.subarray(0, bytesRead)]);
        continue;
      }
      const len = chunk.readUInt32BE(0);
      yield { index, bytes: chunk.subarray(HEADER, HEADER + len) };
      chunk = chunk.subarray(HEADER + len);
      index++;
    }
  }

  latestCheckpoint(): string | null { return this.#checkpoint; }

  saveCheckpoint(note: string): void {
    this.#flushDerived();
    fdatasyncSync(this.#offsetsFd);
    for (const fd of this.#levelFds) fdatasyncSync(fd);
    writeFileAtomicSync(join(this.dir, 'checkpoint.note'), note);
    this.#checkpoint = note;
  }

  /**
   * The note is replaced durably; the derived files are written but not synced. Their sync
   * bought nothing the open does not already do: on open every entry a checkpoint covers is
   * reread from entries.dat (synced per batch) and rehashed (#verifyPrefix), and derived
   * files that are short or differ are rebuilt from it. Under load the dozen fdatasyncs per
   * checkpoint, twice a second, each woke a thread-pool thread and cost the event loop its
   * CPU (issue 15). The synchronous saveCheckpoint (offline tools) still syncs them.
   */
  async saveCheckpointAsync(note: string): Promise<void> {
    this.#flushDerived();
    await writeFileAtomic(join(this.dir, 'checkpoint.note'), note);
    this.#checkpoint = note;
  }

  diskUsage(): number {
    let total = this.#end + this.#size * 8;
    for (const fd of this.#levelFds) total += fstatSync(fd).size;
    return total;
  }

  #closeFds(): void {
    for (const fd of [this.#entriesFd, this.#offsetsFd, ...this.#levelFds]) { try { closeSync(fd); } catch { /* already closed */ } }
    this.#lock.release();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try { if (!this.#broken) this.#flushDerived(); } catch { /* recomputed from entries.dat on the next open */ }
    this.#closeFds();
  }
}

interface Extension { readonly levels: Buffer[]; readonly range: { level: number; hash: Buffer }[]; readonly count: number }

/**
 * Completed subtree nodes for `count` new leaves (hashes packed in `leafHashes`) appended
 * to a tree of `size` leaves whose compact range is `range`: per level, the new nodes
 * packed in one buffer (level 0 = the leaf hashes; the first lands at index
 * floor(size / 2^level)), and the compact range after them. Pure.
 */
function extendTree(size: number, rangeBefore: readonly { level: number; hash: Buffer }[], leafHashes: Buffer, count: number): Extension {
  const range = rangeBefore.slice();
  const levels: Buffer[] = [leafHashes];
  for (let level = 1; 2 ** level <= size + count; level++) {
    const n = Math.floor((size + count) / 2 ** level) - Math.floor(size / 2 ** level);
    if (n === 0) break;
    levels.push(Buffer.allocUnsafe(n * HASH_SIZE));
  }
  const fill = new Array<number>(levels.length).fill(0);
  for (let i = 0; i < count; i++) {
    let level = 0;
    let hash: Buffer = leafHashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
    while (range.length > 0 && range[range.length - 1]!.level === level) {
      const left = range.pop()!;
      hash = hashChildren(left.hash, hash);
      level++;
      hash.copy(levels[level]!, fill[level]! * HASH_SIZE);
      fill[level]!++;
    }
    range.push({ level, hash });
  }
  return { levels, range, count };
}

function rootOfRange(range: readonly { hash: Buffer }[]): Buffer {
  let h: Buffer | null = null;
  for (let i = range.length - 1; i >= 0; i--) h = h ? hashChildren(range[i]!.hash, h) : range[i]!.hash;
  return h ?? EMPTY_ROOT;
}

function writeOffset(buf: Buffer, at: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(offset / 2 ** 32), at);
  buf.writeUInt32BE(offset % 2 ** 32, at + 4);
}

/**
 * Leaf hashes SHA-256(0x00 || payload) of the records encoded in `buf` (record i starts at
 * starts[i], the next at starts[i + 1]), packed. Taken in place: the byte before each
 * payload (the last CRC byte, already written to the file) is overwritten with 0x00.
 */
function leafHashesInPlace(buf: Buffer, starts: Float64Array, count: number): Buffer {
  const out = Buffer.allocUnsafe(count * HASH_SIZE);
  for (let i = 0; i < count; i++) {
    const at = starts[i]! + HEADER - 1;
    buf[at] = 0x00;
    sha256(buf.subarray(at, starts[i + 1]!)).copy(out, i * HASH_SIZE);
  }
  return out;
}

function writeAll(fd: number, buf: Buffer, position: number): void {
  let written = 0;
  while (written < buf.length) written += writeSync(fd, buf, written, buf.length - written, position + written);
}
