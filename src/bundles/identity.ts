/**
 * A site's bundle identity: an Ed25519 key that signs the bundles it sends and an X25519 key
 * that bundles sent to it are encrypted to. The private keys are kept as PKCS#8 PEM
 * encrypted with the site's passphrase (AES-256-CBC under scrypt, node:crypto's PEM
 * encryption); the public half is a small JSON document the other site pins:
 *
 *   { "id": "st-avery-enclave", "signing": "<Ed25519 SPKI PEM>", "encryption": "<X25519 SPKI PEM>" }
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleRejected } from './errors.ts';

export interface PublicIdentity {
  readonly id: string;
  readonly signing: KeyObject;
  readonly encryption: KeyObject;
}

export interface SiteIdentity extends PublicIdentity {
  readonly signingKey: KeyObject;
  readonly encryptionKey: KeyObject;
}

const ID = /^[A-Za-z0-9._-]{1,64}$/;

export function generateIdentity(id: string): SiteIdentity {
  if (!ID.test(id)) throw new BundleRejected('a site id is 1 to 64 letters, digits, dots, dashes or underscores', 'BUNDLE_BAD_ID');
  const s = generateKeyPairSync('ed25519');
  const e = generateKeyPairSync('x25519');
  return { id, signing: s.publicKey, encryption: e.publicKey, signingKey: s.privateKey, encryptionKey: e.privateKey };
}

export function publicJson(p: PublicIdentity): string {
  return `${JSON.stringify({ id: p.id, signing: p.signing.export({ format: 'pem', type: 'spki' }), encryption: p.encryption.export({ format: 'pem', type: 'spki' }) }, null, 2)}\n`;
}

export function parsePublic(text: string): PublicIdentity {
  try {
    const j = JSON.parse(text) as { id?: unknown; signing?: unknown; encryption?: unknown };
    if (typeof j.id !== 'string' || !ID.test(j.id) || typeof j.signing !== 'string' || typeof j.encryption !== 'string') throw new Error('shape');
    const signing = createPublicKey(j.signing), encryption = createPublicKey(j.encryption);
    if (signing.asymmetricKeyType !== 'ed25519' || encryption.asymmetricKeyType !== 'x25519') throw new Error('types');
    return { id: j.id, signing, encryption };
  } catch {
    throw new BundleRejected('the public identity must be { id, signing: Ed25519 PEM, encryption: X25519 PEM }', 'BUNDLE_BAD_IDENTITY');
  }
}

/** Writes `identity.json` (public) and the two passphrase-encrypted private keys into `dir`. */
export function saveIdentity(dir: string, s: SiteIdentity, passphrase: string): void {
  if (passphrase.length < 12) throw new BundleRejected('the bundle passphrase must be at least 12 characters', 'BUNDLE_WEAK_PASSPHRASE');
  if (existsSync(join(dir, 'identity.json'))) throw new BundleRejected(`a bundle identity already exists in ${dir}`, 'BUNDLE_IDENTITY_EXISTS');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const enc = { format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase } as const;
  writeFileSync(join(dir, 'signing.key.pem'), s.signingKey.export(enc), { mode: 0o600 });
  writeFileSync(join(dir, 'encryption.key.pem'), s.encryptionKey.export(enc), { mode: 0o600 });
  writeFileSync(join(dir, 'identity.json'), publicJson(s));
}

export function loadIdentity(dir: string, passphrase: string): SiteIdentity {
  const pub = parsePublic(readFileSync(join(dir, 'identity.json'), 'utf8'));
  try {
    return {
      ...pub,
      signingKey: createPrivateKey({ key: readFileSync(join(dir, 'signing.key.pem')), passphrase }),
      encryptionKey: createPrivateKey({ key: readFileSync(join(dir, 'encryption.key.pem')), passphrase }),
    };
  } catch {
    throw new BundleRejected('the bundle identity could not be opened: wrong passphrase or damaged key files', 'BUNDLE_BAD_PASSPHRASE');
  }
}
