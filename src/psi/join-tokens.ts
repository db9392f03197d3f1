/**
 * Keyed-hash join tokens: the simple case of a private join, when the members of a
 * collaboration share a secret key and only need rows to meet on a common identifier without
 * the identifier itself leaving anyone's node. Each member replaces the join column by
 * HMAC-SHA-256(k, domain ‖ normalised value) (RFC 2104) before contributing; equal values give
 * equal tokens, and without k a token cannot be tested against a guessed value (unlike a
 * plain hash of an account number, which a dictionary reverses).
 *
 * Weaker than PSI: anyone holding k can test guesses, and the compute node sees which tokens
 * match. The key is derived per collaboration and per column with HKDF (RFC 5869) from a
 * collaboration secret, so tokens from two collaborations or two columns never match.
 */
import { createHmac, hkdfSync } from 'node:crypto';

export function joinTokenKey(collaborationSecret: Uint8Array, collaborationId: string, column: string): Uint8Array {
  if (collaborationSecret.length < 32) throw new RangeError('A collaboration secret has at least 32 bytes');
  return new Uint8Array(hkdfSync('sha256', collaborationSecret, Buffer.from(collaborationId, 'utf8'), Buffer.from(`gatehouse join token v1\0${column}`, 'utf8'), 32));
}

/** Trim and case-fold, so ' GB29NWBK6016 ' and 'gb29nwbk6016' meet. */
export function normaliseJoinValue(value: string): string {
  return value.trim().normalize('NFC').toLowerCase();
}

export function joinToken(key: Uint8Array, value: string): string {
  return createHmac('sha256', key).update(normaliseJoinValue(value), 'utf8').digest('base64url');
}
