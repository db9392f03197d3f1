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
 *   checkpoint.note latest signed checkpoint, replaced atomically after the derived files
 *                   are fsynced: derived data is trusted up to its size, the rest is
 *                   recomputed from entries.dat on open.
 *
 * Crash safety: a batch is acknowledged only after fdatasync of entries.dat (group
 * commit). On open, a torn trailing record (short header, short payload, or CRC mismatch
 * in the last record) is truncated; damage followed by valid records is corruption and
 * refuses to open. Every record carries its index, so a reused index or a gap is caught.
 */
import { unlinkSync, closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, writeSync, existsSync, read as fsRead } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { promisify } from 'node:util';
import { LogUnavailable, StoreCorrupt } from './errors.ts';
import { HASH_SIZE, EMPTY_ROOT, hashChildren, hashEquals, hashLeaf, type SubtreeSource } from './merkle.ts';
import { writeFileAtomicSync } from './fsutil.ts';

const HEADER = 8;
const MAX_RECORD = 16 * 1024 * 1024;
const fdatasyncAsync = promisify(fdatasync);
const readAsync = promisify(fsRead);

export interface StoredEntry { readonly index: number; readonly bytes: Buffer }

export interface LogStorage extends SubtreeSource {
  /** Number of durable entries. */
  readonly size: number;
  /** Appends payloads durably; payload i must carry index size+i. */
  appendBatch(payloads: readonly Buffer[]): Promise<void>;
  readEntry(index: number): Buffer;
  leafHash(index: number): Buffer;
  entries(start: number, end: number): AsyncGenerator<StoredEntry>;
  root(size: number): Buffer;
  latestCheckpoint(): string | null;
  /** Makes derived files durable, then atomically stores the checkpoint note. */
  saveCheckpoint(note: string): void;
  diskUsage(): number;
  close(): Promise<void>;
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

  private constructor(dir: string) {
    this.dir = dir;
    this.#entriesFd = openSync(join(dir, 'entries.dat'), existsSync(join(dir, 'entries.dat')) ? 'r+' : 'w+');
    this.#offsetsFd = openSync(join(dir, 'offsets.dat'), existsSync(join(dir, 'offsets.dat')) ? 'r+' : 'w+');
  }

