/**
 * Secrets at rest (TOTP secrets) sealed with AES-256-GCM (NIST SP 800-38D) under a key
 * derived with scrypt (RFC 7914; N=2^15, r=8, p=1, 16-byte random salt) from a
 * passphrase — the approach and the primitives of the audit log's key files
 * (src/audit/keys.ts `seal`/`unseal`: random 96-bit IV, the value's *purpose* as
 * additional authenticated data so a sealed value cannot be moved to another slot or
 * another user).
 *
 * The passphrase comes from the `passphrase` option or GATEHOUSE_KEY_PASSPHRASE; it is
 * never stored. What is stored beside the sealed values is `SecretBoxParams`: the KDF
 * parameters and a key check value (HMAC-SHA-256 of a fixed label under the derived key,
 * 128 bits), so a wrong passphrase is reported as such at open instead of as damage.
 *
 * Sealed value (one line, versioned):
 *
 *     gh-sb1.<key id>.<iv>.<tag>.<ciphertext>      (base64url fields)
 *
 * where the key id is the first 8 bytes of the check value.
 */
import { createHmac, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { DEMO_PASSPHRASE, PASSPHRASE_ENV, seal, unseal } from '../audit/keys.ts';
import { IdentityError } from './password.ts';
import { IdentityStoreUnavailable } from './session.ts';

/** The passphrase is missing. */
export class SecretKeyUnavailable extends IdentityError {
  constructor() { super('IDENTITY_SECRET_KEY_UNAVAILABLE', `no key passphrase: set ${PASSPHRASE_ENV} or pass the passphrase option`, 500); }
}

/** The passphrase does not derive the key the secrets were sealed with. */
export class SecretKeyWrong extends IdentityError {
  constructor() { super('IDENTITY_SECRET_KEY_WRONG', 'the key passphrase does not match the one the identity secrets were sealed with', 500); }
}

/** A sealed value is malformed or fails authentication (tampered, or moved to another slot). */
export class SecretTampered extends IdentityError {
  constructor(purpose: string) { super('IDENTITY_SECRET_TAMPERED', `sealed ${purpose.split(':')[0]} secret is damaged or was tampered with`, 500); }
}

export interface SecretBoxParams {
  readonly version: 1;
  readonly kdf: 'scrypt';
  readonly N: number;
  readonly r: number;
  readonly p: number;
  /** base64url, 16 bytes. */
  readonly salt: string;
  /** base64url HMAC-SHA-256(key, CHECK_LABEL), first 16 bytes. */
  readonly check: string;
}

const PREFIX = 'gh-sb1';
const CHECK_LABEL = 'gatehouse/identity/secret-box/key-check/v1';
const SCRYPT = { N: 2 ** 15, r: 8, p: 1 };

/** The passphrase from the option, else the environment, else the demo one when allowed. */
export function resolveSecretPassphrase(option: string | undefined, allowDemo = false): string {
  const p = option ?? process.env[PASSPHRASE_ENV];
  if (p !== undefined && p !== '') return p;
  if (allowDemo) return DEMO_PASSPHRASE;
  throw new SecretKeyUnavailable();
}

function derive(passphrase: string, p: { N: number; r: number; p: number; salt: string }): Buffer {
  if (!Number.isSafeInteger(p.N) || p.N < 2 ** 14 || p.N > 2 ** 20 || !(p.r >= 1 && p.r <= 32) || !(p.p >= 1 && p.p <= 16)) {
    throw new SecretKeyWrong();
  }
  return scryptSync(passphrase, Buffer.from(p.salt, 'base64url'), 32, { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.N * p.r * p.p + 32 * 1024 * 1024 });
}

function checkValue(key: Buffer): Buffer {
  return createHmac('sha256', key).update(CHECK_LABEL).digest().subarray(0, 16);
}

export class SecretBox {
  readonly params: SecretBoxParams;
  #key: Buffer;
  readonly #keyId: string;

  private constructor(params: SecretBoxParams, key: Buffer) {
    this.params = params;
    this.#key = key;
    this.#keyId = Buffer.from(params.check, 'base64url').subarray(0, 8).toString('base64url');
  }

  /** A new box with a fresh salt; store `box.params` next to what it seals. */
  static create(passphrase: string): SecretBox {
    const salt = randomBytes(16).toString('base64url');
    const key = derive(passphrase, { ...SCRYPT, salt });
    const params: SecretBoxParams = { version: 1, kdf: 'scrypt', ...SCRYPT, salt, check: checkValue(key).toString('base64url') };
    return new SecretBox(params, key);
  }

  /** Re-derives the key of an existing box; a wrong passphrase throws SecretKeyWrong. */
  static open(params: SecretBoxParams, passphrase: string): SecretBox {
    if (params?.version !== 1 || params.kdf !== 'scrypt' || typeof params.salt !== 'string' || typeof params.check !== 'string') throw new SecretKeyWrong();
    const key = derive(passphrase, params);
    const expected = Buffer.from(params.check, 'base64url');
    const got = checkValue(key);
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) {
      key.fill(0);
      throw new SecretKeyWrong();
    }
    return new SecretBox(params, key);
  }

  /** Seals `plain` for `purpose` (e.g. "totp:<principal id>"). */
  seal(purpose: string, plain: Uint8Array): string {
    this.#live();
    const s = seal(this.#key, purpose, Buffer.from(plain));
    const b = (x: string) => Buffer.from(x, 'base64').toString('base64url');
    return [PREFIX, this.#keyId, b(s.iv), b(s.tag), b(s.ct)].join('.');
  }

  /** Opens a sealed value; the caller should wipe the result (`fill(0)`) after use. */
  open(purpose: string, sealed: string): Buffer {
    this.#live();
    const parts = typeof sealed === 'string' ? sealed.split('.') : [];
    if (parts.length !== 5 || parts[0] !== PREFIX) throw new SecretTampered(purpose);
    const [, keyId, iv, tag, ct] = parts as [string, string, string, string, string];
    if (keyId !== this.#keyId) throw new SecretKeyWrong();
    // Pin the IV and tag lengths: createDecipheriv would accept a tag truncated to 4 bytes.
    if (Buffer.from(iv, 'base64url').length !== 12 || Buffer.from(tag, 'base64url').length !== 16) throw new SecretTampered(purpose);
    const b = (x: string) => Buffer.from(x, 'base64url').toString('base64');
    try {
      return unseal(this.#key, purpose, { iv: b(iv), tag: b(tag), ct: b(ct) });
    } catch {
      throw new SecretTampered(purpose);
    }
  }

  /** Wipes the key; the box cannot be used afterwards. */
  close(): void {
    this.#key.fill(0);
    this.#key = Buffer.alloc(0);
  }

  #live(): void {
    if (this.#key.length !== 32) throw new IdentityStoreUnavailable('the secret box is closed');
  }
}
