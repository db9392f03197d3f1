/**
 * Validation of tokens from external OpenID Connect providers (OpenID Connect Core 1.0
 * §3.1.3.7 for ID tokens; RFC 9068 for JWT access tokens; RFC 8725 JWT best practices).
 *
 * An `OidcVerifier` trusts one issuer. It checks the signature against the provider's
 * JWK Set (RFC 7517) — fetched from `jwksUri` with `jose.createRemoteJWKSet` (timeout,
 * cooldown, and a refetch when a token names an unknown `kid`, which is how providers
 * rotate keys) or given inline — with an algorithm allowlist that admits asymmetric
 * algorithms only, so `alg: none` and HS256 keyed with a provider's public key are
 * refused before any key is used. It then checks iss, aud, exp (required), nbf, and maps
 * claims to the principal id and the attributes Cedar decides on.
 *
 * Errors are the identity errors of ./session.ts (TOKEN_* codes) plus the OIDC_* ones
 * below. Nothing here writes anywhere.
 */
import {
  createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify,
  type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey,
} from 'jose';
import { IdentityError } from './password.ts';
import type { ClaimMapping, OidcVerifierOptions } from '../model/oidc-config.ts';

export type { ClaimMapping, OidcVerifierOptions };
import { IdentityConfigInvalid, TokenClaimInvalid, TokenMalformed, fromJoseError } from './session.ts';

/** The provider's JWK Set could not be fetched in time or is not a valid JWK Set. */
export class OidcJwksUnavailable extends IdentityError {
  constructor(options?: { cause?: unknown }) {
    // 503, not 401: the caller's token may be fine; the provider is unreachable.
    super('OIDC_JWKS_UNAVAILABLE', 'the identity provider\'s signing keys are unavailable', 503, options);
  }
}
/** The claim mapped to the principal (or another required claim) is absent. */
export class OidcClaimMissing extends IdentityError {
  readonly claim: string;
  constructor(claim: string) {
    super('OIDC_CLAIM_MISSING', `the token has no "${claim}" claim`, 401);
    this.claim = claim;
  }
}
/** A mapped claim has the wrong type (e.g. groups that is not a list of strings). */
export class OidcClaimInvalid extends IdentityError {
  readonly claim: string;
  constructor(claim: string) {
    super('OIDC_CLAIM_INVALID', `the token's "${claim}" claim has an unexpected type`, 401);
    this.claim = claim;
  }
}
/** The principal is mapped from `email`, but the provider does not vouch for the address. */
export class OidcEmailUnverified extends IdentityError {
  constructor() { super('OIDC_EMAIL_UNVERIFIED', 'the token\'s email address is not verified by the identity provider', 401); }
}

/** Asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037). HS* and none can never be configured. */
const ASYMMETRIC = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);
export const DEFAULT_OIDC_ALGORITHMS: readonly string[] = ['RS256', 'ES256', 'EdDSA'];


export interface PrincipalAttributes {
  readonly org: string | null;
  readonly groups: readonly string[];
  readonly clearance: string | null;
  readonly region: string | null;
  readonly [attribute: string]: unknown;
}

export interface OidcIdentity {
  readonly principalId: string;
  readonly attributes: PrincipalAttributes;
  readonly issuer: string;
  readonly subject: string | null;
  /** Epoch seconds. */
  readonly expiresAt: number;
  /** RFC 8176 methods the provider reports, if any (for MFA policy). */
  readonly amr: readonly string[];
  /** `auth_time` (epoch seconds) if the provider reports it. */
  readonly authTime: number | null;
}

const BUILTIN = new Set(['principal', 'org', 'groups', 'clearance', 'region']);

