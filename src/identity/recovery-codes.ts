/**
 * Single-use recovery codes for a lost authenticator.
 *
 * Ten codes per enrolment, each 80 random bits written as 16 characters of Crockford's
 * Base32 alphabet (no I, L, O, U; case-insensitive; I/L read as 1 and O as 0 when typed)
 * in four groups: "7KQ2-M9XD-4TPA-H3WZ". They are shown once and stored only as hashes.
 *
 * Why SHA-256 and not scrypt: a slow, salted KDF exists to make guessing *low-entropy*
 * secrets (passwords) expensive. A recovery code is 80 uniformly random bits, so even with
 * the stored hash an attacker needs ~2^79 SHA-256 evaluations per code — out of reach — and
 * a fast hash lets the store find the code with one indexed lookup instead of ten scrypt
 * runs. NIST SP 800-63B §5.1.2.2 draws the same line: a slow, salted KDF is required for
 * look-up secrets below 64 bits of entropy. The hash is domain-separated and bound to the principal id
 * (SHA-256("gatehouse/identity/recovery-code/v1\n" ‖ principal ‖ "\n" ‖ code)), so equal
 * codes of two users hash differently and a hash cannot be moved to another account.
 * Consumption (once only) is the store's compare-and-set; see user-store.ts.
 */
import { createHash, randomBytes } from 'node:crypto';

export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford Base32
const CHARS = 16;
const LABEL = 'gatehouse/identity/recovery-code/v1\n';

/** Fresh codes in display form ("XXXX-XXXX-XXXX-XXXX"). */
export function generateRecoveryCodes(count: number = RECOVERY_CODE_COUNT): string[] {
  if (!Number.isInteger(count) || count < 1 || count > 100) throw new RangeError('count must be 1…100');
  const codes = new Set<string>();
  while (codes.size < count) {
    const bytes = randomBytes(10); // 80 bits → 16 × 5 bits
    let bits = 0n;
    for (const b of bytes) bits = (bits << 8n) | BigInt(b);
    let s = '';
    for (let i = 0; i < CHARS; i++) s += ALPHABET[Number((bits >> BigInt(5 * (CHARS - 1 - i))) & 31n)];
    bytes.fill(0);
    codes.add(s.match(/.{4}/g)!.join('-'));
  }
  return [...codes];
}

/**
 * The canonical form of a typed code (upper case, separators and spaces removed,
 * I/L→1, O→0), or null if it cannot be a recovery code.
 */
export function normalizeRecoveryCode(input: string): string | null {
  if (typeof input !== 'string' || input.length > 64) return null;
  const s = input.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (s.length !== CHARS) return null;
  for (const c of s) if (!ALPHABET.includes(c)) return null;
  return s;
}

/** Hex SHA-256 of the canonical code bound to `principalId`; null if `input` is not code-shaped. */
export function hashRecoveryCode(principalId: string, input: string): string | null {
  const code = normalizeRecoveryCode(input);
  if (code === null) return null;
  return createHash('sha256').update(LABEL).update(principalId, 'utf8').update('\n').update(code).digest('hex');
}
