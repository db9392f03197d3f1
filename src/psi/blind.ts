/**
 * The blinding step of ECDH-PSI (Meadows 1986; Huberman–Franklin–Hogg 1999): multiply a
 * point by this session's secret scalar, with node:crypto's X25519 (RFC 7748) so no scalar
 * multiplication is written here. X25519 commutes — X25519(a, X25519(b, P)) =
 * X25519(b, X25519(a, P)) for clamped a, b — which is all the protocol needs.
 *
 * A key lives for one session only (`BlindingKey.fresh()`), so blinded values from two
 * sessions cannot be linked; `destroy()` drops the reference once the session ends.
 */
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { PsiError } from './errors.ts';

/** SubjectPublicKeyInfo prefix of an X25519 key (RFC 8410): 12 bytes, then the u-coordinate. */
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export class BlindingKey {
  #key: KeyObject | null;
  readonly #spki = Buffer.alloc(44);

  private constructor(key: KeyObject) {
    this.#key = key;
    SPKI_PREFIX.copy(this.#spki, 0);
  }

  static fresh(): BlindingKey {
    return new BlindingKey(generateKeyPairSync('x25519').privateKey);
  }

  /** k·P for one u-coordinate (32 bytes at `offset`), written to `out` at `outOffset`. */
  multiplyInto(points: Uint8Array, offset: number, out: Uint8Array, outOffset: number): void {
    const key = this.#key;
    if (key === null) throw new PsiError('PSI_SESSION_UNKNOWN', 'The PSI session key was destroyed; start a new session');
    this.#spki.set(points.subarray(offset, offset + 32), 12);
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey: key, publicKey: createPublicKey({ key: this.#spki, format: 'der', type: 'spki' }) });
    } catch {
      // OpenSSL refuses an all-zero result (a small-subgroup point, RFC 7748 §6.1).
      throw new PsiError('PSI_POINT_INVALID', `point ${offset / 32} gives an all-zero product; the session is aborted`);
    }
    out.set(shared, outOffset);
  }

  /** k·P for every point of a packed list (32·n bytes); `onProgress` after each chunk. */
  multiplyAll(points: Uint8Array, onProgress?: (done: number) => void): Uint8Array {
    const out = new Uint8Array(points.length);
    const n = points.length / 32;
    for (let i = 0; i < n; i++) {
      this.multiplyInto(points, 32 * i, out, 32 * i);
      if (onProgress !== undefined && (i + 1) % 4096 === 0) onProgress(i + 1);
    }
    onProgress?.(n);
    return out;
  }

  destroy(): void {
    this.#key = null;
  }
}
