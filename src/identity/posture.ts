/**
 * Device posture and network zone, as attributes for Cedar (issue 4, "Device posture and
 * network zone"). Three independent sources, combined by `evaluatePosture`:
 *
 *  - a signed posture token: a JWT (RFC 7519, signed per RFC 7515) issued by an endpoint
 *    agent or a trusted proxy, verified with `jose` against the configured issuers' public
 *    keys (JWK, RFC 7517, or PEM/SPKI). Algorithms are an allowlist (EdDSA with Ed25519,
 *    RFC 8037; ES256, RFC 7518 §3.4) and each key is bound to exactly one algorithm, so a
 *    token cannot choose how it is checked (RFC 8725 §3.1, §2.1: `alg: none`, confusion);
 *  - a TLS client certificate (mTLS): the chain verified by node:tls (`authorized`), the
 *    issuer pinned by SHA-256 fingerprint, the subject CN / SAN mapped to a device or principal;
 *  - the network zone: the source address matched against configured CIDR ranges (IPv4 and
 *    IPv6, node:net `BlockList`).
 *
 * On the request path nothing here throws: unknown, stale, forged or mismatched posture is
 * the value `{ compliant: false, reason }` (fail closed). Only the configuration parser
 * throws (`PostureConfigInvalid`), at start-up. The token format and how an organisation
 * wires its endpoint tooling in are documented in docs/identity-posture-elevation.md.
 */
import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { BlockList, isIP, isIPv4 } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWK } from 'jose';
import { GatehouseError } from '../errors.ts';
import { POSTURE_ALGORITHMS, POSTURE_CHECKS, type CertificateIdentity, type ClientCertificateConfig, type NetworkZone, type PostureAlgorithm, type PostureCheck, type PostureConfig, type TrustedPostureIssuer, type TrustedPostureKey } from '../model/posture-config.ts';

export { POSTURE_ALGORITHMS, POSTURE_CHECKS };
export type { CertificateIdentity, ClientCertificateConfig, NetworkZone, PostureAlgorithm, PostureCheck, PostureConfig, TrustedPostureIssuer, TrustedPostureKey };


/** The JOSE `typ` a posture token must carry, so no other JWT (a session, an ID token) passes as one. */
export const POSTURE_TOKEN_TYPE = 'posture+jwt';

/**
 * Stable reason codes of a non-compliant result; callers and policies match on these, the
 * docs list them. The human sentence is in `reason`.
 */
export type PostureReasonCode =
  | 'POSTURE_MISSING'
  | 'POSTURE_TOKEN_MALFORMED'
  | 'POSTURE_TOKEN_UNKNOWN_ISSUER'
  | 'POSTURE_TOKEN_UNKNOWN_KEY'
  | 'POSTURE_TOKEN_SIGNATURE_INVALID'
  | 'POSTURE_TOKEN_ALG_NOT_ALLOWED'
  | 'POSTURE_TOKEN_EXPIRED'
  | 'POSTURE_TOKEN_NOT_YET_VALID'
  | 'POSTURE_TOKEN_STALE'
  | 'POSTURE_TOKEN_CLAIMS_INVALID'
  | 'POSTURE_SUBJECT_MISMATCH'
  | 'POSTURE_CERT_UNAUTHORIZED'
  | 'POSTURE_CERT_UNTRUSTED_ISSUER'
  | 'POSTURE_CERT_EXPIRED'
  | 'POSTURE_CERT_UNMAPPED'
  | 'POSTURE_DEVICE_MISMATCH'
  | 'POSTURE_CHECK_FAILED';

/** Thrown by `parsePostureConfig` only; the request path never throws. */
/** The `identity.posture` section of the workspace: WORKSPACE_INVALID, detail POSTURE_CONFIG_INVALID. */
export class PostureConfigInvalid extends GatehouseError {
  declare readonly detail: 'POSTURE_CONFIG_INVALID';
  /** Every problem found, each naming the config path (`issuers[0].keys[1]`). */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('WORKSPACE_INVALID', `posture configuration is invalid:\n  - ${problems.join('\n  - ')}`, { detail: 'POSTURE_CONFIG_INVALID', reasons: ['POSTURE_CONFIG_INVALID'] });
    this.problems = problems;
  }
}


