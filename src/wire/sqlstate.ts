/**
 * GatehouseError codes → PostgreSQL SQLSTATE codes (docs/wire-protocol.md lists them).
 * Clients branch on the SQLSTATE class: 28 authorization, 42 syntax or access rule,
 * 0A feature not supported, 53 insufficient resources, 57 operator intervention.
 */
import type { ErrorCode } from '../errors.ts';
import { asGatehouseError, ERRORS, GatehouseError } from '../errors.ts';

/** The SQLSTATE of each code: one table with the HTTP status and the audit outcome (src/errors.ts). */
export const SQLSTATE: Record<ErrorCode, string> = Object.fromEntries(Object.entries(ERRORS).map(([k, v]) => [k, v.sqlstate])) as Record<ErrorCode, string>;

export interface WireError {
  readonly severity: 'ERROR' | 'FATAL';
  readonly code: string;
  readonly message: string;
  readonly detail: string | null;
  readonly hint: string | null;
}

/**
 * The ErrorResponse fields for an error: its SQLSTATE (`err.sqlstate`, from the one table,
 * or the one a WireRefusal chose), message, reasons as detail, hint. Anything that is not a
 * GatehouseError is INTERNAL, its message withheld.
 */
export function wireError(err: unknown, severity: 'ERROR' | 'FATAL' = 'ERROR'): WireError {
  const g = asGatehouseError(err);
  const reasons = g.reasons.filter((r) => r !== g.message);
  // Several Gatehouse codes share a SQLSTATE (42501: policy, obligation, DLP, differencing):
  // the detail field names the exact one first, so clients can tell them apart.
  return { severity, code: g.sqlstate, message: g.message, detail: [`gatehouse code ${g.code}`, ...reasons].join('; '), hint: g.hint };
}

/**
 * A refusal decided by the wire front itself with its own SQLSTATE (a start-up refused with
 * 28000 rather than the table's), carrying the GatehouseError audited for it: same code,
 * message, hint and reasons, so HTTP status and audit outcome stay the table's.
 */
export class WireRefusal extends GatehouseError {
  readonly #sqlstate: string;
  readonly audit: GatehouseError;
  constructor(sqlstate: string, audit: GatehouseError) {
    super(audit.code, audit.message, { hint: audit.hint, reasons: audit.reasons, detail: audit.detail, retryAfterSeconds: audit.retryAfterSeconds, cause: audit });
    this.#sqlstate = sqlstate;
    this.audit = audit;
  }

  override get sqlstate(): string {
    return this.#sqlstate;
  }
}
