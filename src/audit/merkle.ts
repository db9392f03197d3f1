/**
 * Merkle hash trees as defined by RFC 6962 §2.1 (and RFC 9162 §2.1, which restates them):
 *
 *   MTH({})        = SHA-256()
 *   leaf hash      = SHA-256(0x00 || entry)
 *   interior node  = SHA-256(0x01 || left || right)
 *   MTH(D[n])      = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 *
 * Proof generation follows RFC 6962 §2.1.1 (PATH) and §2.1.2 (PROOF/SUBPROOF) over any
 * source of subtree hashes; verification follows RFC 9162 §2.1.3.2 (inclusion) and
 * §2.1.4.2 (consistency), with an up-front length check so that a proof that is too
 * long, too short, or leaves part of the second tree unconsumed is rejected with its own
 * error. Sizes and indices are JavaScript numbers restricted to safe integers; the bit
 * arithmetic uses division, not 32-bit bitwise operators.
 *
 * Tested against the RFC 6962 vectors for the standard 8-leaf tree published by
 * transparency-dev/merkle (testonly/constants.go, proof/verify_test.go).
 */
import { createHash, hash, timingSafeEqual } from 'node:crypto';
import { ProofLengthInvalid, ProofRangeInvalid, ProofVerificationFailed } from './errors.ts';

export const HASH_SIZE = 32;
const NODE_PREFIX = Buffer.from([0x01]);
const LEAF_PREFIX = Buffer.from([0x00]);

export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// One-shot crypto.hash() is several times cheaper than a createHash() object for the
// small inputs of a Merkle tree, so the prefixed input is assembled in a scratch buffer
// (synchronous use only) and hashed in one call. Still node:crypto SHA-256.
const LEAF_SCRATCH_MAX = 64 * 1024;
let leafScratch = Buffer.alloc(4096);
const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = 0x01;

/** SHA-256 of `input` (node:crypto one-shot), as a Buffer. */
export function sha256(input: Uint8Array): Buffer {
  return hash('sha256', input, 'buffer') as unknown as Buffer;
}

export function hashLeaf(entry: Uint8Array): Buffer {
  const n = entry.length + 1;
  if (n > LEAF_SCRATCH_MAX) return createHash('sha256').update(LEAF_PREFIX).update(entry).digest();
  if (n > leafScratch.length) leafScratch = Buffer.alloc(Math.min(LEAF_SCRATCH_MAX, Math.max(n, leafScratch.length * 2)));
  leafScratch[0] = 0x00;
  leafScratch.set(entry, 1);
  return sha256(leafScratch.subarray(0, n));
}

export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
  }
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 1 + HASH_SIZE);
  return sha256(nodeScratch);
}

/** Largest power of two strictly less than n (n > 1). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

function bitLength(x: number): number {
  let n = 0;
  while (x > 0) { x = Math.floor(x / 2); n++; }
  return n;
}

function popCount(x: number): number {
  let n = 0;
  while (x > 0) { n += x % 2; x = Math.floor(x / 2); }
  return n;
}

function trailingZeros(x: number): number {
  let n = 0;
  while (x > 0 && x % 2 === 0) { x /= 2; n++; }
  return n;
}

function xor(a: number, b: number): number {
  // Bitwise XOR for safe integers above 2^31.
  let result = 0;
  let bit = 1;
  while (a > 0 || b > 0) {
    if ((a % 2) !== (b % 2)) result += bit;
    a = Math.floor(a / 2);
    b = Math.floor(b / 2);
    bit *= 2;
  }
  return result;
}

function checkSize(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new ProofRangeInvalid(`${name} must be a non-negative integer`);
}

/** Where subtree hashes come from: memory (tests, verifier) or the file store. */
export interface SubtreeSource {
  /** MTH(D[start:end]) for end - start >= 1. */
  subtreeHash(start: number, end: number): Buffer;
}

/** Subtree hashes over an in-memory array of leaf hashes (verifier, tests). */
export class MemoryTree implements SubtreeSource {
  readonly leaves: Buffer[];
  constructor(leafHashes: Buffer[] = []) { this.leaves = leafHashes; }
  subtreeHash(start: number, end: number): Buffer {
    if (end - start === 1) return this.leaves[start]!;
    const k = splitPoint(end - start);
    return hashChildren(this.subtreeHash(start, start + k), this.subtreeHash(start + k, end));
  }
  root(size = this.leaves.length): Buffer {
    return size === 0 ? EMPTY_ROOT : this.subtreeHash(0, size);
  }
}

/** Root of the tree of the first `size` leaves. */
export function rootOf(source: SubtreeSource, size: number): Buffer {
  return size === 0 ? EMPTY_ROOT : source.subtreeHash(0, size);
}

