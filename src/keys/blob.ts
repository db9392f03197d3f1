/**
 * Encrypted blobs: AES-256-GCM (NIST SP 800-38D) in fixed-size chunks, the online
 * authenticated-encryption shape of the STREAM construction (Hoang, Reyhanitabar,
 * Rogaway, Vizár 2015), with node:crypto's AES-GCM as the primitive.
 *
 * Layout (all integers big-endian):
 *
 *     header  "GHEB" | u8 format version (1) | u8 algorithm (1 = AES-256-GCM)
 *             | u32 chunk size | 8-byte random nonce prefix | u16 key id length | key id (UTF-8)
 *     chunks  ciphertext (chunk size bytes; the last chunk 0..chunk size) ‖ 16-byte tag, repeated
 *
 * Chunk i uses nonce = prefix ‖ u32(i) and additional authenticated data
 * SHA-256(header) ‖ u64(i) ‖ u8(final). So
 *   - altering any byte (header included) fails that chunk's tag;
 *   - reordering chunks fails (the index is in the nonce and the AAD);
 *   - splicing chunks from another blob fails (its header hash and nonce prefix differ);
 *   - truncating at a chunk boundary fails (the new last chunk was sealed with final = 0);
 *   - an empty plaintext is one final chunk of 0 bytes, so "nothing" is authenticated too.
 * Decryption never hands out plaintext before every chunk verified: in-memory `open`
 * returns only at the end, `decryptFileTo` writes a temp file and renames it only after the
 * last tag checked out.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { open as openFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { CiphertextKeyMismatch, CiphertextMalformed, CiphertextTampered, KeyInputInvalid } from './errors.ts';

const MAGIC = Buffer.from('GHEB', 'latin1');
const FORMAT_VERSION = 1;
const ALG_AES_256_GCM = 1;
const TAG = 16;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
const MIN_CHUNK = 1024;
const MAX_CHUNK = 16 * 1024 * 1024;
const MAX_CHUNKS = 2 ** 32;

export interface BlobHeader {
  readonly formatVersion: number;
  readonly chunkSize: number;
  readonly keyId: string;
  readonly noncePrefix: Buffer;
  /** Header length in bytes. */
  readonly length: number;
  /** SHA-256 of the header bytes (bound into every chunk). */
  readonly digest: Buffer;
}

export interface SealOptions {
  readonly chunkSize?: number;
}

function buildHeader(keyId: string, chunkSize: number): { bytes: Buffer; header: BlobHeader } {
  if (typeof keyId !== 'string' || keyId.length === 0) throw new KeyInputInvalid('a blob needs the id of its data key');
  const id = Buffer.from(keyId, 'utf8');
  if (id.length > 1024) throw new KeyInputInvalid('key id too long');
  if (!Number.isSafeInteger(chunkSize) || chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw new KeyInputInvalid(`chunk size must be ${MIN_CHUNK}..${MAX_CHUNK} bytes`);
  const prefix = randomBytes(8);
  const fixed = Buffer.alloc(4 + 1 + 1 + 4 + 8 + 2);
  MAGIC.copy(fixed, 0);
  fixed.writeUInt8(FORMAT_VERSION, 4);
  fixed.writeUInt8(ALG_AES_256_GCM, 5);
  fixed.writeUInt32BE(chunkSize, 6);
  prefix.copy(fixed, 10);
  fixed.writeUInt16BE(id.length, 18);
  const bytes = Buffer.concat([fixed, id]);
  return { bytes, header: { formatVersion: FORMAT_VERSION, chunkSize, keyId, noncePrefix: prefix, length: bytes.length, digest: createHash('sha256').update(bytes).digest() } };
}

/** Parses a blob header from the first bytes of a blob. */
export function parseHeader(head: Buffer, name = 'blob'): BlobHeader {
  if (head.length < 20 || !head.subarray(0, 4).equals(MAGIC)) throw new CiphertextMalformed(name, 'not a Gatehouse encrypted blob (bad magic)');
  const version = head.readUInt8(4);
  if (version !== FORMAT_VERSION) throw new CiphertextMalformed(name, `unsupported blob format version ${version}`);
  if (head.readUInt8(5) !== ALG_AES_256_GCM) throw new CiphertextMalformed(name, 'unsupported cipher');
  const chunkSize = head.readUInt32BE(6);
  if (chunkSize < MIN_CHUNK || chunkSize > MAX_CHUNK) throw new CiphertextMalformed(name, 'chunk size out of range');
  const idLen = head.readUInt16BE(18);
  if (idLen === 0 || head.length < 20 + idLen) throw new CiphertextMalformed(name, 'header truncated');
  const bytes = head.subarray(0, 20 + idLen);
  return {
    formatVersion: version, chunkSize, keyId: bytes.subarray(20).toString('utf8'), noncePrefix: Buffer.from(bytes.subarray(10, 18)),
    length: bytes.length, digest: createHash('sha256').update(bytes).digest(),
  };
}

function nonce(h: BlobHeader, i: number): Buffer {
  const n = Buffer.alloc(12);
  h.noncePrefix.copy(n, 0);
  n.writeUInt32BE(i, 8);
  return n;
}

function aad(h: BlobHeader, i: number, final: boolean): Buffer {
  const a = Buffer.alloc(32 + 8 + 1);
  h.digest.copy(a, 0);
  a.writeBigUInt64BE(BigInt(i), 32);
  a.writeUInt8(final ? 1 : 0, 40);
  return a;
}

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== 32) throw new KeyInputInvalid('an AES-256 data key is a 32-byte Buffer');
}