export interface PostureInput {
  /** The authenticated principal the posture must belong to. */
  readonly principalId: string;
  /** Compact JWS, e.g. from the `Gatehouse-Posture` request header. */
  readonly token?: string | null;
  /** From `socket.getPeerCertificate(true)`; an empty object means no certificate was sent. */
  readonly peerCertificate?: PeerCertificate | null;
  /** `socket.authorized`: the TLS layer verified the chain against its CAs. */
  readonly peerAuthorized?: boolean;
  readonly sourceIp: string;
  readonly now: Date;
}

export type PostureChecks = Readonly<Record<PostureCheck, boolean>> & {
  /** A token verified against a trusted key. */
  readonly tokenVerified: boolean;
  /** The token's `iat` is within `maxAgeSec`. */
  readonly fresh: boolean;
  /** A client certificate from a trusted issuer, mapped to this principal or a device. */
  readonly clientCertificate: boolean;
};

export interface PostureResult {
  readonly compliant: boolean;
  readonly zone: string;
  readonly deviceId: string | null;
  readonly source: 'token' | 'certificate' | 'token+certificate' | 'none';
  readonly checks: PostureChecks;
  /** Null when compliant. */
  readonly reasonCode: PostureReasonCode | null;
  readonly reason: string | null;
  /** `iat` of the verified token (ISO), for the audit entry. */
  readonly attestedAt: string | null;
}

// ---------------------------------------------------------------------------------------
// Configuration

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;
const FINGERPRINT = /^[0-9a-f]{64}$/;

/**
 * Validates a posture configuration (as read from YAML/JSON) and imports the keys. Throws
 * `PostureConfigInvalid` listing every problem. Shape:
 *
 *     issuers: [{ issuer: "https://mdm.example.com", keys: [{ kid?, alg?, jwk? | pem? }] }]
 *     audience?: string, maxAgeSec?: 900, clockToleranceSec?: 30,
 *     algorithms?: [EdDSA, ES256], requiredChecks?: [disk_encrypted, …],
 *     deviceOwners?: { "<device id>": ["<principal id>", …] },
 *     clientCertificates?: { trustedIssuers: ["AB:CD:…" | "abcd…"], identities?: [{ subject, deviceId?, principalId? }], deviceIdFrom?: CN | DNS | URI }
 *     zones?: [{ name: corp, cidrs: ["10.0.0.0/8", "fd00::/8"] }], defaultZone?: internet
 */
