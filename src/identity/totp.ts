/**
 * Time-based one-time passwords, RFC 6238 (TOTP over RFC 4226 HOTP), via otplib 13.
 *
 * Parameters are the ones every authenticator app supports: HMAC-SHA-1, 6 digits, 30 s
 * steps from T0 = 0, and a 160-bit random secret (RFC 4226 §4 recommends 160 bits),
 * Base32-encoded in the otpauth URI (the Key Uri Format of Google Authenticator).
 *
 * Verification accepts the current step and one step either side (RFC 6238 §5.2 allows
 * for one step of transmission delay and clock drift) and gives **replay protection**
 * (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the OTP after the
 * successful validation has been issued for the first OTP"): the caller passes the last
 * step it accepted, only later steps can match, and the caller stores the matched step —
 * atomically, see user-store.ts — so a code, or any code of an earlier step, is accepted
 * once.
 */
import { NobleCryptoPlugin, ScureBase32Plugin, TOTP } from 'otplib';
import { randomBytes } from 'node:crypto';
import { IdentityError } from './password.ts';
import { IdentityInputInvalid } from './session.ts';

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
export const TOTP_ALGORITHM = 'sha1';
export const TOTP_SECRET_BYTES = 20;
/** Steps accepted either side of the current one. */
export const TOTP_WINDOW = 1;

const base32 = new ScureBase32Plugin();
const totp = new TOTP({ crypto: new NobleCryptoPlugin(), base32, algorithm: TOTP_ALGORITHM, period: TOTP_PERIOD_SECONDS, digits: TOTP_DIGITS });

/** A secret that otplib cannot use (bad Base32, too short). */
export class TotpSecretInvalid extends IdentityError {
  constructor() { super('IDENTITY_TOTP_SECRET_INVALID', 'TOTP secret is not valid Base32 of at least 16 bytes', 500); }
}

/** A fresh 160-bit secret, Base32 (RFC 4648) without padding. */
export function generateTotpSecret(): string {
  const raw = randomBytes(TOTP_SECRET_BYTES);
  const s = base32.encode(raw).replace(/=+$/, '');
  raw.fill(0);
  return s;
}

/**
 * The otpauth:// URI an authenticator app scans (as a QR code) to enrol:
 * otpauth://totp/<issuer>:<account, percent-encoded>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
 */
export function otpauthUri(issuer: string, account: string, secret: string): string {
  // Apps split the label at its first colon (issuer prefix), so only the issuer must be colon-free.
  if (issuer === '' || account === '' || issuer.includes(':')) {
    throw new IdentityInputInvalid('issuer and account must be non-empty, and the issuer must contain no ":"');
  }
  try {
    const uri = new URL(totp.toURI({ issuer, label: account, secret }));
    // Spell out the defaults too: some apps mis-handle their absence.
    uri.searchParams.set('algorithm', 'SHA1');
    uri.searchParams.set('digits', String(TOTP_DIGITS));
    uri.searchParams.set('period', String(TOTP_PERIOD_SECONDS));
    return uri.toString();
  } catch (err) {
    if (err instanceof IdentityInputInvalid) throw err;
    throw new TotpSecretInvalid();
  }
}

function epochSeconds(now: Date | number | undefined): number {
  const ms = now === undefined ? Date.now() : typeof now === 'number' ? now : now.getTime();
  if (!Number.isFinite(ms) || ms < 0) throw new IdentityInputInvalid('time must be a finite, non-negative instant');
  return Math.floor(ms / 1000);
}

/** The RFC 6238 time step (counter) containing `now`. */
export function totpStep(now?: Date | number): number {
  return Math.floor(epochSeconds(now) / TOTP_PERIOD_SECONDS);
}

/**
 * The code for `now`. `secret` is Base32 text, or raw key bytes (the RFC's test vectors
 * use the ASCII bytes of "12345678901234567890"); `digits` is 6 unless a test asks for 8.
 */
export async function generateTotp(secret: string | Uint8Array, options: { now?: Date | number; digits?: 6 | 8 } = {}): Promise<string> {
  try {
    return await totp.generate({ secret, epoch: epochSeconds(options.now), digits: options.digits ?? TOTP_DIGITS });
  } catch (err) {
    if (err instanceof IdentityInputInvalid) throw err;
    throw new TotpSecretInvalid();
  }
}

export type TotpVerification =
  | { readonly valid: true; readonly step: number; readonly delta: number }
  | { readonly valid: false; readonly reason: 'malformed' | 'mismatch' | 'replayed' };

/**
 * Checks `code` against the steps `now - window … now + window`, skipping every step at or
 * before `lastUsedStep`. On success returns the matched `step`, which the caller must store
 * as the new `lastUsedStep` (and accept only if its store's compare-and-set succeeds).
 * `reason` is for the audit log, never for the person logging in.
 */
export async function verifyTotp(
  secret: string | Uint8Array,
  code: string,
  options: { lastUsedStep?: number | null; now?: Date | number; window?: number; digits?: 6 | 8 } = {},
): Promise<TotpVerification> {
  const digits = options.digits ?? TOTP_DIGITS;
  if (typeof code !== 'string' || code.length !== digits || !/^[0-9]+$/.test(code)) return { valid: false, reason: 'malformed' };
  const window = options.window ?? TOTP_WINDOW;
  if (!Number.isInteger(window) || window < 0 || window > 10) throw new IdentityInputInvalid('TOTP window must be an integer 0…10');
  const epoch = epochSeconds(options.now);
  const current = Math.floor(epoch / TOTP_PERIOD_SECONDS);
  const last = options.lastUsedStep ?? null;
  const tolerance = window * TOTP_PERIOD_SECONDS;
  const check = async (afterTimeStep: number | undefined) => {
    try {
      return await totp.verify(code, { secret, epoch, digits, epochTolerance: [tolerance, tolerance], afterTimeStep });
    } catch {
      throw new TotpSecretInvalid();
    }
  };
  // otplib refuses an afterTimeStep beyond the window: then every step in it is used.
  const fresh = last === null ? await check(undefined) : last >= current + window ? { valid: false as const } : await check(last < 0 ? undefined : last);
  if (fresh.valid) return { valid: true, step: fresh.timeStep, delta: fresh.delta };
  if (last !== null && (await check(undefined)).valid) return { valid: false, reason: 'replayed' };
  return { valid: false, reason: 'mismatch' };
}
