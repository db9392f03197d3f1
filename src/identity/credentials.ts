/**
 * Typed credentials and the one table of their verifiers.
 *
 * Each front says what kind of credential it received: HTTP and the CLI pass a bearer
 * string (API key, session token, OIDC token or service key); the wire front, after SCRAM,
 * passes the id of the connection password it verified; a TLS front passes the subject of a
 * client certificate the TLS layer verified. A bearer string is never read as one of the
 * other kinds, so no client can forge a wire or certificate credential through a header:
 * the kind is a field the front sets, not a prefix inside the value.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AttributeValue, PrincipalDef } from '../model/types.ts';
import type { ApiKeyScopes } from './api-keys.ts';
import type { IdentityService } from './service.ts';
import { looksLikeJwt } from './jwt-shape.ts';
import type { OidcVerifier } from './oidc.ts';
import { GatehouseError } from '../errors.ts';
import { apiKeyDigest } from './digest.ts';
import { identityError } from './to-gatehouse-error.ts';

export type Credential =
  | { readonly kind: 'bearer'; readonly value: string }
  | { readonly kind: 'connection-password'; readonly id: string }
  | { readonly kind: 'client-certificate'; readonly subject: string };

export type CredentialKind = Credential['kind'];

/** What a front received: a typed credential, a bearer string (HTTP, CLI, tests), or nothing. */
export type PresentedCredential = Credential | string | null;

export function toCredential(c: PresentedCredential | undefined): Credential | null {
  if (c === null || c === undefined) return null;
  if (typeof c === 'string') return c.length === 0 ? null : { kind: 'bearer', value: c };
  return c;
}

/** Who a verified credential names, before workspace rules (MFA groups, elevations) apply. */
export interface Verified {
  readonly principal: PrincipalDef;
  /** Seconds since the epoch of the last multi-factor event, or null. */
  readonly mfaAt: number | null;
  readonly scopes?: ApiKeyScopes;
}

/** What the verifiers read: the workspace's principals and keys, its OIDC issuers, the identity stores. */
export interface VerifierDeps {
  readonly principals: ReadonlyMap<string, PrincipalDef>;
  /** Workspace API keys by SHA-256 digest. */
  readonly keyIndex: ReadonlyMap<string, PrincipalDef>;
  readonly oidc: ReadonlyMap<string, OidcVerifier>;
  readonly mtlsPrincipals: Readonly<Record<string, string>>;
  identity(): Promise<IdentityService>;
  now(): Date;
}

/**
 * A bearer value is visible ASCII and nothing else (RFC 6750 §2.1 b64token is a subset).
 * A key with a space, tab, non-breaking space or any other whitespace or control character
 * around or inside it is not the key: it is refused before any lookup, never trimmed, so
 * "KEY", " KEY", "KEY\t" and "KEY\u00a0" are not four spellings of one credential.
 */
const BEARER_VALUE = /^[\x21-\x7E]+$/;

/** True when `value` can be a bearer credential exactly as given (no whitespace, no controls). */
export function isExactBearerValue(value: string): boolean {
  return typeof value === 'string' && value.length <= MAX_CREDENTIAL && BEARER_VALUE.test(value);
}

/**
 * The Authorization header for a key given on a command line or in the environment. A key
 * with surrounding whitespace is refused here rather than sent: HTTP clients strip leading
 * and trailing whitespace from header values, which would turn "KEY " back into "KEY".
 */
export function bearerHeader(key: string): string {
  if (!isExactBearerValue(key)) throw new GatehouseError('AUTH_INVALID', 'the API key contains whitespace or characters no key has', { hint: 'pass the key exactly as issued, without spaces, tabs or line breaks around it' });
  return `Bearer ${key}`;
}

/** Store-issued service keys: "gh_" and 32 random bytes, base64url. */
const STORE_KEY = /^gh_[A-Za-z0-9_-]{43}$/;
const MAX_CREDENTIAL = 4096;

type Verifier<K extends CredentialKind> = (deps: VerifierDeps, c: Extract<Credential, { kind: K }>) => Promise<Verified>;

function principalOf(deps: VerifierDeps, id: string, what: string): PrincipalDef {
  const p = deps.principals.get(id);
  if (!p) throw new GatehouseError('AUTH_INVALID', `the ${what} belongs to no principal of this workspace`, { hint: 'sign in again' });
  return p;
}

