/**
 * GatehouseError codes → PostgreSQL SQLSTATE codes (docs/wire-protocol.md lists them).
 * Clients branch on the SQLSTATE class: 28 authorization, 42 syntax or access rule,
 * 0A feature not supported, 53 insufficient resources, 57 operator intervention.
 */
import type { ErrorCode } from '../errors.ts';
import { ERRORS, GatehouseError } from '../errors.ts';

/** The SQLSTATE of each code: one table with the HTTP status and the audit outcome (src/errors.ts). */
export const SQLSTATE: Record<ErrorCode, string> = Object.fromEntries(Object.entries(ERRORS).map(([k, v]) => [k, v.sqlstate])) as Record<ErrorCode, string>;

export interface WireError {
  readonly severity: 'ERROR' | 'FATAL';
  readonly code: string;
  readonly message: string;
  readonly detail: string | null;
  readonly hint: string | null;
}

/** The ErrorResponse fields for a GatehouseError: message, reasons as detail, hint. */
export function wireError(err: unknown, severity: 'ERROR' | 'FATAL' = 'ERROR'): WireError {
  if (err instanceof WireRefusal) return { severity, code: err.sqlstate, message: err.message, detail: `gatehouse code ${err.audit.code}`, hint: err.hint };
  const g = err instanceof GatehouseError ? err : new GatehouseError('INTERNAL', 'internal error; the request was not completed');
  const reasons = g.reasons.filter((r) => r !== g.message);
  // Several Gatehouse codes share a SQLSTATE (42501: policy, obligation, DLP, differencing):
  // the detail field names the exact one first, so clients can tell them apart.
  return { severity, code: SQLSTATE[g.code], message: g.message, detail: [`gatehouse code ${g.code}`, ...reasons].join('; '), hint: g.hint };
}

/** A refusal decided by the wire front itself, with its own SQLSTATE, plus the GatehouseError audited for it. */
export class WireRefusal extends Error {
  readonly sqlstate: string;
  readonly hint: string | null;
  readonly audit: GatehouseError;
  constructor(sqlstate: string, audit: GatehouseError) {
    super(audit.message);
    this.name = 'WireRefusal';
    this.sqlstate = sqlstate;
    this.hint = audit.hint;
    this.audit = audit;
  }
}
