/**
 * What binds evidence to one job run. The key broker's challenge nonce goes in the evidence's
 * `nonce`, the enclave's ephemeral public key in `public_key`, and
 *
 *   user_data = SHA-256("gatehouse.job-binding.v1" ‖ 0x00 ‖ jobId ‖ 0x00 ‖ codeHash)
 *
 * so evidence produced for one job, one code hash and one challenge cannot be presented for
 * another (the fields sit inside the signed payload; Nitro's NSM copies them verbatim). The
 * same layout as Trustee's KBS, which hashes its nonce and the TEE public key into the
 * report data of formats with a single field.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const LABEL = 'gatehouse.job-binding.v1';

export function jobBinding(jobId: string, codeHash: string): Uint8Array {
  return createHash('sha256').update(LABEL).update('\0').update(jobId).update('\0').update(codeHash).digest();
}

export function sameBytes(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null || a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}
