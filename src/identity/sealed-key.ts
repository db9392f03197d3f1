/**
 * An Ed25519 private key sealed under the key passphrase, as one JSON document — byte for
 * byte the format `loadOrCreateSealedEd25519` (src/audit/keys.ts) writes to a key file:
 *
 *   { "version": 1, "kdf": { "kdf": "scrypt", "N": 32768, "r": 8, "p": 1, "salt": b64 },
 *     "sealed": { "iv": b64, "tag": b64, "ct": b64 } }
 *
 * scrypt (RFC 7914) derives the key-encryption key; AES-256-GCM (`seal`/`unseal` of
 * src/audit/keys.ts, purpose as additional authenticated data) seals the PKCS#8 DER. Used to
 * keep the session signing keys in PostgreSQL, where every node unseals them with the same
 * passphrase. All primitives are node:crypto's.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { seal, unseal, type SealedSecret } from '../audit/keys.ts';

const SCRYPT = { N: 2 ** 15, r: 8, p: 1 };
const MAXMEM = 64 * 1024 * 1024;

interface KdfParams { readonly kdf: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string }
interface SealedKeyDocument { readonly version: 1; readonly kdf: KdfParams; readonly sealed: SealedSecret }

function kek(passphrase: string, kdf: KdfParams): Buffer {
  return scryptSync(passphrase, Buffer.from(kdf.salt, 'base64'), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: MAXMEM });
}

/** A fresh Ed25519 key and its sealed document. */
export function createSealedEd25519(passphrase: string, purpose: string): { key: KeyObject; document: string } {
  const kdf: KdfParams = { kdf: 'scrypt', ...SCRYPT, salt: randomBytes(16).toString('base64') };
  const k = kek(passphrase, kdf);
  const { privateKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    const doc: SealedKeyDocument = { version: 1, kdf, sealed: seal(k, purpose, der) };
    return { key: privateKey, document: JSON.stringify(doc, null, 2) + '\n' };
  } finally {
    der.fill(0);
    k.fill(0);
  }
}

/** Unseals a document; throws on a wrong passphrase, another purpose or any damage. */
export function openSealedEd25519(document: string, passphrase: string, purpose: string): KeyObject {
  const doc = JSON.parse(document) as SealedKeyDocument;
  const { kdf } = doc ?? {};
  // Parameters come from storage: accept only the ones this code writes (no cost inflation).
  if (doc?.version !== 1 || kdf?.kdf !== 'scrypt' || kdf.N !== SCRYPT.N || kdf.r !== SCRYPT.r || kdf.p !== SCRYPT.p || typeof kdf.salt !== 'string') {
    throw new Error('unknown sealed key format');
  }
  const k = kek(passphrase, kdf);
  const der = unseal(k, purpose, doc.sealed);
  k.fill(0);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}
