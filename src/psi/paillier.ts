/**
 * Paillier encryption (Paillier 1999) for intersection-sum, with paillier-bigint's keys,
 * decryption and homomorphic addition, and faster ways to compute the one costly step of
 * encryption, the randomiser r^n mod n².
 *
 * With the generator g = n + 1 (paillier-bigint's "simple variant"), Enc(m; r) =
 * (1 + m·n) · r^n mod n². paillier-bigint computes r^n with a BigInt square-and-multiply
 * (~150 ms per 2048-bit encryption on this machine); node:crypto exposes no modular
 * exponentiation, but its finite-field Diffie–Hellman computes peer^private mod p with
 * OpenSSL's Montgomery exponentiation for any odd modulus. With p = n², private = n and
 * peer = r that is exactly r^n mod n² — OpenSSL's code, not ours, 6–7× faster here.
 *
 * Two further speed-ups, both standard and both still OpenSSL's exponentiation:
 *
 * - **CRT, for the key holder.** In intersection-sum the party that encrypts its values is the
 *   one that holds the private key (Ion et al. 2020, Fig. 2), so it knows n = p·q and may
 *   compute r^n mod p² and r^n mod q² separately (each exponent reduced mod φ(p²) = p(p−1))
 *   and join them with the Chinese remainder theorem — the speed-up Paillier 1999 §7 gives
 *   for decryption and Damgård–Jurik–Nielsen 2010 ("A generalization of Paillier's public-key
 *   system…", §4.3) and Catalano et al. 2001 use for encryption by the key owner. Two
 *   exponentiations modulo 2048-bit numbers instead of one modulo a 4096-bit number: ~2–3×.
 * - **Precomputation.** r^n mod n² does not depend on the message, so a node may compute the
 *   randomisers ahead (in worker threads, src/psi/workers.ts) and spend one per encryption —
 *   the offline/online split of Paillier encryption (e.g. Ion et al. 2020 §5.1). A randomiser
 *   is taken out of the store when used, so none is ever used twice.
 *
 * Every construction is checked against BigInt arithmetic when an encryptor is made (a wrong
 * answer falls back to the slower path) and in test/psi.test.ts and
 * test/psi-workers.test.ts, where every ciphertext is decrypted by paillier-bigint.
 */
import { createDiffieHellman, randomBytes, type DiffieHellman } from 'node:crypto';
import { generateRandomKeys, type KeyPair, type PublicKey } from 'paillier-bigint';

function toBytes(v: bigint, width: number): Buffer {
  return Buffer.from(v.toString(16).padStart(width * 2, '0'), 'hex');
}

function toBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`);
}

function byteWidth(v: bigint): number {
  return Math.ceil(v.toString(16).length / 2);
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

/** The secret primes of a key pair, for the key holder's CRT encryption. */
export interface PaillierFactors {
  readonly p: bigint;
  readonly q: bigint;
}

/**
 * p and q as paillier-bigint keeps them in the private key it generates (`_p`, `_q`; typed
 * private in its declarations but part of the object). Null when the key was made without
 * them; the product is checked, so a wrong pair is never used.
 */
export function paillierFactors(keys: KeyPair): PaillierFactors | null {
  const k = keys.privateKey as unknown as { _p?: unknown; _q?: unknown };
  const p = k._p, q = k._q;
  if (typeof p !== 'bigint' || typeof q !== 'bigint' || p * q !== keys.publicKey.n) return null;
  return { p, q };
}

/** A modular exponentiation x^e mod m by OpenSSL (finite-field DH with that modulus). */
class OpenSslPow {
  readonly #dh: DiffieHellman;
  readonly #width: number;
  readonly #mod: bigint;

  constructor(mod: bigint, exponent: bigint) {
    this.#mod = mod;
    this.#width = byteWidth(mod);
    this.#dh = createDiffieHellman(toBytes(mod, this.#width), Buffer.from([2]));
    this.#dh.setPrivateKey(toBytes(exponent, this.#width));
  }

  /** base^exponent mod m, for 1 < base mod m < m − 1 (OpenSSL refuses the others). */
  pow(base: bigint): bigint {
    return toBig(this.#dh.computeSecret(toBytes(base % this.#mod, this.#width)));
  }
}

interface CrtParts {
  readonly p: bigint;
  readonly q: bigint;
  readonly p2: bigint;
  readonly q2: bigint;
  readonly p2InvModQ2: bigint;
  readonly powP: OpenSslPow;
  readonly powQ: OpenSslPow;
}

/** Garner's recombination of r^n mod p² and r^n mod q²: x ≡ a (mod p²), x ≡ b (mod q²). */
function crtPow(c: CrtParts, r: bigint): bigint {
  const a = c.powP.pow(r);
  const b = c.powQ.pow(r);
  const h = ((((b - a) % c.q2) + c.q2) % c.q2 * c.p2InvModQ2) % c.q2;
  return a + c.p2 * h;
}

function crtParts(n: bigint, factors: PaillierFactors): CrtParts | null {
  const { p, q } = factors;
  if (p * q !== n) return null;
  const p2 = p * p, q2 = q * q;
  // (p²)⁻¹ mod q² by Euler's theorem, (p²)^(φ(q²) − 1), with OpenSSL's exponentiation.
  const p2InvModQ2 = new OpenSslPow(q2, q * (q - 1n) - 1n).pow(p2 % q2);
  if ((p2 * p2InvModQ2) % q2 !== 1n) return null;
  // r^n mod p² = r^(n mod φ(p²)) mod p² for r coprime to p.
  return { p, q, p2, q2, p2InvModQ2, powP: new OpenSslPow(p2, n % (p * (p - 1n))), powQ: new OpenSslPow(q2, n % (q * (q - 1n))) };
}

/**
 * r^n mod n² for fresh uniformly random r, by the fastest checked path this party may use:
 * CRT with the factors, OpenSSL modulo n², or BigInt.
 */
export class RandomiserSource {
  readonly n: bigint;
  readonly n2: bigint;
  readonly #full: OpenSslPow | null;
  readonly #crt: CrtParts | null;

  constructor(publicKey: PublicKey, factors: PaillierFactors | null = null) {
    this.n = publicKey.n;
    this.n2 = publicKey._n2;
    let full: OpenSslPow | null = null;
    try {
      full = new OpenSslPow(this.n2, this.n);
      const r = this.#random();
      if (full.pow(r) !== powMod(r, this.n, this.n2)) full = null;
    } catch {
      full = null;
    }
    this.#full = full;
    let crt: CrtParts | null = null;
    if (factors !== null) {
      try {
        crt = crtParts(this.n, factors);
        const r = this.#random();
        if (crt !== null && crtPow(crt, r) !== powMod(r, this.n, this.n2)) crt = null;
      } catch {
        crt = null;
      }
    }
    this.#crt = crt;
  }

  /** Which path computes r^n: 'crt' (key holder), 'openssl' or 'bigint'. */
  get path(): 'crt' | 'openssl' | 'bigint' {
    return this.#crt !== null ? 'crt' : this.#full !== null ? 'openssl' : 'bigint';
  }

  /** Bytes of one randomiser in `packed` output. */
  get width(): number {
    return byteWidth(this.n2);
  }

  #random(): bigint {
    for (;;) {
      // 64 extra bits make the reduction's bias negligible (< 2^-64).
      const r = toBig(randomBytes(byteWidth(this.n) + 8)) % this.n;
      if (r > 1n) return r;
    }
  }

  next(): bigint {
    const c = this.#crt;
    if (c !== null) {
      for (;;) {
        const r = this.#random();
        // Euler's theorem needs r coprime to p and q (fails with probability ~2^-1023), and
        // OpenSSL takes bases in (1, m − 1) only.
        if (r % c.p === 0n || r % c.q === 0n || r % c.p2 < 2n || r % c.q2 < 2n || r % c.p2 === c.p2 - 1n || r % c.q2 === c.q2 - 1n) continue;
        return crtPow(c, r);
      }
    }
    const r = this.#random();
    return this.#full !== null ? this.#full.pow(r) : powMod(r, this.n, this.n2);
  }

  /** `count` randomisers packed big-endian at `width` bytes each (for a worker's reply). */
  packed(count: number): Uint8Array {
    const w = this.width;
    const out = new Uint8Array(w * count);
    for (let i = 0; i < count; i++) out.set(toBytes(this.next(), w), w * i);
    return out;
  }
}

/**
 * Randomisers computed ahead for one public key, each handed out once (taken from the
 * store, then forgotten). Filled by `PsiWorkers.randomisers` or `fill()`.
 */
export class PrecomputedRandomisers {
  readonly n: bigint;
  readonly #items: bigint[] = [];
  #next = 0;

  constructor(n: bigint) {
    this.n = n;
  }

  get available(): number {
    return this.#items.length - this.#next;
  }

  /** Add packed randomisers (the form `RandomiserSource.packed` and the workers return). */
  addPacked(packed: Uint8Array, width: number): void {
    const n2 = this.n * this.n;
    for (let off = 0; off < packed.length; off += width) {
      const v = toBig(packed.subarray(off, off + width));
      if (v <= 1n || v >= n2) throw new RangeError('a precomputed randomiser is out of range');
      this.#items.push(v);
    }
  }

  /** One unused randomiser, or null when the store is empty. */
  take(): bigint | null {
    if (this.#next >= this.#items.length) return null;
    const v = this.#items[this.#next]!;
    this.#items[this.#next++] = 0n;
    if (this.#next === this.#items.length) { this.#items.length = 0; this.#next = 0; }
    return v;
  }
}

export class PaillierEncryptor {
  readonly #n: bigint;
  readonly #n2: bigint;
  readonly #source: RandomiserSource;
  readonly #fallback: PublicKey;
  readonly #precomputed: PrecomputedRandomisers | null;

  constructor(publicKey: PublicKey, options: { factors?: PaillierFactors | null; precomputed?: PrecomputedRandomisers | null } = {}) {
    if (publicKey.g !== publicKey.n + 1n) throw new RangeError('intersection-sum needs a Paillier key with g = n + 1');
    this.#n = publicKey.n;
    this.#n2 = publicKey._n2;
    this.#fallback = publicKey;
    this.#source = new RandomiserSource(publicKey, options.factors ?? null);
    const pre = options.precomputed ?? null;
    if (pre !== null && pre.n !== publicKey.n) throw new RangeError('the precomputed randomisers are for another Paillier key');
    this.#precomputed = pre;
  }

  /** Whether OpenSSL computes the randomiser (false: paillier-bigint's BigInt path). */
  get accelerated(): boolean { return this.#source.path !== 'bigint'; }

  /** How a fresh randomiser is computed when none is precomputed. */
  get path(): 'crt' | 'openssl' | 'bigint' { return this.#source.path; }

  /** r^n mod n² for a fresh r: a precomputed one while they last. */
  #randomiser(): bigint {
    return this.#precomputed?.take() ?? this.#source.next();
  }

  encrypt(m: bigint): bigint {
    if (m < 0n || m >= this.#n) throw new RangeError('a Paillier plaintext is in [0, n)');
    if (this.#source.path === 'bigint' && this.#precomputed === null) return this.#fallback.encrypt(m);
    return (((1n + m * this.#n) % this.#n2) * this.#randomiser()) % this.#n2;
  }

  /** The same plaintext under fresh randomness (so a ciphertext cannot be linked to its inputs). */
  rerandomise(c: bigint): bigint {
    return (c * this.#randomiser()) % this.#n2;
  }
}
