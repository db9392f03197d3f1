/**
 * Exact values of sensitive catalog columns, held only as keyed fingerprints.
 *
 * Each value is normalised for its column's tag (normalise.ts) and fingerprinted as
 * HMAC-SHA-256 (RFC 2104, FIPS 180-4) under a 256-bit key drawn from node:crypto's CSPRNG
 * when the index is created; the key never leaves the object and is wiped by `dispose()`.
 * The MAC input is `kind byte ‖ UTF-8(normalised value)`, so an e-mail and a name that
 * normalise to the same text stay distinct. Only the first 62 bits of the MAC are kept
 * (2 more bits hold the column classification), sorted in a BigUint64Array — 8 bytes per
 * value. A lookup of a value not in the index is a false positive with probability
 * N / 2^62 (N distinct values: 2.2·10⁻¹³ for a million).
 *
 * A keyed HMAC costs microseconds and the scanner checks every cell, so a lookup first
 * passes two cheap gates that never see the key: the set of normalised lengths present,
 * and a 2-hash Bloom filter (32 bits per value, false-positive rate ≈ 0.4 %) over a
 * randomly seeded 32-bit FNV-1a hash. Only cells passing both are MACed.
 *
 * What this does and does not protect: no clear value is retained after `add` returns
 * (buffers holding UTF-8 bytes are zeroed; JavaScript strings are immutable and are
 * released to the garbage collector, which is as far as a JS process can go). Someone
 * who can read this process's memory can read the key too, and can then test guesses —
 * low-entropy values such as SSNs can be enumerated. The fingerprints protect against
 * heap snapshots, logs and core dumps being *read*, not against a live attacker in-process.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { Classification } from '../../model/types.ts';
import type { CellValue } from '../../model/result.ts';
import { CLASSIFICATIONS } from '../../model/types.ts';
import { DlpIndexDisposed, DlpInputInvalid } from './errors.ts';
import { hmacSha256, hmacSha256Pads, wipePads, type HmacPads } from './hmac.ts';
import { NORMALISER_KINDS, normalise, normaliserForTag, type NormaliserKind } from './normalise.ts';

/** One catalog value streamed into the index, with the tag and classification of its column. */
export interface SensitiveValue {
  readonly value: CellValue;
  readonly tag: string;
  readonly classification: Classification;
}

export interface SensitiveValueIndexOptions {
  /** Normalised values shorter than this are not indexed (too common to identify anyone). Default 4. */
  readonly minLength?: number;
}

const KIND_CODE: Readonly<Record<NormaliserKind, number>> = { email: 1, phone: 2, digits: 3, text: 4 };
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const LENGTH_SLOTS = 257;

/** The ASCII characters String.prototype.trim removes. */
function isAsciiSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function firstDigit(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) return c;
  }
  return -1;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rank(c: Classification): bigint {
  return BigInt(CLASSIFICATIONS.indexOf(c));
}

/** Text form of a cell for fingerprinting: strings as they are, safe integers in decimal; anything else has none. */
function cellText(value: CellValue): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return null;
}

export class SensitiveValueIndex {
  readonly #minLength: number;
  readonly #pads: HmacPads;
  readonly #seed: number;
  /** Normalised lengths present (index min(length, 256)), per kind; null = no values of that kind. */
  readonly #lengths: Record<NormaliserKind, Uint8Array | null> = { email: null, phone: null, digits: null, text: null };
  /** Pending entries: (fingerprint << 2 | classification rank) and the cheap hash, until sealed. */
  #entries = new BigUint64Array(1024);
  #cheap = new Uint32Array(1024);
  #count = 0;
  #sorted = new BigUint64Array(0);
  #bloom = new Uint32Array(2);
  #bloomMask = 63;
  #dirty = false;
  #disposed = false;

  /** Builds an index from values streamed once (e.g. `SELECT DISTINCT ssn FROM …` row by row). */
  static async build(values: Iterable<SensitiveValue> | AsyncIterable<SensitiveValue>, options: SensitiveValueIndexOptions = {}): Promise<SensitiveValueIndex> {
    const index = new SensitiveValueIndex(options);
    for await (const v of values) index.add(v);
    index.seal();
    return index;
  }

