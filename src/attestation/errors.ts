/**
 * Attestation errors. Each carries a stable detailed code for audit entries and tests and
 * maps onto one union code of src/errors.ts; the detailed code is the first reason, so the
 * audit entry of a refusal names it. Messages say what failed and what to do; they
 * never quote evidence bytes, keys or nonces.
 */
import { GatehouseError } from '../errors.ts';

/** Evidence that does not verify: malformed, forged, expired, wrong root. */
export class AttestationInvalid extends GatehouseError {
  constructor(message: string, detail = 'ATTESTATION_INVALID') {
    super('ATTESTATION_REFUSED', message, { detail, reasons: [detail], hint: 'produce fresh evidence from a genuine enclave for this job' });
  }
}

/** Evidence that verifies but is refused by the appraisal (nonce, replay, debug, measurement, freshness). */
export class AttestationRefused extends GatehouseError {
  constructor(message: string, detail: string, reasons: readonly string[] = []) {
    super('ATTESTATION_REFUSED', message, { detail, reasons: [detail, ...reasons], hint: 'request a new challenge and attest again from an approved, non-debug enclave' });
  }
}
