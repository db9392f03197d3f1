/**
 * Hash an element to a point of Curve25519, given as its Montgomery u-coordinate (RFC 7748
 * encoding: 32 bytes little-endian), for ECDH-PSI.
 *
 * Suite: RFC 9380 §8.5 `curve25519_XMD:SHA-512_ELL2_RO_` — expand_message_xmd with SHA-512,
 * two field elements, the Elligator 2 map (RFC 9380 §6.7.1, Appendix G.2.1), point addition
 * and cofactor clearing. The random-oracle variant (not encode_to_curve) is the one the
 * DH-PSI security argument needs (Huberman–Franklin–Hogg 1999; Ion et al. 2020 §3 model H as
 * a random oracle into the group).
 *
 * The map, the addition and the cofactor clearing are @noble/curves' (`ed25519_hasher`,
 * edwards25519 with the same field elements: the birational map to Curve25519 is a group
 * isomorphism, so u = (1 + y) / (1 − y) of the Edwards result is the Curve25519 suite's
 * output — the RFC 9380 Appendix J.4.1 vectors pin this in test/psi-hash-to-curve.test.ts).
 * noble's map is straight-line code (CMOV, no branch on field values); the one inversion we
 * add is a fixed addition chain shared by a batch (Montgomery's trick, a fixed sequence of
 * multiplications), so the work per element does not depend on the element. BigInt
 * arithmetic is not hardware constant time; the timing of hashing is only visible on the
 * owner's own node, which holds the elements anyway.
 */
import { ed25519_hasher } from '@noble/curves/ed25519.js';

export const PSI_DST = 'GATEHOUSE-V01-PSI-with-curve25519_XMD:SHA-512_ELL2_RO_';

const P = 2n ** 255n - 19n;
const ENCODER = new TextEncoder();

function mod(a: bigint): bigint {
  const r = a % P;
  return r >= 0n ? r : r + P;
}

/** x^(p-2) mod p by square-and-multiply over the public exponent (no branch on x). */
function invert(x: bigint): bigint {
  let result = 1n;
  let base = mod(x);
  let e = P - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % P;
    base = (base * base) % P;
    e >>= 1n;
  }
  return result;
}

export function encodeU(u: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let v = u;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function decodeU(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = 31; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/**
 * Hash many elements; one field inversion for the whole batch. Returns 32·n bytes, the
 * u-coordinate of H(element_i) at offset 32·i.
 */
export function hashToCurveBatch(elements: readonly (string | Uint8Array)[], dst: string = PSI_DST): Uint8Array {
  const n = elements.length;
  const nums: bigint[] = new Array(n);
  const dens: bigint[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const e = elements[i]!;
    const point = ed25519_hasher.hashToCurve(typeof e === 'string' ? ENCODER.encode(e) : e, { DST: dst });
    // Extended coordinates: y = Y/Z, so u = (Z + Y) / (Z − Y). Z − Y = 0 only for the identity,
    // which a random oracle hits with probability 2^-252.
    nums[i] = mod(point.Z + point.Y);
    dens[i] = mod(point.Z - point.Y);
  }
  // Montgomery's batch inversion: prefix products, one inversion, walk back.
  const prefix: bigint[] = new Array(n);
  let acc = 1n;
  for (let i = 0; i < n; i++) {
    prefix[i] = acc;
    acc = (acc * dens[i]!) % P;
  }
  let inv = invert(acc);
  const out = new Uint8Array(32 * n);
  for (let i = n - 1; i >= 0; i--) {
    const denInv = (inv * prefix[i]!) % P;
    inv = (inv * dens[i]!) % P;
    out.set(encodeU((nums[i]! * denInv) % P), 32 * i);
  }
  return out;
}

export function hashToCurve(element: string | Uint8Array, dst: string = PSI_DST): Uint8Array {
  return hashToCurveBatch([element], dst);
}
