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
 */
import { createCipheriv } from 'node:crypto';

export type MaskDomain = 'self' | 'pair';
const IV: Record<MaskDomain, Buffer> = { self: Buffer.alloc(16, 0), pair: Buffer.concat([Buffer.from([1]), Buffer.alloc(15, 0)]) };
/** Keystream produced per cipher call, so a 1M-parameter mask never holds a second 4 MB buffer. */
const CHUNK_WORDS = 1 << 16;
const ZEROS = Buffer.alloc(CHUNK_WORDS * 4);

/**
 * target[i] += sign · mask[i] (mod 2^32), mask = AES-256-CTR(seed) read as little-endian
 * uint32 words. Writing into a Uint32Array reduces mod 2^32 by itself (ToUint32).
 */
export function applyMask(target: Uint32Array, seed: Uint8Array, domain: MaskDomain, sign: 1 | -1): void {
  if (seed.length !== 32) throw new RangeError('a mask seed is 32 bytes');
  const c = createCipheriv('aes-256-ctr', seed, IV[domain]);
  const aligned = new Uint32Array(CHUNK_WORDS);
  const alignedBytes = new Uint8Array(aligned.buffer);
  for (let off = 0; off < target.length; off += CHUNK_WORDS) {
    const n = Math.min(CHUNK_WORDS, target.length - off);
    const ks = c.update(n === CHUNK_WORDS ? ZEROS : ZEROS.subarray(0, n * 4));
    let words: Uint32Array;
    if (ks.byteOffset % 4 === 0) words = new Uint32Array(ks.buffer, ks.byteOffset, n);
    else { alignedBytes.set(ks); words = aligned; }
    if (sign === 1) for (let i = 0; i < n; i++) target[off + i] += words[i]!;
    else for (let i = 0; i < n; i++) target[off + i] -= words[i]!;
  }
}

/** The mask itself (tests, and the reference the coordinator's removal is checked against). */
export function expandMask(seed: Uint8Array, domain: MaskDomain, length: number): Uint32Array {
  const out = new Uint32Array(length);
  applyMask(out, seed, domain, 1);
  return out;
}
