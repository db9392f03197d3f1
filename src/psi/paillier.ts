/**
 * Paillier encryption (Paillier 1999) for intersection-sum, with paillier-bigint's keys,
 * decryption and homomorphic addition, and a faster way to compute the one costly step of
 * encryption, the randomiser r^n mod n².
 *
 * With the generator g = n + 1 (paillier-bigint's "simple variant"), Enc(m; r) =
 * (1 + m·n) · r^n mod n². paillier-bigint computes r^n with a BigInt square-and-multiply
 * (~150 ms per 2048-bit encryption on this machine); node:crypto exposes no modular
 * exponentiation, but its finite-field Diffie–Hellman computes peer^private mod p with
 * OpenSSL's Montgomery exponentiation for any odd modulus. With p = n², private = n and
 * peer = r that is exactly r^n mod n² — OpenSSL's code, not ours, 6–7× faster here. The
 * construction is checked against BigInt arithmetic when an encryptor is made (a wrong
 * answer falls back to paillier-bigint's own encrypt) and in test/psi.test.ts, where every
 * ciphertext is decrypted by paillier-bigint.
 */
import { createDiffieHellman, randomBytes, type DiffieHellman } from 'node:crypto';
import { generateRandomKeys, type KeyPair, type PublicKey } from 'paillier-bigint';

function toBytes(v: bigint, width: number): Buffer {
  return Buffer.from(v.toString(16).padStart(width * 2, '0'), 'hex');
}

function toBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`);
}

function powMod(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return r;
}

/** Keys with g = n + 1, the form intersection-sum's encryptor needs. */
export function generatePaillierKeys(bits = 2048): Promise<KeyPair> {
  return generateRandomKeys(bits, true);
}

export class PaillierEncryptor {
  readonly #n: bigint;
  readonly #n2: bigint;
  readonly #width: number;
  readonly #dh: DiffieHellman | null;
  readonly #fallback: PublicKey;

  constructor(publicKey: PublicKey) {
    if (publicKey.g !== publicKey.n + 1n) throw new RangeError('intersection-sum needs a Paillier key with g = n + 1');
    this.#n = publicKey.n;
    this.#n2 = publicKey._n2;
    this.#width = Math.ceil(this.#n2.toString(16).length / 2);
    this.#fallback = publicKey;
    let dh: DiffieHellman | null = null;
    try {
      dh = createDiffieHellman(toBytes(this.#n2, this.#width), Buffer.from([2]));
      dh.setPrivateKey(toBytes(this.#n, this.#width));
      const r = this.#random();
      if (toBig(dh.computeSecret(toBytes(r, this.#width))) !== powMod(r, this.#n, this.#n2)) dh = null;
    } catch {
      dh = null;
    }
    this.#dh = dh;
  }

  /** Whether OpenSSL computes the randomiser (false: paillier-bigint's BigInt path). */
  get accelerated(): boolean { return this.#dh !== null; }

  #random(): bigint {
    for (;;) {
      // 64 extra bits make the reduction's bias negligible (< 2^-64).
      const r = toBig(randomBytes(Math.ceil(this.#n.toString(16).length / 2) + 8)) % this.#n;
      if (r > 1n) return r;
    }
  }

  /** r^n mod n² for a fresh uniformly random r. */
  #randomiser(): bigint {
    const r = this.#random();
    return this.#dh !== null ? toBig(this.#dh.computeSecret(toBytes(r, this.#width))) : powMod(r, this.#n, this.#n2);
  }

  encrypt(m: bigint): bigint {
    if (m < 0n || m >= this.#n) throw new RangeError('a Paillier plaintext is in [0, n)');
    if (this.#dh === null) return this.#fallback.encrypt(m);
    return (((1n + m * this.#n) % this.#n2) * this.#randomiser()) % this.#n2;
  }

  /** The same plaintext under fresh randomness (so a ciphertext cannot be linked to its inputs). */
  rerandomise(c: bigint): bigint {
    return (c * this.#randomiser()) % this.#n2;
  }
}