  static open(dir: string, options: FileStoreOptions): FileStore {
    mkdirSync(dir, { recursive: true });
    acquireLock(join(dir, 'LOCK'));
    const store = new FileStore(dir);
    try {
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
    const cpPath = join(this.dir, 'checkpoint.note');
    let cpSize = 0;
    let cpRoot: Buffer | null = null;
    if (existsSync(cpPath)) {
      this.#checkpoint = readFileSync(cpPath, 'utf8');
      const { size, root } = options.checkpointSizeRoot(this.#checkpoint);
      cpSize = size;
      cpRoot = root;
    }
    // Derived files are trusted up to the checkpoint size when they are long enough.
    let trusted = cpSize;
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
    const offsets: Buffer[] = [];
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
      const ob = Buffer.alloc(8);
      ob.writeBigUInt64BE(BigInt(offset));
      offsets.push(ob);
      pending.push(payload);
      offset += HEADER + len;
      if (pending.length >= 4096) { this.#applyDerived(pending.splice(0), offsets.splice(0)); this.#end = offset; }
    }
    this.#applyDerived(pending, offsets);
    this.#end = offset;
    if (cpSize > this.#size) throw new StoreCorrupt(`entries.dat holds ${this.#size} entries but the last signed checkpoint covers ${cpSize}`);
    if (cpRoot && !hashEquals(this.root(cpSize), cpRoot)) throw new StoreCorrupt(`stored tree does not match the last signed checkpoint (size ${cpSize})`);
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
    const b = Buffer.allocUnsafe(HASH_SIZE);
    if (readSync(this.#levelFd(level), b, 0, HASH_SIZE, index * HASH_SIZE) !== HASH_SIZE) {
      throw new StoreCorrupt(`tree-${level}: missing node ${index}`);
    }
    return b;
  }

  /** Computes leaf hashes and completed subtree nodes for payloads, writes derived files, advances size. */
  #applyDerived(payloads: readonly Buffer[], offsets: readonly Buffer[]): void {
    if (payloads.length === 0) return;
    const { levels, range } = this.#extend(payloads);
    writeSync(this.#offsetsFd, Buffer.concat(offsets), 0, offsets.length * 8, this.#size * 8);
    this.#writeLevels(levels);
    this.#range = range;
    this.#size += payloads.length;
  }

  #extend(payloads: readonly Buffer[]): { levels: Buffer[][]; range: { level: number; hash: Buffer }[] } {
    const range = this.#range.slice();
    const levels: Buffer[][] = [];
    for (const payload of payloads) {
      let node = { level: 0, hash: hashLeaf(payload) };
      (levels[0] ??= []).push(node.hash);
      while (range.length > 0 && range[range.length - 1]!.level === node.level) {
        const left = range.pop()!;
        node = { level: node.level + 1, hash: hashChildren(left.hash, node.hash) };
        (levels[node.level] ??= []).push(node.hash);
      }
      range.push(node);
    }
    return { levels, range };
  }

  #writeLevels(levels: Buffer[][]): void {
    for (let level = 0; level < levels.length; level++) {
      const nodes = levels[level];
      if (!nodes || nodes.length === 0) continue;
      const first = Math.floor(this.#size / 2 ** level);
      const buf = Buffer.concat(nodes);
      writeSync(this.#levelFd(level), buf, 0, buf.length, first * HASH_SIZE);
    }
  }

  async appendBatch(payloads: readonly Buffer[]): Promise<void> {
    if (this.#closed) throw new LogUnavailable('audit log is closed');
    if (this.#broken) throw new LogUnavailable('audit log storage failed earlier; restart to recover', { cause: this.#broken });
    if (this.#writing) throw new LogUnavailable('concurrent appendBatch calls are not allowed');
    if (payloads.length === 0) return;
    this.#writing = true;
    const start = this.#end;
    try {
      let total = 0;
      for (const p of payloads) total += HEADER + p.length;
      const buf = Buffer.allocUnsafe(total);
      const offsets: Buffer[] = [];
      let pos = 0;
      for (const p of payloads) {
        if (p.length === 0 || p.length > MAX_RECORD) throw new LogUnavailable('audit entry size out of range');
        const ob = Buffer.alloc(8);
        ob.writeBigUInt64BE(BigInt(start + pos));
        offsets.push(ob);
        buf.writeUInt32BE(p.length, pos);
        buf.writeUInt32BE(crc32(p), pos + 4);
        p.copy(buf, pos + HEADER);
        pos += HEADER + p.length;
      }
      try {
        let written = 0;
        while (written < total) written += writeSync(this.#entriesFd, buf, written, total - written, start + written);
        await fdatasyncAsync(this.#entriesFd);
      } catch (e) {
        // The batch's fate on disk is unknown: cut it off, or stop accepting writes.
        try { ftruncateSync(this.#entriesFd, start); fdatasyncSync(this.#entriesFd); } catch (e2) { this.#broken = e2 as Error; }
        throw new LogUnavailable('audit log write failed', { cause: e });
      }
      this.#end = start + total;
      try {
        this.#applyDerived(payloads, offsets);
      } catch (e) {
        // Entries are durable; derived files will be rebuilt on the next open.
        this.#broken = e as Error;
        throw new LogUnavailable('audit log index update failed', { cause: e });
      }
    } finally {
      this.#writing = false;
    }
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
    fdatasyncSync(this.#offsetsFd);
    for (const fd of this.#levelFds) fdatasyncSync(fd);
    writeFileAtomicSync(join(this.dir, 'checkpoint.note'), note);
    this.#checkpoint = note;
  }

  diskUsage(): number {
    let total = this.#end + this.#size * 8;
    for (const fd of this.#levelFds) total += fstatSync(fd).size;
    return total;
  }

  #closeFds(): void {
    releaseLock(join(this.dir, 'LOCK'));
    for (const fd of [this.#entriesFd, this.#offsetsFd, ...this.#levelFds]) { try { closeSync(fd); } catch { /* already closed */ } }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeFds();
  }
}

/** One process per log directory: a pid lock file, taken over when its owner is dead. */
function acquireLock(path: string): void {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const pid = Number(readFileSync(path, 'utf8'));
  if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid) {
    let alive = true;
    try { process.kill(pid, 0); } catch (e) { alive = (e as NodeJS.ErrnoException).code === 'EPERM'; }
    if (alive) throw new LogUnavailable(`audit log directory is in use by process ${pid}`);
  } else if (pid === process.pid) {
    throw new LogUnavailable('audit log directory is already open in this process');
  }
  writeFileAtomicSync(path, String(process.pid));
}

function releaseLock(path: string): void {
  try { if (readFileSync(path, 'utf8') === String(process.pid)) unlinkSync(path); } catch { /* already gone */ }
}
