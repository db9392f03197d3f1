/**
 * The shape of the workspace's `posture:` block once parsed: device-posture issuers, client
 * certificates and network zones. The identity part owns the parser and the checks
 * (src/identity/posture.ts); the shape lives here so that the workspace model needs nothing
 * from the parts that read it.
 */
import type { KeyObject } from 'node:crypto';
import type { BlockList } from 'node:net';

/** Posture claims an endpoint agent attests; anything but the boolean `true` counts as false. */
export const POSTURE_CHECKS = ['disk_encrypted', 'os_patched', 'edr_running', 'screen_lock', 'managed'] as const;
export type PostureCheck = (typeof POSTURE_CHECKS)[number];

export const POSTURE_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type PostureAlgorithm = (typeof POSTURE_ALGORITHMS)[number];
export interface TrustedPostureKey {
  /** Matched against the token's `kid` header when both are present. */
  readonly kid: string | null;
  readonly alg: PostureAlgorithm;
  readonly key: KeyObject;
}

export interface TrustedPostureIssuer {
  /** The token's `iss`. */
  readonly issuer: string;
  readonly keys: readonly TrustedPostureKey[];
}

/** A client-certificate subject (`CN=…`, `DNS:…`, `URI:…`, `email:…`) mapped to a device or principal. */
export interface CertificateIdentity {
  readonly subject: string;
  readonly deviceId: string | null;
  /** When set, the certificate is accepted only for this principal. */
  readonly principalId: string | null;
}

export interface ClientCertificateConfig {
  /** SHA-256 fingerprints of the issuing CA certificates, lower-case hex without colons. */
  readonly trustedIssuers: readonly string[];
  readonly identities: readonly CertificateIdentity[];
  /** For certificates not listed in `identities`: take the device id from this field, or refuse. */
  readonly deviceIdFrom: 'CN' | 'DNS' | 'URI' | null;
}

export interface NetworkZone {
  readonly name: string;
  readonly cidrs: readonly string[];
  readonly blockList: BlockList;
}

export interface PostureConfig {
  readonly issuers: readonly TrustedPostureIssuer[];
  /** Expected `aud`, or null to not require one. */
  readonly audience: string | null;
  /** A token whose `iat` is older than this is stale (default 900 s = 15 min). */
  readonly maxAgeSec: number;
  /** Clock skew tolerated for `exp`, `nbf` and a future `iat` (default 30 s). */
  readonly clockToleranceSec: number;
  readonly algorithms: readonly PostureAlgorithm[];
  /** Checks that must all be true for `compliant` (default: all of POSTURE_CHECKS). */
  readonly requiredChecks: readonly PostureCheck[];
  /** Devices whose token `sub` is the device id: device id → principals that may present it. */
  readonly deviceOwners: ReadonlyMap<string, readonly string[]>;
  readonly clientCertificates: ClientCertificateConfig | null;
  /** First match wins, in the order configured. */
  readonly zones: readonly NetworkZone[];
  /** Zone of a valid address that matches no range (default `internet`). */
  readonly defaultZone: string;
}
