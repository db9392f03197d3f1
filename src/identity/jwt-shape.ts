/**
 * The shape test that tells a session token from an API key, in a module of its own so the
 * CLI's credential parsing (credentials.ts) does not load the identity service (and with it
 * the session keys, the user store and jose) just to classify a `--key`.
 */

/** A JWT has three base64url parts; API keys never do. */
export function looksLikeJwt(credential: string): boolean {
  return /^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}$/.test(credential);
}