export function parsePostureConfig(raw: unknown): PostureConfig {
  const problems: string[] = [];
  const o = record(raw, 'posture', problems) ?? {};
  known(o, 'posture', ['issuers', 'audience', 'maxAgeSec', 'clockToleranceSec', 'algorithms', 'requiredChecks', 'deviceOwners', 'clientCertificates', 'zones', 'defaultZone'], problems);

  const algorithms = o.algorithms === undefined ? [...POSTURE_ALGORITHMS] : stringList(o.algorithms, 'algorithms', problems).filter((a, i): a is PostureAlgorithm => {
    if ((POSTURE_ALGORITHMS as readonly string[]).includes(a)) return true;
    problems.push(`algorithms[${i}]: "${a}" is not allowed (allowed: ${POSTURE_ALGORITHMS.join(', ')}; HS*, RS* and none are refused)`);
    return false;
  });

  const issuers: TrustedPostureIssuer[] = [];
  const rawIssuers = o.issuers === undefined ? [] : list(o.issuers, 'issuers', problems);
  rawIssuers.forEach((ri, i) => {
    const at = `issuers[${i}]`;
    const r = record(ri, at, problems);
    if (!r) return;
    known(r, at, ['issuer', 'keys'], problems);
    const issuer = typeof r.issuer === 'string' && r.issuer.length > 0 ? r.issuer : (problems.push(`${at}.issuer: a non-empty string (the tokens' "iss") is required`), '');
    if (issuers.some((x) => x.issuer === issuer)) problems.push(`${at}.issuer: "${issuer}" is listed twice; put all its keys under one entry`);
    const keys: TrustedPostureKey[] = [];
    const rawKeys = list(r.keys, `${at}.keys`, problems);
    if (rawKeys.length === 0) problems.push(`${at}.keys: at least one public key is required`);
    rawKeys.forEach((rk, j) => {
      const k = importTrustedKey(rk, `${at}.keys[${j}]`, algorithms, problems);
      if (k) keys.push(k);
    });
    issuers.push({ issuer, keys });
  });

  const requiredChecks = o.requiredChecks === undefined ? [...POSTURE_CHECKS] : stringList(o.requiredChecks, 'requiredChecks', problems).filter((c, i): c is PostureCheck => {
    if ((POSTURE_CHECKS as readonly string[]).includes(c)) return true;
    problems.push(`requiredChecks[${i}]: unknown check "${c}" (known: ${POSTURE_CHECKS.join(', ')})`);
    return false;
  });

  const deviceOwners = new Map<string, readonly string[]>();
  if (o.deviceOwners !== undefined) {
    const d = record(o.deviceOwners, 'deviceOwners', problems) ?? {};
    for (const [device, owners] of Object.entries(d)) deviceOwners.set(device, stringList(owners, `deviceOwners.${device}`, problems));
  }

  let clientCertificates: ClientCertificateConfig | null = null;
  if (o.clientCertificates !== undefined && o.clientCertificates !== null) {
    const c = record(o.clientCertificates, 'clientCertificates', problems) ?? {};
    known(c, 'clientCertificates', ['trustedIssuers', 'identities', 'deviceIdFrom'], problems);
    const trustedIssuers = stringList(c.trustedIssuers, 'clientCertificates.trustedIssuers', problems).map((f, i) => {
      const n = normaliseFingerprint(f);
      if (!FINGERPRINT.test(n)) problems.push(`clientCertificates.trustedIssuers[${i}]: not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
      return n;
    });
    if (trustedIssuers.length === 0) problems.push('clientCertificates.trustedIssuers: pin at least one issuing CA by its SHA-256 fingerprint');
    const identities: CertificateIdentity[] = [];
    (c.identities === undefined ? [] : list(c.identities, 'clientCertificates.identities', problems)).forEach((ri, i) => {
      const at = `clientCertificates.identities[${i}]`;
      const r = record(ri, at, problems);
      if (!r) return;
      known(r, at, ['subject', 'deviceId', 'principalId'], problems);
      if (typeof r.subject !== 'string' || !/^(CN=|DNS:|URI:|email:)./.test(r.subject)) {
        problems.push(`${at}.subject: write "CN=<common name>", "DNS:<name>", "URI:<uri>" or "email:<address>"`);
        return;
      }
      const deviceId = optString(r.deviceId, `${at}.deviceId`, problems);
      const principalId = optString(r.principalId, `${at}.principalId`, problems);
      if (deviceId === null && principalId === null) problems.push(`${at}: map the subject to a deviceId, a principalId or both`);
      identities.push({ subject: r.subject, deviceId, principalId });
    });
    const from = c.deviceIdFrom ?? null;
    if (from !== null && from !== 'CN' && from !== 'DNS' && from !== 'URI') problems.push('clientCertificates.deviceIdFrom: one of CN, DNS, URI (or leave it out to accept only listed identities)');
    clientCertificates = { trustedIssuers, identities, deviceIdFrom: from as ClientCertificateConfig['deviceIdFrom'] };
  }

  const zones: NetworkZone[] = [];
  (o.zones === undefined ? [] : list(o.zones, 'zones', problems)).forEach((rz, i) => {
    const at = `zones[${i}]`;
    const z = record(rz, at, problems);
    if (!z) return;
    known(z, at, ['name', 'cidrs'], problems);
    const name = typeof z.name === 'string' && NAME.test(z.name) ? z.name : (problems.push(`${at}.name: lower-case letters, digits, _ and - (e.g. corp, vpn)`), `zone${i}`);
    if (zones.some((x) => x.name === name)) problems.push(`${at}.name: zone "${name}" is defined twice`);
    const cidrs = stringList(z.cidrs, `${at}.cidrs`, problems);
    const blockList = new BlockList();
    cidrs.forEach((cidr, j) => {
      const problem = addCidr(blockList, cidr);
      if (problem) problems.push(`${at}.cidrs[${j}]: ${problem}`);
    });
    zones.push({ name, cidrs, blockList });
  });
  const defaultZone = o.defaultZone === undefined ? 'internet' : typeof o.defaultZone === 'string' && NAME.test(o.defaultZone) ? o.defaultZone : (problems.push('defaultZone: lower-case letters, digits, _ and -'), 'internet');

  const maxAgeSec = positiveInt(o.maxAgeSec, 'maxAgeSec', 900, 86_400, problems);
  const clockToleranceSec = positiveInt(o.clockToleranceSec, 'clockToleranceSec', 30, 300, problems, true);
  const audience = optString(o.audience, 'audience', problems);

  if (problems.length > 0) throw new PostureConfigInvalid(problems);
  return { issuers, audience, maxAgeSec, clockToleranceSec, algorithms, requiredChecks, deviceOwners, clientCertificates, zones, defaultZone };
}

function importTrustedKey(raw: unknown, at: string, algorithms: readonly PostureAlgorithm[], problems: string[]): TrustedPostureKey | null {
  const r = record(raw, at, problems);
  if (!r) return null;
  known(r, at, ['kid', 'alg', 'jwk', 'pem'], problems);
  if ((r.jwk === undefined) === (r.pem === undefined)) {
    problems.push(`${at}: give exactly one of "jwk" (a public JWK) or "pem" (-----BEGIN PUBLIC KEY-----)`);
    return null;
  }
  let key: KeyObject;
  try {
    if (r.jwk !== undefined) {
      const jwk = record(r.jwk, `${at}.jwk`, problems);
      if (!jwk) return null;
      if ('d' in jwk) {
        problems.push(`${at}.jwk: this is a private key; configure the public half only (drop "d")`);
        return null;
      }
      key = createPublicKey({ key: jwk as JWK & { kty: string }, format: 'jwk' });
    } else {
      if (typeof r.pem !== 'string') { problems.push(`${at}.pem: a PEM string`); return null; }
      if (/PRIVATE KEY/.test(r.pem)) { problems.push(`${at}.pem: this is a private key; configure the public half only`); return null; }
      key = createPublicKey(r.pem);
    }
  } catch {
    problems.push(`${at}: not a readable public key`);
    return null;
  }
  if (key.type !== 'public') { problems.push(`${at}: not a public key`); return null; }
  // The algorithm follows from the key type, never from the token header.
  const implied: PostureAlgorithm | null =
    key.asymmetricKeyType === 'ed25519' ? 'EdDSA'
      : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256'
        : null;
  if (!implied) { problems.push(`${at}: key type ${key.asymmetricKeyType ?? 'unknown'} is not allowed (use Ed25519 for EdDSA or P-256 for ES256)`); return null; }
  if (r.alg !== undefined && r.alg !== implied) { problems.push(`${at}.alg: "${String(r.alg)}" does not match the key (a ${key.asymmetricKeyType} key signs ${implied})`); return null; }
  if (!algorithms.includes(implied)) { problems.push(`${at}: ${implied} is not in "algorithms"`); return null; }
  const kid = optString(r.kid, `${at}.kid`, problems) ?? (r.jwk && typeof (r.jwk as JWK).kid === 'string' ? (r.jwk as JWK).kid! : null);
  return { kid, alg: implied, key };
}

function addCidr(bl: BlockList, cidr: string): string | null {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr.trim());
  if (!m) return `"${cidr}" is not CIDR notation (address/prefix, e.g. 10.0.0.0/8 or fd00::/8)`;
  const family = isIP(m[1]!);
  const prefix = Number(m[2]);
  if (family === 0) return `"${m[1]}" is not an IP address`;
  if (prefix > (family === 4 ? 32 : 128)) return `prefix /${prefix} is too long for IPv${family}`;
  bl.addSubnet(m[1]!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  return null;
}

function normaliseFingerprint(f: string): string {
  return f.replace(/^sha256:/i, '').replace(/:/g, '').toLowerCase();
}

type Rec = Record<string, unknown>;
function record(v: unknown, at: string, problems: string[]): Rec | null {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Rec;
  problems.push(`${at}: expected a mapping`);
  return null;
}
function list(v: unknown, at: string, problems: string[]): unknown[] {
  if (Array.isArray(v)) return v;
  problems.push(`${at}: expected a list`);
  return [];
}
function stringList(v: unknown, at: string, problems: string[]): string[] {
  return list(v, at, problems).filter((s, i): s is string => typeof s === 'string' || (problems.push(`${at}[${i}]: expected a string`), false));
}
function optString(v: unknown, at: string, problems: string[]): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' && v.length > 0) return v;
  problems.push(`${at}: expected a non-empty string`);
  return null;
}
function positiveInt(v: unknown, at: string, dflt: number, max: number, problems: string[], zeroOk = false): number {
  if (v === undefined) return dflt;
  if (typeof v === 'number' && Number.isInteger(v) && (zeroOk ? v >= 0 : v > 0) && v <= max) return v;
  problems.push(`${at}: an integer number of seconds, ${zeroOk ? 0 : 1}…${max}`);
  return dflt;
}
function known(r: Rec, at: string, keys: readonly string[], problems: string[]): void {
  for (const k of Object.keys(r)) if (!keys.includes(k)) problems.push(`${at}.${k}: unknown key (known: ${keys.join(', ')})`);
}

// ---------------------------------------------------------------------------------------
// Network zone

/** The zone of `sourceIp`: the first configured zone whose ranges contain it; `unknown` for a non-address. */
export function networkZone(sourceIp: string, config: Pick<PostureConfig, 'zones' | 'defaultZone'>): string {
  let ip = sourceIp.trim();
  // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d; match it as IPv4.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) ip = mapped[1]!;
  const family = isIP(ip);
  if (family === 0) return 'unknown';
  const type = isIPv4(ip) ? 'ipv4' : 'ipv6';
  for (const z of config.zones) if (z.blockList.check(ip, type)) return z.name;
  return config.defaultZone;
}

// ---------------------------------------------------------------------------------------
// Posture token

/** Tokens longer than this are refused before any parsing (a posture token is < 1 KB). */
const MAX_TOKEN_LENGTH = 8192;

interface TokenOutcome {
  readonly ok: boolean;
  readonly code: PostureReasonCode | null;
  readonly reason: string | null;
  readonly deviceId: string | null;
  readonly claims: Readonly<Record<PostureCheck, boolean>>;
  readonly fresh: boolean;
  readonly attestedAt: string | null;
}

const NO_CLAIMS: Readonly<Record<PostureCheck, boolean>> = Object.freeze({ disk_encrypted: false, os_patched: false, edr_running: false, screen_lock: false, managed: false });

function tokenFailure(code: PostureReasonCode, reason: string, extra: Partial<TokenOutcome> = {}): TokenOutcome {
  return { ok: false, code, reason, deviceId: null, claims: NO_CLAIMS, fresh: false, attestedAt: null, ...extra };
}

/**
 * Verifies a posture token for `principalId`. Never throws. Checks, in order: size and
 * shape; `typ`; `alg` on the allowlist; `iss` a trusted issuer; a key of that issuer with
 * the header's `alg` (and `kid`, when both name one) verifies the signature; `exp`/`nbf`;
 * `aud`; `iat` present, not in the future, not older than `maxAgeSec`; `sub` is the
 * principal (or a device the principal owns) and `device_id` is present.
 */
export async function verifyPostureToken(token: string, principalId: string, now: Date, config: PostureConfig): Promise<TokenOutcome> {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
    return tokenFailure('POSTURE_TOKEN_MALFORMED', 'the posture token is not a compact JWS');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    return tokenFailure('POSTURE_TOKEN_MALFORMED', 'the posture token cannot be decoded');
  }
  const alg = header.alg;
  if (typeof alg !== 'string' || !(config.algorithms as readonly string[]).includes(alg)) {
    return tokenFailure('POSTURE_TOKEN_ALG_NOT_ALLOWED', `posture token algorithm ${JSON.stringify(String(alg)).slice(0, 20)} is not allowed (allowed: ${config.algorithms.join(', ')})`);
  }
  const issuer = config.issuers.find((i) => i.issuer === unverified.iss);
  if (!issuer) return tokenFailure('POSTURE_TOKEN_UNKNOWN_ISSUER', 'the posture token comes from an issuer that is not trusted');
  const kid = typeof header.kid === 'string' ? header.kid : null;
  const candidates = issuer.keys.filter((k) => k.alg === alg && (kid === null || k.kid === null || k.kid === kid));
  if (candidates.length === 0) return tokenFailure('POSTURE_TOKEN_UNKNOWN_KEY', 'no trusted key of the posture issuer matches the token (kid/alg)');

  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'] | null = null;
  let lastError: unknown = null;
  for (const k of candidates) {
    try {
      ({ payload } = await jwtVerify(token, k.key, {
        algorithms: [k.alg],
        issuer: issuer.issuer,
        typ: POSTURE_TOKEN_TYPE,
        currentDate: now,
        clockTolerance: config.clockToleranceSec,
        requiredClaims: ['iat', 'exp', 'sub'],
        ...(config.audience !== null ? { audience: config.audience } : {}),
      }));
      break;
    } catch (err) {
      lastError = err;
      // Only a signature failure means "try the next key"; anything else is final.
      if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) break;
    }
  }
  if (payload === null) return joseFailure(lastError);

  const iat = payload.iat!;
  const nowSec = now.getTime() / 1000;
  const attestedAt = new Date(iat * 1000).toISOString();
  if (iat > nowSec + config.clockToleranceSec) return tokenFailure('POSTURE_TOKEN_CLAIMS_INVALID', 'the posture token was issued in the future (check the agent clock)');
  const fresh = nowSec - iat <= config.maxAgeSec;
  const deviceId = typeof payload.device_id === 'string' && payload.device_id.length > 0 && payload.device_id.length <= 256 ? payload.device_id : null;
  if (deviceId === null) return tokenFailure('POSTURE_TOKEN_CLAIMS_INVALID', 'the posture token has no device_id claim');
  const sub = payload.sub!;
  const bound = sub === principalId || (sub === deviceId && (config.deviceOwners.get(deviceId) ?? []).includes(principalId));
  if (!bound) return tokenFailure('POSTURE_SUBJECT_MISMATCH', 'the posture token was issued for another principal or device');
  const claims = Object.fromEntries(POSTURE_CHECKS.map((c) => [c, payload![c] === true])) as Record<PostureCheck, boolean>;
  if (!fresh) {
    return tokenFailure('POSTURE_TOKEN_STALE', `the posture attestation is older than ${config.maxAgeSec} s; the endpoint agent must re-attest`, { deviceId, claims, attestedAt });
  }
  return { ok: true, code: null, reason: null, deviceId, claims, fresh, attestedAt };
}

function joseFailure(err: unknown): TokenOutcome {
  if (err instanceof joseErrors.JWTExpired) return tokenFailure('POSTURE_TOKEN_EXPIRED', 'the posture token has expired');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return tokenFailure('POSTURE_TOKEN_SIGNATURE_INVALID', 'the posture token signature does not verify against any trusted key');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return tokenFailure('POSTURE_TOKEN_ALG_NOT_ALLOWED', 'the posture token algorithm is not allowed');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return tokenFailure('POSTURE_TOKEN_NOT_YET_VALID', 'the posture token is not yet valid');
    // Claim names are fixed strings from jose; no claim values are echoed.
    return tokenFailure('POSTURE_TOKEN_CLAIMS_INVALID', `the posture token's "${err.claim}" claim is missing or invalid`);
  }
  return tokenFailure('POSTURE_TOKEN_MALFORMED', 'the posture token is malformed');
}

// ---------------------------------------------------------------------------------------
// TLS client certificate

interface CertificateOutcome {
  readonly ok: boolean;
  readonly code: PostureReasonCode | null;
  readonly reason: string | null;
  readonly deviceId: string | null;
}

/** Subject alternative names as `TYPE:value` strings; node quotes values containing commas as JSON strings. */
export function subjectAltNames(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  const out: string[] = [];
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(subjectaltname); m !== null && m[0].length > 0; m = re.exec(subjectaltname)) {
    let value = m[2]!;
    if (value.startsWith('"')) {
      try { value = JSON.parse(value) as string; } catch { continue; }
    }
    out.push(`${m[1]}:${value}`);
  }
  return out;
}

function sha256Fingerprint(cert: PeerCertificate | undefined): string | null {
  if (!cert) return null;
  if (cert.raw && cert.raw.length > 0) return createHash('sha256').update(cert.raw).digest('hex');
  return typeof cert.fingerprint256 === 'string' ? normaliseFingerprint(cert.fingerprint256) : null;
}

/**
 * Posture from a TLS client certificate: the TLS layer verified the chain (`authorized`),
 * the direct issuer is pinned by SHA-256 fingerprint (so another CA the server trusts for
 * other reasons cannot mint device certificates), the certificate is within its validity
 * period, and its subject maps to a device (or to this principal). Never throws.
 */
export function verifyClientCertificate(cert: PeerCertificate | null | undefined, authorized: boolean, principalId: string, now: Date, config: PostureConfig): CertificateOutcome {
  const fail = (code: PostureReasonCode, reason: string): CertificateOutcome => ({ ok: false, code, reason, deviceId: null });
  const cc = config.clientCertificates;
  if (!cc) return fail('POSTURE_CERT_UNTRUSTED_ISSUER', 'client certificates are not configured as a posture source');
  if (!authorized) return fail('POSTURE_CERT_UNAUTHORIZED', 'the client certificate chain was not verified by the TLS layer');
  // getPeerCertificate(true) links the issuer; a self-signed certificate is its own issuer.
  const issuerCert = (cert as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
  const issuerFp = sha256Fingerprint(issuerCert);
  const ownFp = sha256Fingerprint(cert!);
  if (issuerFp === null || issuerFp === ownFp || !cc.trustedIssuers.includes(issuerFp)) {
    return fail('POSTURE_CERT_UNTRUSTED_ISSUER', 'the client certificate was not issued by a pinned device CA');
  }
  const from = Date.parse(cert!.valid_from);
  const to = Date.parse(cert!.valid_to);
  const skew = config.clockToleranceSec * 1000;
  if (!Number.isFinite(from) || !Number.isFinite(to) || now.getTime() + skew < from || now.getTime() - skew > to) {
    return fail('POSTURE_CERT_EXPIRED', 'the client certificate is outside its validity period');
  }
  const cn = cert!.subject?.CN;
  if (Array.isArray(cn)) return fail('POSTURE_CERT_UNMAPPED', 'the client certificate has several common names; refused as ambiguous');
  const names = [...(typeof cn === 'string' ? [`CN=${cn}`] : []), ...subjectAltNames(cert!.subjectaltname)];
  const identity = cc.identities.find((i) => names.includes(i.subject));
  if (identity) {
    if (identity.principalId !== null && identity.principalId !== principalId) return fail('POSTURE_SUBJECT_MISMATCH', 'the client certificate belongs to another principal');
    return { ok: true, code: null, reason: null, deviceId: identity.deviceId };
  }
  if (cc.deviceIdFrom !== null) {
    const prefix = cc.deviceIdFrom === 'CN' ? 'CN=' : `${cc.deviceIdFrom}:`;
    const found = names.filter((n) => n.startsWith(prefix));
    if (found.length === 1 && found[0]!.length > prefix.length) return { ok: true, code: null, reason: null, deviceId: found[0]!.slice(prefix.length) };
  }
  return fail('POSTURE_CERT_UNMAPPED', 'the client certificate subject is not mapped to a device or principal');
}

/** Builds a PeerCertificate-shaped object from a PEM (tests, proxies that forward the client certificate). */
export function peerCertificateFromPem(pem: string, issuerPem?: string): PeerCertificate {
  const toPeer = (p: string): PeerCertificate & { issuerCertificate?: PeerCertificate } => {
    const x = new X509Certificate(p);
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(x.subject)?.[1];
    return {
      subject: cn !== undefined ? { CN: cn } : {}, issuer: {}, subjectaltname: x.subjectAltName ?? '',
      valid_from: x.validFrom, valid_to: x.validTo, fingerprint: x.fingerprint, fingerprint256: x.fingerprint256,
      fingerprint512: x.fingerprint512, serialNumber: x.serialNumber, raw: x.raw,
    } as unknown as PeerCertificate;
  };
  const leaf = toPeer(pem);
  if (issuerPem) leaf.issuerCertificate = toPeer(issuerPem) as never;
  return leaf;
}

// ---------------------------------------------------------------------------------------
// Combined

/**
 * Evaluates posture and zone for one request. With both a token and a certificate, both
 * must pass and name the same device. `compliant` needs a fresh verified token or a
 * mapped certificate, and every `requiredChecks` entry true (a certificate alone attests
 * `managed` only). Never throws; a failure is `{ compliant: false, reasonCode, reason }`.
 */
export async function evaluatePosture(input: PostureInput, config: PostureConfig): Promise<PostureResult> {
  const zone = networkZone(input.sourceIp, config);
  const hasToken = typeof input.token === 'string' && input.token.length > 0;
  const cert = input.peerCertificate;
  const hasCert = !!cert && typeof cert === 'object' && Object.keys(cert).length > 0;
  const checks: { -readonly [K in keyof PostureChecks]: boolean } = { ...NO_CLAIMS, tokenVerified: false, fresh: false, clientCertificate: false };
  const source: PostureResult['source'] = hasToken && hasCert ? 'token+certificate' : hasToken ? 'token' : hasCert ? 'certificate' : 'none';
  const result = (deviceId: string | null, code: PostureReasonCode | null, reason: string | null, attestedAt: string | null = null): PostureResult =>
    ({ compliant: code === null, zone, deviceId, source, checks: { ...checks }, reasonCode: code, reason, attestedAt });

  if (!hasToken && !hasCert) return result(null, 'POSTURE_MISSING', 'no posture was presented (no posture token and no client certificate); unknown posture is non-compliant');

  let deviceId: string | null = null;
  let attestedAt: string | null = null;
  let failure: { code: PostureReasonCode; reason: string } | null = null;
  try {
    if (hasToken) {
      const t = await verifyPostureToken(input.token!, input.principalId, input.now, config);
      attestedAt = t.attestedAt;
      if (t.ok) {
        checks.tokenVerified = true;
        checks.fresh = t.fresh;
        for (const c of POSTURE_CHECKS) checks[c] = t.claims[c];
        deviceId = t.deviceId;
      } else {
        failure = { code: t.code!, reason: t.reason! };
      }
    }
    if (hasCert) {
      const c = verifyClientCertificate(cert, input.peerAuthorized === true, input.principalId, input.now, config);
      if (c.ok) {
        checks.clientCertificate = true;
        checks.managed = true;
        if (deviceId !== null && c.deviceId !== null && c.deviceId !== deviceId) {
          failure ??= { code: 'POSTURE_DEVICE_MISMATCH', reason: 'the posture token and the client certificate name different devices' };
        }
        deviceId ??= c.deviceId;
      } else {
        failure ??= { code: c.code!, reason: c.reason! };
      }
    }
  } catch {
    // Defensive: nothing above should throw, but the request path must get a value.
    failure ??= { code: 'POSTURE_TOKEN_MALFORMED', reason: 'posture could not be evaluated' };
  }
  if (failure) return result(deviceId, failure.code, failure.reason, attestedAt);
  const missing = config.requiredChecks.filter((c) => !checks[c]);
  if (missing.length > 0) return result(deviceId, 'POSTURE_CHECK_FAILED', `device posture checks not met: ${missing.join(', ')}`, attestedAt);
  return result(deviceId, null, null, attestedAt);
}

/**
 * The posture as flat attributes for the Cedar request context (the pipeline adds them to
 * the schema's context, e.g. `context.deviceCompliant && context.networkZone == "corp"`).
 */
export function postureContext(r: PostureResult): { deviceCompliant: boolean; networkZone: string; deviceManaged: boolean; deviceId: string } {
  return { deviceCompliant: r.compliant, networkZone: r.zone, deviceManaged: r.compliant && r.checks.managed, deviceId: r.deviceId ?? '' };
}