  constructor(options: SensitiveValueIndexOptions = {}) {
    const minLength = options.minLength ?? 4;
    if (!Number.isInteger(minLength) || minLength < 1) throw new DlpInputInvalid('minLength must be a positive integer');
    this.#minLength = minLength;
    const key = randomBytes(32);
    this.#pads = hmacSha256Pads(key);
    key.fill(0);
    this.#seed = randomInt(0, 2 ** 32 - 1) >>> 0;
  }

  /** Number of fingerprints held (duplicates collapse when the index is sealed). */
  get size(): number {
    this.#ensureSealed();
    return this.#sorted.length;
  }

  /**
   * Adds one catalog value. Returns false (and keeps nothing) when the value is null, not
   * a string or safe integer, or shorter than `minLength` once normalised.
   */
  add(entry: SensitiveValue): boolean {
    this.#assertLive();
    if (entry === null || typeof entry !== 'object') throw new DlpInputInvalid(`index entry must be an object, got ${typeof entry}`);
    if (typeof entry.tag !== 'string') throw new DlpInputInvalid(`index entry tag must be a string, got ${typeof entry.tag}`);
    if (!CLASSIFICATIONS.includes(entry.classification)) throw new DlpInputInvalid('index entry classification must be one of public, internal, confidential, regulated');
    const text = cellText(entry.value);
    if (text === null) return false;
    const kind = normaliserForTag(entry.tag);
    const normalised = normalise(kind, text);
    if (normalised.length < this.#minLength) return false;
    const lengths = (this.#lengths[kind] ??= new Uint8Array(LENGTH_SLOTS));
    lengths[Math.min(normalised.length, LENGTH_SLOTS - 1)] = 1;
    if (kind === 'text' || kind === 'email') lengths[Math.min(text.trim().length, LENGTH_SLOTS - 1)] = 1;
    if (this.#count === this.#entries.length) this.#grow();
    this.#entries[this.#count] = (this.#fingerprint(kind, normalised) << 2n) | rank(entry.classification);
    this.#cheap[this.#count] = this.#cheapHash(kind, normalised);
    this.#count++;
    this.#dirty = true;
    return true;
  }

  /** True when the value, normalised for any kind of column indexed, is a catalog value. */
  has(value: CellValue): boolean {
    return this.classificationOf(value) !== null;
  }

  /** The highest classification of a catalog column holding this value, or null. */
  classificationOf(value: CellValue): Classification | null {
    const text = cellText(value);
    if (text === null) return null;
    const rank = this.rankOfText(text, -1);
    return rank < 0 ? null : CLASSIFICATIONS[rank]!;
  }

  /**
   * The scanner's entry point: classification rank (0 public … 3 regulated) of `text`, or -1.
   * `digitCount` is the number of ASCII digits in `text` if the caller already counted them, else -1.
   * Cheap gates first (lengths, then a Bloom filter over a hash computed without
   * allocating), the keyed MAC only for cells that pass them.
   */
  rankOfText(text: string, digitCount: number): number {
    this.#ensureSealed();
    if (this.#sorted.length === 0) return -1;
    const L = this.#lengths;
    let best = -1;
    if (L.text !== null || L.email !== null) best = Math.max(best, this.#lookupTextual(text));
    if (L.digits !== null || L.phone !== null) best = Math.max(best, this.#lookupDigits(text, digitCount));
    return best;
  }

  /** Wipes the key and drops every fingerprint; any later use throws DLP_INDEX_DISPOSED. */
  dispose(): void {
    wipePads(this.#pads);
    this.#entries = new BigUint64Array(0);
    this.#cheap = new Uint32Array(0);
    this.#sorted = new BigUint64Array(0);
    this.#bloom = new Uint32Array(2);
    this.#lengths.email = this.#lengths.phone = this.#lengths.digits = this.#lengths.text = null;
    this.#count = 0;
    this.#disposed = true;
  }

  /** Sorts the fingerprints and rebuilds the Bloom filter; done lazily by the first lookup after adds. */
  seal(): void {
    this.#assertLive();
    if (!this.#dirty) return;
    const all = this.#entries.slice(0, this.#count).sort();
    // Collapse duplicates: same fingerprint, keep the highest classification (the last after sorting).
    const unique: bigint[] = [];
    for (let i = 0; i < all.length; i++) {
      const fp = all[i]! >> 2n;
      if (i + 1 < all.length && all[i + 1]! >> 2n === fp) continue;
      unique.push(all[i]!);
    }
    this.#sorted = BigUint64Array.from(unique);
    let bits = 64;
    while (bits < this.#count * 32) bits *= 2;
    this.#bloom = new Uint32Array(bits >>> 5);
    this.#bloomMask = bits - 1;
    for (let i = 0; i < this.#count; i++) this.#bloomAdd(this.#cheap[i]!);
    this.#dirty = false;
  }

  #assertLive(): void {
    if (this.#disposed) throw new DlpIndexDisposed();
  }

  #ensureSealed(): void {
    this.#assertLive();
    if (this.#dirty) this.seal();
  }

  #grow(): void {
    const entries = new BigUint64Array(this.#entries.length * 2);
    entries.set(this.#entries);
    this.#entries = entries;
    const cheap = new Uint32Array(this.#cheap.length * 2);
    cheap.set(this.#cheap);
    this.#cheap = cheap;
  }

  /** `text` and `email` kinds: trim + lower-case, hashed in one pass over ASCII; other text takes the general path. */
  #lookupTextual(text: string): number {
    const T = this.#lengths.text, E = this.#lengths.email;
    let a = 0, b = text.length;
    while (a < b && isAsciiSpace(text.charCodeAt(a))) a++;
    while (b > a && isAsciiSpace(text.charCodeAt(b - 1))) b--;
    const slot = Math.min(b - a, LENGTH_SLOTS - 1);
    const wantText = T !== null && T[slot] === 1;
    const wantEmail = E !== null && E[slot] === 1;
    let hText = (FNV_OFFSET ^ this.#seed ^ KIND_CODE.text) >>> 0;
    let hEmail = (FNV_OFFSET ^ this.#seed ^ KIND_CODE.email) >>> 0;
    let at = false;
    if (wantText || wantEmail) {
      for (let i = a; i < b; i++) {
        let c = text.charCodeAt(i);
        if (c >= 128) return this.#lookupGeneral(text);
        if (c >= 65 && c <= 90) c += 32;
        else if (c === 64) at = true;
        hText = Math.imul(hText ^ c, FNV_PRIME);
        hEmail = Math.imul(hEmail ^ c, FNV_PRIME);
      }
    } else if ((a < b && text.charCodeAt(a) >= 128) || (b > a && text.charCodeAt(b - 1) >= 128)) {
      // Non-ASCII space at an edge: String.prototype.trim would shorten it further.
      return this.#lookupGeneral(text);
    } else return -1;
    let best = -1;
    if (wantText && this.#bloomHas(hText >>> 0)) best = Math.max(best, this.#exact('text', text));
    if (wantEmail && at && this.#bloomHas(hEmail >>> 0)) best = Math.max(best, this.#exact('email', text));
    return best;
  }

  /** `digits` and `phone` kinds: the digits of the cell, hashed without building the string. */
  #lookupDigits(text: string, digitCount: number): number {
    const D = this.#lengths.digits, P = this.#lengths.phone;
    let n = digitCount;
    if (n < 0) {
      n = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c >= 48 && c <= 57) n++;
      }
    }
    if (n === 0) return -1;
    const wantDigits = D !== null && D[Math.min(n, LENGTH_SLOTS - 1)] === 1;
    let skipFirst = false;
    let wantPhone = false;
    if (P !== null) {
      skipFirst = n === 11 && firstDigit(text) === 49;
      wantPhone = P[Math.min(skipFirst ? 10 : n, LENGTH_SLOTS - 1)] === 1;
    }
    if (!wantDigits && !wantPhone) return -1;
    let hDigits = (FNV_OFFSET ^ this.#seed ^ KIND_CODE.digits) >>> 0;
    let hPhone = (FNV_OFFSET ^ this.#seed ^ KIND_CODE.phone) >>> 0;
    let first = true;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) continue;
      hDigits = Math.imul(hDigits ^ c, FNV_PRIME);
      if (!(first && skipFirst)) hPhone = Math.imul(hPhone ^ c, FNV_PRIME);
      first = false;
    }
    let best = -1;
    if (wantDigits && this.#bloomHas(hDigits >>> 0)) best = Math.max(best, this.#exact('digits', text));
    if (wantPhone && this.#bloomHas(hPhone >>> 0)) best = Math.max(best, this.#exact('phone', text));
    return best;
  }

  /** Any text, any kind, through `normalise` — the reference path the fast paths must agree with. */
  #lookupGeneral(text: string): number {
    let best = -1;
    for (const kind of NORMALISER_KINDS) {
      const lengths = this.#lengths[kind];
      if (lengths === null) continue;
      if (kind === 'email' && text.indexOf('@') < 0) continue;
      const normalised = normalise(kind, text);
      const trimmedSlot = Math.min(text.trim().length, LENGTH_SLOTS - 1);
      if (lengths[Math.min(normalised.length, LENGTH_SLOTS - 1)] !== 1 && lengths[trimmedSlot] !== 1) continue;
      if (!this.#bloomHas(this.#cheapHash(kind, normalised))) continue;
      best = Math.max(best, this.#exact(kind, text));
    }
    return best;
  }

  /** The authoritative check: keyed fingerprint of the normalised cell, binary-searched. */
  #exact(kind: NormaliserKind, text: string): number {
    const fp = this.#fingerprint(kind, normalise(kind, text)) << 2n;
    // First entry ≥ fp << 2; entries with the same fingerprint differ only in the rank bits.
    const sorted = this.#sorted;
    let lo = 0, hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < fp) lo = mid + 1;
      else hi = mid;
    }
    if (lo < sorted.length && sorted[lo]! >> 2n === fp >> 2n) return Number(sorted[lo]! & 3n);
    return -1;
  }

  #cheapHash(kind: NormaliserKind, normalised: string): number {
    let h = (FNV_OFFSET ^ this.#seed ^ KIND_CODE[kind]) >>> 0;
    for (let i = 0; i < normalised.length; i++) h = Math.imul(h ^ normalised.charCodeAt(i), FNV_PRIME);
    return h >>> 0;
  }

  #bloomAdd(h: number): void {
    const a = fmix32(h) & this.#bloomMask;
    const b = fmix32(h ^ 0x9e3779b9) & this.#bloomMask;
    this.#bloom[a >>> 5]! |= 1 << (a & 31);
    this.#bloom[b >>> 5]! |= 1 << (b & 31);
  }

  #bloomHas(h: number): boolean {
    const a = fmix32(h) & this.#bloomMask;
    const b = fmix32(h ^ 0x9e3779b9) & this.#bloomMask;
    return (this.#bloom[a >>> 5]! & (1 << (a & 31))) !== 0 && (this.#bloom[b >>> 5]! & (1 << (b & 31))) !== 0;
  }

  /** First 62 bits of HMAC-SHA-256(key, kind ‖ UTF-8(value)). */
  #fingerprint(kind: NormaliserKind, normalised: string): bigint {
    const message = Buffer.allocUnsafe(1 + Buffer.byteLength(normalised, 'utf8'));
    message[0] = KIND_CODE[kind];
    message.write(normalised, 1, 'utf8');
    const mac = hmacSha256(this.#pads, message);
    const fp = mac.readBigUInt64BE(0) >> 2n;
    message.fill(0);
    mac.fill(0);
    return fp;
  }
}
