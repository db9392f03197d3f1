/**
 * Typed errors of the node-to-node layer: GatehouseErrors whose `detail` is the stable
 * federation code callers match on and whose `code` FEDERATION_CODES gives, so the HTTP
 * status, audit outcome and SQLSTATE come from the one table in src/errors.ts.
 *
 * Messages name node ids, regions and file names only: never key material, signatures or
 * the body of a forwarded request (invariant 9).
 */
import { codeFor, GatehouseError, type ErrorCode } from '../errors.ts';

/**
 * Federation code → union code. A peer that cannot prove who it is gets AUTH_INVALID
 * (401); a known peer asking for something the pins forbid is POLICY_DENIED (403); a peer
 * that cannot be reached is UNAVAILABLE (503); a broken local identity is the operator's
 * to fix (INTERNAL); a malformed pin or envelope is REQUEST_INVALID.
 */
export const FEDERATION_CODES: Readonly<Record<string, ErrorCode>> = {
  NODE_UNKNOWN: 'AUTH_INVALID',
  NODE_KEY_MISMATCH: 'AUTH_INVALID',
  NODE_SIGNATURE_INVALID: 'AUTH_INVALID',
  NODE_REGION_MISMATCH: 'POLICY_DENIED',
  NODE_MESSAGE_STALE: 'AUTH_INVALID',
  NODE_MESSAGE_REPLAYED: 'AUTH_INVALID',
  NODE_ENVELOPE_INVALID: 'REQUEST_INVALID',
  NODE_UNREACHABLE: 'UNAVAILABLE',
  NODE_IDENTITY_MISSING: 'INTERNAL',
  NODE_IDENTITY_INSECURE: 'INTERNAL',
  NODE_IDENTITY_CORRUPT: 'INTERNAL',
  NODE_IDENTITY_EXISTS: 'CONFLICT',
  FEDERATION_CONFIG_INVALID: 'WORKSPACE_INVALID',
  PEER_ERROR: 'INTERNAL',
};

export class FederationError extends GatehouseError {
  declare readonly detail: string;
  constructor(detail: string, message: string, hint: string | null = null, options: { cause?: unknown; code?: ErrorCode; reasons?: readonly string[] } = {}) {
    super(options.code ?? codeFor(detail, FEDERATION_CODES), message, { detail, hint, reasons: options.reasons ?? [detail], cause: options.cause });
  }
}