/** RFC 6962 §2.1.1 PATH(m, D[n]), leaf-to-root order. */
export function inclusionProof(source: SubtreeSource, index: number, size: number): Buffer[] {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw new ProofRangeInvalid(`index ${index} is not below tree size ${size}`);
  const proof: Buffer[] = [];
  const path = (m: number, start: number, end: number): void => {
    const n = end - start;
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      path(m, start, start + k);
      proof.push(source.subtreeHash(start + k, end));
    } else {
      path(m - k, start + k, end);
      proof.push(source.subtreeHash(start, start + k));
    }
  };
  path(index, 0, size);
  return proof;
}

/** RFC 6962 §2.1.2 PROOF(m, D[n]); empty when m == 0 or m == n. */
export function consistencyProof(source: SubtreeSource, first: number, second: number): Buffer[] {
  checkSize('first', first);
  checkSize('second', second);
  if (first > second) throw new ProofRangeInvalid(`first size ${first} exceeds second size ${second}`);
  const proof: Buffer[] = [];
  if (first === 0 || first === second) return proof;
  const sub = (m: number, start: number, end: number, complete: boolean): void => {
    const n = end - start;
    if (m === n) {
      if (!complete) proof.push(source.subtreeHash(start, end));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      sub(m, start, start + k, complete);
      proof.push(source.subtreeHash(start + k, end));
    } else {
      sub(m - k, start + k, end, false);
      proof.push(source.subtreeHash(start, start + k));
    }
  };
  sub(first, 0, second, true);
  return proof;
}

/** Number of hashes an inclusion proof for (index, size) must have. */
export function inclusionProofLength(index: number, size: number): number {
  const inner = bitLength(xor(index, size - 1));
  const border = popCount(Math.floor(index / 2 ** inner));
  return inner + border;
}

/** Number of hashes a consistency proof for (first, second) must have, 0 < first < second. */
export function consistencyProofLength(first: number, second: number): number {
  const inner = bitLength(xor(first - 1, second - 1));
  const border = popCount(Math.floor((first - 1) / 2 ** inner));
  const shift = trailingZeros(first);
  return (isPowerOfTwo(first) ? 0 : 1) + (inner - shift) + border;
}

function checkHash(name: string, h: Uint8Array): void {
  if (h.length !== HASH_SIZE) throw new ProofVerificationFailed(`${name} is ${h.length} bytes, not ${HASH_SIZE}`);
}

export function hashEquals(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to. */
export function rootFromInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Buffer {
  checkSize('index', index);
  checkSize('size', size);
  if (index >= size) throw new ProofRangeInvalid(`index ${index} is not below tree size ${size}`);
  checkHash('leaf hash', leafHash);
  const expected = inclusionProofLength(index, size);
  if (proof.length !== expected) throw new ProofLengthInvalid(expected, proof.length);
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    checkHash('proof hash', p);
    if (sn === 0) throw new ProofLengthInvalid(expected, proof.length);
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn /= 2; sn = Math.floor(sn / 2); }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofLengthInvalid(expected, proof.length);
  return r;
}

export function verifyInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  checkHash('root', root);
  const computed = rootFromInclusionProof(index, size, leafHash, proof);
  if (!hashEquals(computed, root)) throw new ProofVerificationFailed(`inclusion proof for index ${index} does not lead to the root of size ${size}`);
}

/** RFC 9162 §2.1.4.2. Throws unless `proof` shows the tree of size `first` is a prefix of the one of size `second`. */
export function verifyConsistency(first: number, second: number, firstRoot: Uint8Array, secondRoot: Uint8Array, proof: readonly Uint8Array[]): void {
  checkSize('first', first);
  checkSize('second', second);
  if (first > second) throw new ProofRangeInvalid(`first size ${first} exceeds second size ${second}`);
  checkHash('first root', firstRoot);
  checkHash('second root', secondRoot);
  if (first === second) {
    if (proof.length !== 0) throw new ProofLengthInvalid(0, proof.length);
    if (!hashEquals(firstRoot, secondRoot)) throw new ProofVerificationFailed(`two different roots for tree size ${first}`);
    return;
  }
  if (first === 0) {
    if (proof.length !== 0) throw new ProofLengthInvalid(0, proof.length);
    return;
  }
  const expected = consistencyProofLength(first, second);
  if (proof.length !== expected) throw new ProofLengthInvalid(expected, proof.length);
  for (const p of proof) checkHash('proof hash', p);
  const path: readonly Uint8Array[] = isPowerOfTwo(first) ? [firstRoot, ...proof] : proof;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) throw new ProofLengthInvalid(expected, proof.length);
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn /= 2; sn = Math.floor(sn / 2); }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofLengthInvalid(expected, proof.length);
  if (!hashEquals(fr, firstRoot)) throw new ProofVerificationFailed(`consistency proof does not lead to the root of size ${first}`);
  if (!hashEquals(sr, secondRoot)) throw new ProofVerificationFailed(`consistency proof does not lead to the root of size ${second}`);
}
