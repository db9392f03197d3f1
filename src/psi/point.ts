/**
 * Validation of a Curve25519 u-coordinate a peer sent (RFC 7748 §5 encoding), before our key
 * ever touches it. A peer may send anything; we accept only a canonical encoding of a point
 * of the curve (not its twist) outside the small subgroup:
 *
 * - 32 bytes, top bit clear, u < p (RFC 7748 lets receivers mask the bit; we refuse, so one
 *   point has one encoding and a duplicate cannot hide behind another spelling);
 * - not one of the low-order points (u = 0, 1, p − 1 and the two of order 8; Bernstein's
 *   list at cr.yp.to/ecdh.html#validate, derived here from noble's ED25519_TORSION_SUBGROUP
 *   so no constant is typed by hand);
 * - on the curve: u³ + A·u² + u is a square mod p, so an off-curve (twist) point is refused
 *   instead of being multiplied. The square test is the Jacobi symbol by the binary
 *   algorithm (Cohen, "A Course in Computational Algebraic Number Theory", Alg. 1.4.10),
 *   20× faster here than Euler's criterion. It is variable time, which is sound because it
 *   only ever reads the peer's own message: its timing tells the peer nothing it did not send.
 *
 * X25519 clamping already clears the cofactor and node:crypto refuses an all-zero shared
 * secret (RFC 7748 §6.1); these checks make the refusal explicit and named.
 */
import { ED25519_TORSION_SUBGROUP, ed25519 } from '@noble/curves/ed25519.js';
import { decodeU } from './hash-to-curve.ts';
import { PsiError } from './errors.ts';

const P = 2n ** 255n - 19n;
const A = 486662n;

function powMod(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = base % P;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

/** Jacobi symbol (a | P) for the prime P: 1 square, −1 non-square, 0 for a ≡ 0. */
export function jacobiSymbol(a0: bigint): number {
  let a = ((a0 % P) + P) % P;
  let n = P;
  let t = 1;
  while (a !== 0n) {
    while ((a & 1n) === 0n) {
      a >>= 1n;
      const r = n & 7n;
      if (r === 3n || r === 5n) t = -t;
    }
    const swap = a;
    a = n;
    n = swap;
    if ((a & 3n) === 3n && (n & 3n) === 3n) t = -t;
    a %= n;
  }
  return n === 1n ? t : 0;
}

/** u-coordinates of the points of order dividing 8 (the identity has none). */
export const LOW_ORDER_U: ReadonlySet<bigint> = (() => {
  const set = new Set<bigint>([0n, 1n, P - 1n]);
  for (const hex of ED25519_TORSION_SUBGROUP) {
    const { y } = ed25519.Point.fromHex(hex).toAffine();
    if (y === 1n) continue;
    set.add(((1n + y) * powMod((1n - y + P) % P, P - 2n)) % P);
  }
  return set;
})();

export type PointProblem = 'length' | 'non-canonical' | 'low-order' | 'off-curve';

/** Why the 32 bytes at `offset` are not an acceptable point, or null when they are. */
export function pointProblem(bytes: Uint8Array, offset = 0): PointProblem | null {
  if (bytes.length < offset + 32) return 'length';
  if ((bytes[offset + 31]! & 0x80) !== 0) return 'non-canonical';
  const u = decodeU(bytes.subarray(offset, offset + 32));
  if (u >= P) return 'non-canonical';
  if (LOW_ORDER_U.has(u)) return 'low-order';
  const rhs = (((u * u) % P) * u + ((A * u) % P) * u + u) % P;
  if (jacobiSymbol(rhs) !== 1) return 'off-curve';
  return null;
}

/** Throws PSI_POINT_INVALID for the first unacceptable point of a packed list. */
export function assertPoints(packed: Uint8Array, what: string): void {
  if (packed.length % 32 !== 0) {
    throw new PsiError('PSI_MESSAGE_MALFORMED', `${what}: ${packed.length} bytes is not a whole number of 32-byte points`);
  }
  for (let off = 0; off < packed.length; off += 32) {
    const problem = pointProblem(packed, off);
    if (problem !== null) {
      throw new PsiError('PSI_POINT_INVALID', `${what}: point ${off / 32} is ${problem}; the session is aborted`, {
        hint: 'The peer sent a point that is not a valid element of the group; start a new session with a correct peer.',
      });
    }
  }
}