function sealChunk(key: Buffer, h: BlobHeader, i: number, final: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce(h, i), { authTagLength: TAG });
  c.setAAD(aad(h, i, final));
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

function openChunk(key: Buffer, h: BlobHeader, i: number, final: boolean, record: Buffer, name: string): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, nonce(h, i), { authTagLength: TAG });
  d.setAAD(aad(h, i, final));
  d.setAuthTag(record.subarray(record.length - TAG));
  try {
    return Buffer.concat([d.update(record.subarray(0, record.length - TAG)), d.final()]);
  } catch {
    throw new CiphertextTampered(name, i, 'authentication failed (altered, truncated, reordered or spliced ciphertext, or the wrong key)');
  }
}

/** How the body of a blob of `bodyLength` bytes splits into chunk records. */
function layout(h: BlobHeader, bodyLength: number, name: string): { count: number; lastRecord: number } {
  const rec = h.chunkSize + TAG;
  if (bodyLength < TAG) throw new CiphertextTampered(name, null, 'truncated: no complete chunk after the header');
  const full = Math.floor(bodyLength / rec);
  const rest = bodyLength % rec;
  if (rest === 0) return { count: full, lastRecord: rec };
  if (rest < TAG) throw new CiphertextTampered(name, full, 'truncated inside a chunk');
  if (full + 1 > MAX_CHUNKS) throw new CiphertextMalformed(name, 'too many chunks');
  return { count: full + 1, lastRecord: rest };
}

