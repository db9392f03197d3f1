/**
 * The primitives of secure aggregation, all from node:crypto:
 *
 *  - X25519 (RFC 7748) key agreement; a private key is handled as its 32 raw bytes so it
 *    can be Shamir-shared (Bonawitz et al. 2017 §4: s_u^SK is shared for dropout recovery);
 *  - HKDF-SHA256 (RFC 5869) from a shared point to a 256-bit seed or key, bound to the
 *    session and to the (ordered) pair of participants;
 *  - AES-256-GCM for the Shamir shares in transit through the coordinator (the
 *    authenticated encryption of Bonawitz §4 round ShareKeys);
 *  - Ed25519 (RFC 8032) signatures by each participant's pinned node key over a
 *    length-prefixed transcript, so no field can be shifted into another.
 */
import {
  createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync,
  randomBytes, sign, verify, type KeyObject,
} from 'node:crypto';
import { FlError } from '../errors.ts';

/** PKCS#8 DER of an X25519 private key = this 16-byte prefix ‖ 32 raw bytes (RFC 8410 §7). */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** SPKI DER of an X25519 public key = this 12-byte prefix ‖ 32 raw bytes (RFC 8410 §4). */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface DhKeyPair {
  /** 32 raw bytes; secret. */
  readonly secret: Uint8Array;
  /** 32 raw bytes. */
  readonly public: Uint8Array;
}

export function generateDhKeyPair(): DhKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    secret: new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(X25519_PKCS8_PREFIX.length)),
    public: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length)),
  };
}

function privateKeyOf(secret: Uint8Array): KeyObject {
  if (secret.length !== 32) throw new FlError('FL_PARAMETERS_INVALID', 'an X25519 secret key is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
}

function publicKeyOf(pub: Uint8Array): KeyObject {
  if (pub.length !== 32) throw new FlError('FL_MESSAGE_FORGED', 'an X25519 public key is 32 bytes');
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
}

/** A raw X25519 secret as a KeyObject, built once by a participant that agrees with many neighbours. */
export function dhPrivateKey(secret: Uint8Array): KeyObject {
  return privateKeyOf(secret);
}

/** The public key of a raw X25519 secret (used to check a reconstructed secret against the advertised key). */
export function dhPublicOf(secret: Uint8Array): Uint8Array {
  return new Uint8Array(createPublicKey(privateKeyOf(secret)).export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length));
}

/**
 * A 256-bit key or seed agreed by two participants: HKDF-SHA256 over X25519(a, B), with the
 * session id as salt and the purpose and the two ids (in a fixed order) as info, so a seed
 * never serves two sessions, two purposes or two pairs.
 */
export function agree(secret: Uint8Array | KeyObject, peerPublic: Uint8Array, session: string, purpose: string, a: string, b: string): Buffer {
  const shared = diffieHellman({ privateKey: secret instanceof Uint8Array ? privateKeyOf(secret) : secret, publicKey: publicKeyOf(peerPublic) });
  if (shared.every((x) => x === 0)) throw new FlError('FL_MESSAGE_FORGED', 'a participant advertised a low-order X25519 key');
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return Buffer.from(hkdfSync('sha256', shared, Buffer.from(session), transcript(['gatehouse/secagg', purpose, lo, hi]), 32));
}

/** Length-prefixed concatenation: no two different field lists give the same bytes. */
export function transcript(fields: readonly (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const b = typeof f === 'string' ? Buffer.from(f, 'utf8') : Buffer.from(f.buffer, f.byteOffset, f.byteLength);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

export function digest(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function signFields(key: KeyObject, fields: readonly (string | Uint8Array)[]): Uint8Array {
  return new Uint8Array(sign(null, digest(transcript(fields)), key));
}

export function verifyFields(key: KeyObject, fields: readonly (string | Uint8Array)[], signature: Uint8Array): boolean {
  try {
    return verify(null, digest(transcript(fields)), key, signature);
  } catch {
    return false;
  }
}

/** AES-256-GCM with a fresh 96-bit nonce; output nonce ‖ ciphertext ‖ tag. */
export function seal(key: Buffer, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return new Uint8Array(Buffer.concat([nonce, body, c.getAuthTag()]));
}

/** Opens what `seal` produced; null if it was altered, or sealed for another pair or session. */
export function open(key: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
  if (sealed.length < 28) return null;
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  try {
    const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
    d.setAAD(aad);
    d.setAuthTag(b.subarray(b.length - 16));
    return Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]);
  } catch {
    return null;
  }
}
