/**
 * The shape of one OpenID Connect provider in the workspace's `identity.oidc` list, once
 * parsed. The identity part owns the parser and the verifier (src/identity/oidc.ts); the
 * shape lives here so that the workspace model needs nothing from the parts that read it.
 */
import type { JSONWebKeySet } from 'jose';

/**
 * Claim names (dotted paths reach nested claims, e.g. "realm_access.roles") per attribute.
 * `principal` is required; org, groups, clearance and region are the attributes policies
 * use; any other key maps a further attribute under that name.
 */
export interface ClaimMapping {
  readonly principal: string;
  readonly org?: string;
  readonly groups?: string;
  readonly clearance?: string;
  readonly region?: string;
  readonly [attribute: string]: string | undefined;
}

export interface OidcVerifierOptions {
  /** Exact `iss` value the provider puts in its tokens. */
  readonly issuer: string;
  /** Accepted `aud` value(s): Gatehouse's client id at the provider. */
  readonly audience: string | readonly string[];
  /** The provider's `jwks_uri` (from its discovery document). One of jwksUri / jwks. */
  readonly jwksUri?: string | URL;
  /** An inline JWK Set (air-gapped deployments, tests). */
  readonly jwks?: JSONWebKeySet;
  /** Allowlist; default RS256, ES256, EdDSA. Symmetric algorithms and none are refused. */
  readonly algorithms?: readonly string[];
  /** Skew accepted on exp/nbf; default 30 s, at most 300 s. */
  readonly clockToleranceSec?: number;
  readonly claimMapping?: ClaimMapping;
  /** Prefixed to the principal id so two providers' "alice" never collide (e.g. "okta:"). Default none. */
  readonly principalPrefix?: string;
  /** With `principal: 'email'`, require `email_verified: true` (default true). */
  readonly requireVerifiedEmail?: boolean;
  /** Expected `typ` header (e.g. "at+jwt" for RFC 9068 access tokens); default not checked. */
  readonly typ?: string;
  /** Remote JWKS: fetch timeout (default 5000 ms). */
  readonly jwksTimeoutMs?: number;
  /** Remote JWKS: minimum time between refetches triggered by unknown kids (default 30 s). */
  readonly jwksCooldownMs?: number;
  /** Remote JWKS: how long a fetched set is used before refetching (default 10 min). */
  readonly jwksCacheMaxAgeMs?: number;
}