/** Encrypts `plain` in memory under `key` (the data key named `keyId`). */
export function seal(plain: Buffer, key: Buffer, keyId: string, options: SealOptions = {}): Buffer {
  checkKey(key);
  const { bytes, header } = buildHeader(keyId, options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const cs = header.chunkSize;
  const count = Math.max(1, Math.ceil(plain.length / cs));
  if (count > MAX_CHUNKS) throw new KeyInputInvalid('plaintext too large for one blob');
  const parts: Buffer[] = [bytes];
  for (let i = 0; i < count; i++) parts.push(sealChunk(key, header, i, i === count - 1, plain.subarray(i * cs, Math.min(plain.length, (i + 1) * cs))));
  return Buffer.concat(parts);
}

/** Decrypts a whole blob in memory; throws (and returns nothing) if any chunk fails. */
export function open(blob: Buffer, key: Buffer, options: { name?: string; expectedKeyId?: string } = {}): Buffer {
  checkKey(key);
  const name = options.name ?? 'blob';
  const h = parseHeader(blob, name);
  if (options.expectedKeyId !== undefined && h.keyId !== options.expectedKeyId) throw new CiphertextKeyMismatch(name, h.keyId, options.expectedKeyId);
  const { count, lastRecord } = layout(h, blob.length - h.length, name);
  const rec = h.chunkSize + TAG;
  const out = Buffer.allocUnsafe(count * h.chunkSize);
  let written = 0;
  try {
    for (let i = 0; i < count; i++) {
      const start = h.length + i * rec;
      const final = i === count - 1;
      const p = openChunk(key, h, i, final, blob.subarray(start, start + (final ? lastRecord : rec)), name);
      if (!final && p.length !== h.chunkSize) throw new CiphertextTampered(name, i, 'short chunk');
      p.copy(out, written);
      written += p.length;
    }
  } catch (e) {
    out.fill(0);
    throw e;
  }
  return out.subarray(0, written);
}

/** The key id a blob (buffer or file) is encrypted under. */
export async function blobKeyId(source: Buffer | string): Promise<string> {
  if (Buffer.isBuffer(source)) return parseHeader(source).keyId;
  const fh = await openFile(source, 'r');
  try {
    const head = Buffer.alloc(20 + 1024);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return parseHeader(head.subarray(0, bytesRead), basename(source)).keyId;
  } finally {
    await fh.close();
  }
}

export interface EncryptedFileInfo {
  /** Plaintext bytes. */
  readonly bytes: number;
  readonly ciphertextBytes: number;
  /** hex SHA-256 of the ciphertext file. */
  readonly ciphertextSha256: string;
  /** hex SHA-256 of the plaintext. */
  readonly plaintextSha256: string;
}

async function readFully(fh: Awaited<ReturnType<typeof openFile>>, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

async function syncDir(dir: string): Promise<void> {
  const d = await openFile(dir, 'r');
  try { await d.sync(); } finally { await d.close(); }
}

/** Streams `src` into an encrypted blob at `dest` (temp file, fsync, rename; mode 0600). */
export async function encryptFile(src: string, dest: string, key: Buffer, keyId: string, options: SealOptions = {}): Promise<EncryptedFileInfo> {
  checkKey(key);
  const { bytes: headerBytes, header } = buildHeader(keyId, options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const cs = header.chunkSize;
  const tmp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
  const input = await openFile(src, 'r');
  let output: Awaited<ReturnType<typeof openFile>> | null = null;
  try {
    const size = (await input.stat()).size;
    const count = Math.max(1, Math.ceil(size / cs));
    if (count > MAX_CHUNKS) throw new KeyInputInvalid('file too large for one blob');
    output = await openFile(tmp, 'wx', 0o600);
    const ctHash = createHash('sha256').update(headerBytes);
    const ptHash = createHash('sha256');
    await output.write(headerBytes);
    let ctBytes = headerBytes.length;
    const buf = Buffer.allocUnsafe(cs);
    for (let i = 0; i < count; i++) {
      const want = Math.min(cs, size - i * cs);
      const got = await readFully(input, buf, want, i * cs);
      if (got !== want) throw new KeyInputInvalid(`${basename(src)} changed while it was being encrypted`);
      const plain = buf.subarray(0, got);
      ptHash.update(plain);
      const rec = sealChunk(key, header, i, i === count - 1, plain);
      ctHash.update(rec);
      await output.write(rec);
      ctBytes += rec.length;
    }
    buf.fill(0);
    await output.sync();
    await output.close();
    output = null;
    await rename(tmp, dest);
    await syncDir(dirname(dest));
    return { bytes: size, ciphertextBytes: ctBytes, ciphertextSha256: ctHash.digest('hex'), plaintextSha256: ptHash.digest('hex') };
  } catch (e) {
    if (output) await output.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  } finally {
    await input.close();
  }
}

type KeyArg = Buffer | ((keyId: string) => Buffer | Promise<Buffer>);

async function* verifiedChunks(src: string, key: KeyArg, expectedKeyId: string | undefined): AsyncGenerator<Buffer> {
  const name = basename(src);
  const fh = await openFile(src, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(size, 20 + 1024));
    await readFully(fh, head, head.length, 0);
    const h = parseHeader(head, name);
    if (expectedKeyId !== undefined && h.keyId !== expectedKeyId) throw new CiphertextKeyMismatch(name, h.keyId, expectedKeyId);
    const k = typeof key === 'function' ? await key(h.keyId) : key;
    checkKey(k);
    const { count, lastRecord } = layout(h, size - h.length, name);
    const rec = h.chunkSize + TAG;
    const buf = Buffer.allocUnsafe(rec);
    for (let i = 0; i < count; i++) {
      const final = i === count - 1;
      const len = final ? lastRecord : rec;
      const got = await readFully(fh, buf, len, h.length + i * rec);
      if (got !== len) throw new CiphertextTampered(name, i, 'truncated while reading');
      const p = openChunk(k, h, i, final, buf.subarray(0, len), name);
      if (!final && p.length !== h.chunkSize) throw new CiphertextTampered(name, i, 'short chunk');
      yield p;
    }
  } finally {
    await fh.close();
  }
}

/** Decrypts an encrypted file into memory; nothing is returned unless every chunk verified. */
export async function decryptFile(src: string, key: KeyArg, options: { expectedKeyId?: string } = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  try {
    for await (const p of verifiedChunks(src, key, options.expectedKeyId)) parts.push(p);
  } catch (e) {
    for (const p of parts) p.fill(0);
    throw e;
  }
  return Buffer.concat(parts);
}

/**
 * Decrypts `src` to `dest` (mode 0600): written to a temp file beside `dest` and renamed
 * only after the last chunk verified; on any failure the temp file is removed and `dest`
 * is untouched.
 */
export async function decryptFileTo(src: string, dest: string, key: KeyArg, options: { expectedKeyId?: string } = {}): Promise<{ bytes: number; plaintextSha256: string }> {
  const tmp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
  const out = await openFile(tmp, 'wx', 0o600);
  let closed = false;
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const p of verifiedChunks(src, key, options.expectedKeyId)) {
      hash.update(p);
      await out.write(p);
      bytes += p.length;
    }
    await out.sync();
    await out.close();
    closed = true;
    await rename(tmp, dest);
    return { bytes, plaintextSha256: hash.digest('hex') };
  } catch (e) {
    if (!closed) await out.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