function claimAt(payload: JWTPayload, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let cur: unknown = payload;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function optionalString(payload: JWTPayload, claim: string | undefined): string | null {
  if (claim === undefined) return null;
  const v = claimAt(payload, claim);
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new OidcClaimInvalid(claim);
}

export class OidcVerifier {
  readonly issuer: string;
  readonly algorithms: readonly string[];
  #audience: string | string[];
  #keys: JWTVerifyGetKey;
  #tolerance: number;
  #mapping: ClaimMapping;
  #prefix: string;
  #requireVerifiedEmail: boolean;
  #typ: string | undefined;

  constructor(options: OidcVerifierOptions) {
    if (typeof options.issuer !== 'string' || options.issuer === '') throw new IdentityConfigInvalid('oidc issuer must be a non-empty string');
    const aud = typeof options.audience === 'string' ? [options.audience] : options.audience;
    if (!Array.isArray(aud) || aud.length === 0 || !aud.every((a) => typeof a === 'string' && a !== '')) throw new IdentityConfigInvalid('oidc audience must be a non-empty string or list of strings');
    const algorithms = options.algorithms ?? DEFAULT_OIDC_ALGORITHMS;
    if (!Array.isArray(algorithms) || algorithms.length === 0) throw new IdentityConfigInvalid('oidc algorithms must be a non-empty list');
    for (const a of algorithms) {
      if (!ASYMMETRIC.has(a)) throw new IdentityConfigInvalid(`oidc algorithm ${JSON.stringify(a)} is not allowed: only asymmetric signature algorithms can verify a provider's tokens`);
    }
    const tol = options.clockToleranceSec ?? 30;
    if (!Number.isSafeInteger(tol) || tol < 0 || tol > 300) throw new IdentityConfigInvalid('oidc clockToleranceSec must be an integer in [0, 300]');
    const mapping = options.claimMapping ?? { principal: 'sub' };
    if (typeof mapping.principal !== 'string' || mapping.principal === '') throw new IdentityConfigInvalid('oidc claimMapping.principal must name a claim');
    for (const [k, v] of Object.entries(mapping)) {
      if (v !== undefined && (typeof v !== 'string' || v === '')) throw new IdentityConfigInvalid(`oidc claimMapping.${k} must name a claim`);
    }
    if ((options.jwksUri === undefined) === (options.jwks === undefined)) throw new IdentityConfigInvalid('oidc needs exactly one of jwksUri and jwks');
    if (options.jwksUri !== undefined) {
      let url: URL;
      try { url = new URL(options.jwksUri); } catch { throw new IdentityConfigInvalid('oidc jwksUri is not a URL'); }
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
        throw new IdentityConfigInvalid('oidc jwksUri must use https (plain http only on a loopback address)');
      }
      const remote = createRemoteJWKSet(url, {
        timeoutDuration: options.jwksTimeoutMs ?? 5000,
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
      });
      // fetch() failures (refused, DNS, TLS) are plain errors: tell them apart from bad tokens here.
      this.#keys = async (header, token) => {
        try {
          return await remote(header, token);
        } catch (err) {
          if (err instanceof joseErrors.JOSEError) throw err;
          throw new OidcJwksUnavailable({ cause: err });
        }
      };
    } else {
      try {
        this.#keys = createLocalJWKSet(options.jwks!);
      } catch (err) {
        throw new IdentityConfigInvalid(`oidc jwks is not a valid JWK Set: ${(err as Error).message}`);
      }
    }
    this.issuer = options.issuer;
    this.#audience = [...aud];
    this.algorithms = [...algorithms];
    this.#tolerance = tol;
    this.#mapping = mapping;
    this.#prefix = options.principalPrefix ?? '';
    this.#requireVerifiedEmail = options.requireVerifiedEmail ?? true;
    this.#typ = options.typ;
  }

  /** Verifies a provider's token and maps it to a principal and its attributes. */
  async verify(token: string, options: { now?: Date } = {}): Promise<OidcIdentity> {
    if (typeof token !== 'string' || token.length > 16_384) throw new TokenMalformed();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        algorithms: [...this.algorithms],
        issuer: this.issuer,
        audience: this.#audience,
        clockTolerance: this.#tolerance,
        requiredClaims: ['exp'],
        ...(options.now ? { currentDate: options.now } : {}),
        ...(this.#typ ? { typ: this.#typ } : {}),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) throw new OidcJwksUnavailable({ cause: err });
      throw fromJoseError(err);
    }
    return this.#map(payload);
  }

  #map(payload: JWTPayload): OidcIdentity {
    const m = this.#mapping;
    const raw = claimAt(payload, m.principal);
    if (raw === undefined || raw === null || raw === '') throw new OidcClaimMissing(m.principal);
    if (typeof raw !== 'string' || raw.length > 256) throw new OidcClaimInvalid(m.principal);
    if (m.principal === 'email' && this.#requireVerifiedEmail && payload['email_verified'] !== true) throw new OidcEmailUnverified();

    let groups: string[] = [];
    if (m.groups !== undefined) {
      const g = claimAt(payload, m.groups);
      if (typeof g === 'string') groups = [g];
      else if (Array.isArray(g) && g.every((x) => typeof x === 'string')) groups = [...new Set(g as string[])];
      else if (g !== undefined && g !== null) throw new OidcClaimInvalid(m.groups);
    }
    const attributes: Record<string, unknown> = {
      org: optionalString(payload, m.org),
      groups,
      clearance: optionalString(payload, m.clearance),
      region: optionalString(payload, m.region),
    };
    for (const [name, claim] of Object.entries(m)) {
      if (BUILTIN.has(name) || claim === undefined) continue;
      const v = claimAt(payload, claim);
      if (v === undefined) { attributes[name] = null; continue; }
      const ok = v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))
        || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
      if (!ok) throw new OidcClaimInvalid(claim);
      attributes[name] = v;
    }

    const amr = payload['amr'];
    if (amr !== undefined && !(Array.isArray(amr) && amr.every((x) => typeof x === 'string'))) throw new TokenClaimInvalid('amr');
    const authTime = payload['auth_time'];
    if (authTime !== undefined && !Number.isSafeInteger(authTime)) throw new TokenClaimInvalid('auth_time');
    return {
      principalId: this.#prefix + raw,
      attributes: attributes as PrincipalAttributes,
      issuer: this.issuer,
      subject: typeof payload.sub === 'string' ? payload.sub : null,
      expiresAt: payload.exp as number,
      amr: (amr as string[] | undefined) ?? [],
      authTime: (authTime as number | undefined) ?? null,
    };
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
