/**
 * Uniform random integers from the operating system's CSPRNG.
 *
 * Source: `node:crypto` randomFillSync, i.e. OpenSSL's RAND_bytes DRBG seeded from the
 * kernel (getrandom(2)). Never Math.random. Bytes are fetched POOL_WORDS 32-bit words at a
 * time (one call per 64 KiB instead of one per draw: the call overhead, not the DRBG, is
 * what limits a per-draw design) and every word is zeroed as soon as it is consumed, so the
 * pool never holds noise that was already used.
 *
 * uniformBelow(n) is exact: Lemire's multiply-and-reject ("Fast random integer generation
 * in an interval", ACM TOMACS 2019) for n ≤ 2^21, where the 32×21-bit product is exact in a
 * double; bit-masked rejection sampling above that, and for BigInt bounds.
 */
import { randomFillSync } from 'node:crypto';
import { MechanismParameterInvalid } from './errors.ts';

const POOL_WORDS = 16384;
const pool = new Uint32Array(POOL_WORDS);
let next = POOL_WORDS;
let bitBuffer = 0;
let bitsLeft = 0;

const TWO_32 = 4294967296;
const INV_TWO_32 = 1 / TWO_32;
const LEMIRE_MAX = 1 << 21;

/** Uniform integer in [0, 2^32). */
export function randomUint32(): number {
  if (next === POOL_WORDS) {
    randomFillSync(pool);
    next = 0;
  }
  const w = pool[next]!;
  pool[next++] = 0;
  return w;
}

/** Uniform bit (0 or 1); 32 bits are taken from one pool word. */
export function randomBit(): number {
  if (bitsLeft === 0) {
    bitBuffer = randomUint32();
    bitsLeft = 32;
  }
  const b = bitBuffer & 1;
  bitBuffer >>>= 1;
  bitsLeft--;
  return b;
}

/** Number of bits needed to write n − 1 (n ≥ 2). */
function bitsFor(n: number): number {
  // Math.clz32 only sees 32 bits; split for larger n.
  const m = n - 1;
  if (m < TWO_32) return 32 - Math.clz32(m);
  return 64 - Math.clz32(Math.floor(m * INV_TWO_32));
}

/**
 * Uniform integer in [0, n) for an integer 1 ≤ n ≤ 2^53, without validation: the
 * samplers call this in their inner loops with bounds they have already checked.
 */
export function uniformBelowUnchecked(n: number): number {
  if (n <= LEMIRE_MAX) {
    let m = randomUint32() * n;
    let hi = Math.floor(m * INV_TWO_32);
    let lo = m - hi * TWO_32;
    if (lo < n) {
      const threshold = TWO_32 % n;
      while (lo < threshold) {
        m = randomUint32() * n;
        hi = Math.floor(m * INV_TWO_32);
        lo = m - hi * TWO_32;
      }
    }
    return hi;
  }
  const bits = bitsFor(n);
  if (bits <= 32) {
    const shift = 32 - bits;
    for (;;) {
      const x = randomUint32() >>> shift;
      if (x < n) return x;
    }
  }
  const shift = 64 - bits;
  for (;;) {
    const x = (randomUint32() >>> shift) * TWO_32 + randomUint32();
    if (x < n) return x;
  }
}

/** Uniform bigint in [0, n) for n ≥ 1, by masked rejection over 32-bit words. */
export function uniformBelowBig(n: bigint): bigint {
  if (n <= 1n) return 0n;
  const bits = (n - 1n).toString(2).length;
  const words = Math.ceil(bits / 32);
  const excess = BigInt(words * 32 - bits);
  for (;;) {
    let x = 0n;
    for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(randomUint32());
    x >>= excess;
    if (x < n) return x;
  }
}

/**
 * Uniform integer in [0, n). A number bound must be a safe integer in [1, 2^53] and yields
 * a number; a bigint bound (any size ≥ 1) yields a bigint.
 */
export function uniformBelow(n: number): number;
export function uniformBelow(n: bigint): bigint;
export function uniformBelow(n: number | bigint): number | bigint {
  if (typeof n === 'bigint') {
    if (n < 1n) throw new MechanismParameterInvalid('uniformBelow bound must be ≥ 1');
    return uniformBelowBig(n);
  }
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 53) {
    throw new MechanismParameterInvalid('uniformBelow bound must be an integer in [1, 2^53]; use a bigint above that');
  }
  return uniformBelowUnchecked(n);
}
