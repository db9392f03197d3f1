/**
 * The names and key text of the federation, kept apart from certificate minting so that
 * parsing a workspace's pins loads no X.509 library.
 *
 * A pinned key is `ed25519:<base64url of the 32-byte public key>` (RFC 8032 §5.1.5).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { FederationError } from './errors.ts';

/** Node ids are DNS-label-like so they fit a certificate CN, a header and a log line. */
export const NODE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Regions and zones: lower-case words joined by dashes (eu-west, us-east, partner-net). */
export const REGION = /^[a-z0-9][a-z0-9-]{0,62}$/;

const KEY_PREFIX = 'ed25519:';
/** The SPKI DER of an Ed25519 key is this fixed 12-byte prefix and the 32-byte raw key (RFC 8410 §4). */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface NodeIdentity {
  readonly nodeId: string;
  readonly region: string;
  readonly jurisdiction: string;
  /** `ed25519:<base64url of the 32-byte public key>`, the text that peers pin. */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
  readonly certPem: string;
  readonly keyPem: string;
}

/** The text form peers pin, from a public key object. */
export function publicKeyText(key: KeyObject): string {
  if (key.asymmetricKeyType !== 'ed25519') throw new FederationError('NODE_KEY_MISMATCH', 'node keys must be Ed25519');
  const der = key.export({ format: 'der', type: 'spki' });
  return KEY_PREFIX + der.subarray(ED25519_SPKI_PREFIX.length).toString('base64url');
}

/** Parses a pinned key text into a key object; null when it is not a well-formed Ed25519 key. */
export function parsePublicKey(text: string): KeyObject | null {
  if (!text.startsWith(KEY_PREFIX)) return null;
  const raw = Buffer.from(text.slice(KEY_PREFIX.length), 'base64url');
  if (raw.length !== 32 || raw.toString('base64url') !== text.slice(KEY_PREFIX.length)) return null;
  try {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
}