async function verifyBearer(deps: VerifierDeps, c: { value: string }): Promise<Verified> {
  const value = c.value;
  if (!isExactBearerValue(value)) throw new GatehouseError('AUTH_INVALID', 'the credential is not valid', { hint: 'send the key exactly as issued: whitespace around or inside it is not accepted' });
  if (looksLikeJwt(value)) {
    const oidc = deps.oidc.get(unverifiedIssuer(value) ?? '');
    if (oidc) return verifyOidc(deps, oidc, value);
    let who;
    try { who = await (await deps.identity()).verify(value); } catch (err) { throw identityError(err, 'the session token is not valid'); }
    const otp = who.amr.includes('otp');
    return { principal: principalOf(deps, who.principalId, 'session'), mfaAt: otp ? who.mfaAt : null };
  }
  const digest = apiKeyDigest(value);
  const p = deps.keyIndex.get(digest);
  // The map lookup is by digest of a high-entropy key; compare once more in constant time.
  if (p && p.apiKeySha256.some((k) => timingSafeEqual(Buffer.from(k, 'hex'), Buffer.from(digest, 'hex')))) return { principal: p, mfaAt: null };
  if (STORE_KEY.test(value)) {
    // A service key issued by an administrator: scoped, expiring, revocable.
    let v;
    try { v = await (await deps.identity()).apiKeys.verify(value); } catch (err) { throw identityError(err, 'the credential is not valid'); }
    return { principal: principalOf(deps, v.principalId, 'key'), mfaAt: null, scopes: v.scopes };
  }
  throw new GatehouseError('AUTH_INVALID', 'the credential is not valid', { hint: 'check the API key; revoked keys stop working at once' });
}

/**
 * A token from an external OpenID Connect provider: verified against its JWKS (issuer,
 * audience, expiry, algorithm allowlist); the principal is the workspace's if it exists,
 * else one built from the mapped claims (org, groups, clearance, region, ...).
 */
async function verifyOidc(deps: VerifierDeps, verifier: OidcVerifier, token: string): Promise<Verified> {
  let who;
  try { who = await verifier.verify(token); } catch (err) { throw identityError(err, 'the identity token is not valid'); }
  const known = deps.principals.get(who.principalId);
  const attributes: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(who.attributes)) {
    if (k === 'groups') continue;
    if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v))) attributes[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) attributes[k] = v as string[];
  }
  const p: PrincipalDef = known ?? { id: who.principalId, kind: 'user', displayName: null, groups: [...who.attributes.groups], attributes, apiKeySha256: [] };
  const mfa = who.amr.some((m) => m === 'mfa' || m === 'otp' || m === 'hwk' || m === 'swk');
  return { principal: p, mfaAt: mfa ? (who.authTime ?? Math.floor(deps.now().getTime() / 1000)) : null };
}

/** Set by the wire front after SCRAM with a connection password (never from a client). */
async function verifyConnectionPassword(deps: VerifierDeps, c: { id: string }): Promise<Verified> {
  let r;
  try { r = await (await deps.identity()).connectionPasswords.resolve(c.id); } catch (err) { throw identityError(err, 'the connection password is no longer valid'); }
  return { principal: principalOf(deps, r.principalId, 'connection'), mfaAt: r.mfaAt };
}

/** Set by a TLS front from a client certificate the TLS layer verified (never from a header). */
async function verifyClientCertificate(deps: VerifierDeps, c: { subject: string }): Promise<Verified> {
  const pid = deps.mtlsPrincipals[c.subject];
  const p = pid ? deps.principals.get(pid) : undefined;
  if (!p) throw new GatehouseError('AUTH_INVALID', 'the client certificate maps to no principal', { hint: 'an administrator maps certificate subjects in identity.mtls.principals' });
  return { principal: p, mfaAt: null };
}

/** The one table: a credential kind → its verifier. */
export const VERIFIERS: { readonly [K in CredentialKind]: Verifier<K> } = {
  'bearer': verifyBearer,
  'connection-password': verifyConnectionPassword,
  'client-certificate': verifyClientCertificate,
};

export function verifyCredential(deps: VerifierDeps, c: Credential): Promise<Verified> {
  return (VERIFIERS[c.kind] as Verifier<CredentialKind>)(deps, c as never);
}

/** The `iss` claim of a JWT, read without verifying (only to choose the verifier). */
function unverifiedIssuer(token: string): string | null {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : null;
  } catch {
    return null;
  }
}
