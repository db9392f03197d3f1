/**
 * Mask expansion: a 256-bit seed → a vector uniform in Z_{2^32}^d, by AES-256-CTR keystream
 * (NIST SP 800-38A) from node:crypto. Bonawitz et al. 2017 §4 need a PRG whose output is
 * indistinguishable from uniform; AES-CTR under a uniformly random (or HKDF-derived) key is
 * such a PRG. Flower's SecAgg+ seeds NumPy's Mersenne Twister with the shared secret, which
 * is not a cryptographic PRG (its state is recoverable from 624 outputs); this one is.
 *
 * The 128-bit counter block starts at a domain separator (self mask vs pairwise mask), so the
 * same seed used for two purposes would still give independent streams; in practice every
 * seed is already unique to its purpose (crypto.ts `agree`).
 *
 * Why it is shaped this way (issue 19 benchmark: 100 participants × 1M parameters, each
 * participant applying k + 1 = 15 masks): the masks a participant or the coordinator applies
 * are applied together, one chunk of the target at a time, so the chunk stays in cache while
 * every mask's keystream for it is added; and the mod-2^32 additions run as WebAssembly SIMD
 * (i32x4.add / i32x4.sub wrap mod 2^32 per lane), four words per instruction, instead of a
 * JavaScript loop. The keystream itself is OpenSSL's AES-NI CTR over a zero buffer.
 */
import { createCipheriv, type Cipheriv } from 'node:crypto';

export type MaskDomain = 'self' | 'pair';
const IV: Record<MaskDomain, Buffer> = { self: Buffer.alloc(16, 0), pair: Buffer.concat([Buffer.from([1]), Buffer.alloc(15, 0)]) };

export interface Mask {
  readonly seed: Uint8Array;
  readonly domain: MaskDomain;
  /** +1 adds the mask, −1 subtracts it (mod 2^32). */
  readonly sign: 1 | -1;
}

/** Words per chunk: the target's chunk and one keystream chunk (64 KiB each) stay in L2. */
const CHUNK_WORDS = 1 << 14;
const CHUNK_BYTES = CHUNK_WORDS * 4;
const ZEROS = Buffer.alloc(CHUNK_BYTES);

/**
 * Two functions over one exported memory, (dst, src, bytes) with bytes a multiple of 16:
 * dst[i] ← dst[i] ± src[i] as i32x4 lanes. Hand-assembled (WebAssembly core spec 2.0 with
 * fixed-width SIMD); per function: (local $i i32) block loop
 *   br_if 1 (i ≥ bytes); v128.store(dst+i, i32x4.add|sub(v128.load(dst+i), v128.load(src+i))); i += 16; br 0.
 */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}
/** The WebAssembly global (this project's TypeScript lib has no DOM/WebAssembly typings). */
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
type Op = (dst: number, src: number, bytes: number) => void;

function simdModule(): { add: Op; sub: Op; memory: { readonly buffer: ArrayBuffer } } {
  const body = (op: number[]) => [
    0x01, 0x01, 0x7f, // one local i32 ($i = local 3)
    0x02, 0x40, 0x03, 0x40, // block, loop
    0x20, 0x03, 0x20, 0x02, 0x4f, 0x0d, 0x01, // local.get i; local.get bytes; i32.ge_u; br_if 1
    0x20, 0x00, 0x20, 0x03, 0x6a, // dst + i (store address)
    0x20, 0x00, 0x20, 0x03, 0x6a, 0xfd, 0x00, 0x04, 0x00, // v128.load (dst + i)
    0x20, 0x01, 0x20, 0x03, 0x6a, 0xfd, 0x00, 0x04, 0x00, // v128.load (src + i)
    0xfd, ...op, // i32x4.add | i32x4.sub
    0xfd, 0x0b, 0x04, 0x00, // v128.store
    0x20, 0x03, 0x41, 0x10, 0x6a, 0x21, 0x03, // i += 16
    0x0c, 0x00, 0x0b, 0x0b, 0x0b, // br 0; end loop; end block; end func
  ];
  const add = body([0xae, 0x01]);
  const sub = body([0xb1, 0x01]);
  const section = (id: number, bytes: number[]) => [id, bytes.length, ...bytes];
  const exportName = (name: string, kind: number, index: number) => [name.length, ...Buffer.from(name), kind, index];
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00]), // type 0: (i32 i32 i32) → ()
    ...section(3, [0x02, 0x00, 0x00]), // two functions of type 0
    ...section(5, [0x01, 0x00, 0x02]), // memory: 2 pages (128 KiB), fixed
    ...section(7, [0x03, ...exportName('memory', 0x02, 0), ...exportName('add', 0x00, 0), ...exportName('sub', 0x00, 1)]),
    ...section(10, [0x02, add.length, ...add, sub.length, ...sub]),
  ]);
  const e = new Wasm.Instance(new Wasm.Module(bytes)).exports;
  return { add: e.add as Op, sub: e.sub as Op, memory: e.memory as { buffer: ArrayBuffer } };
}

const SIMD = simdModule();
/** Memory layout: [0, CHUNK_BYTES) the target's chunk, [CHUNK_BYTES, 2·CHUNK_BYTES) the keystream. */
const HEAP8 = new Uint8Array(SIMD.memory.buffer);
const HEAP32 = new Uint32Array(SIMD.memory.buffer);

/**
 * target[i] += Σ sign · mask[i] (mod 2^32) over the given masks, each mask = AES-256-CTR(seed)
 * read as little-endian uint32 words. Synchronous, so the one module-wide scratch memory is
 * never shared by two calls.
 */
export function applyMasks(target: Uint32Array, masks: readonly Mask[]): void {
  for (const m of masks) if (m.seed.length !== 32) throw new RangeError('a mask seed is 32 bytes');
  if (masks.length === 0 || target.length === 0) return;
  const ciphers: Cipheriv[] = masks.map((m) => createCipheriv('aes-256-ctr', m.seed, IV[m.domain]));
  for (let off = 0; off < target.length; off += CHUNK_WORDS) {
    const n = Math.min(CHUNK_WORDS, target.length - off);
    const simdBytes = (n & ~3) * 4;
    HEAP32.set(target.subarray(off, off + n), 0);
    for (let k = 0; k < masks.length; k++) {
      HEAP8.set(ciphers[k]!.update(n === CHUNK_WORDS ? ZEROS : ZEROS.subarray(0, n * 4)), CHUNK_BYTES);
      if (masks[k]!.sign === 1) {
        SIMD.add(0, CHUNK_BYTES, simdBytes);
        for (let i = n & ~3; i < n; i++) HEAP32[i] = (HEAP32[i]! + HEAP32[CHUNK_WORDS + i]!) >>> 0;
      } else {
        SIMD.sub(0, CHUNK_BYTES, simdBytes);
        for (let i = n & ~3; i < n; i++) HEAP32[i] = (HEAP32[i]! - HEAP32[CHUNK_WORDS + i]!) >>> 0;
      }
    }
    target.set(HEAP32.subarray(0, n), off);
  }
}

/** target[i] += sign · mask[i] (mod 2^32) for one mask. */
export function applyMask(target: Uint32Array, seed: Uint8Array, domain: MaskDomain, sign: 1 | -1): void {
  applyMasks(target, [{ seed, domain, sign }]);
}

/** The mask itself (tests, and the reference the coordinator's removal is checked against). */
export function expandMask(seed: Uint8Array, domain: MaskDomain, length: number): Uint32Array {
  const out = new Uint32Array(length);
  applyMask(out, seed, domain, 1);
  return out;
}
