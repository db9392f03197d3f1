/**
 * GatehouseError codes → PostgreSQL SQLSTATE codes (docs/wire-protocol.md lists them).
 * Clients branch on the SQLSTATE class: 28 authorization, 42 syntax or access rule,
 * 0A feature not supported, 53 insufficient resources, 57 operator intervention.
 */
import type { ErrorCode } from '../errors.ts';
import { GatehouseError } from '../errors.ts';

export const SQLSTATE: Record<ErrorCode, string> = {
  AUTH_REQUIRED: '28000',         // invalid_authorization_specification
  AUTH_INVALID: '28P01',          // invalid_password
  MFA_REQUIRED: '28000',
  RATE_LIMITED: '53400',          // configuration_limit_exceeded
  POLICY_DENIED: '42501',         // insufficient_privilege
  OBLIGATION_VIOLATION: '42501',
  ROW_CAP_EXCEEDED: '54000',      // program_limit_exceeded
  BUDGET_EXHAUSTED: '53400',
  DLP_BLOCKED: '42501',
  DIFFERENCING_DETECTED: '42501',
  SQL_SYNTAX: '42601',            // syntax_error
  SQL_UNSUPPORTED: '0A000',       // feature_not_supported
  SQL_FUNCTION_NOT_ALLOWED: '42883', // undefined_function
  SQL_UNKNOWN_DATASET: '42P01',   // undefined_table
  SQL_UNKNOWN_COLUMN: '42703',    // undefined_column
  SQL_AMBIGUOUS_COLUMN: '42702',  // ambiguous_column
  SQL_INVALID: '42000',           // syntax_error_or_access_rule_violation
  REQUEST_INVALID: '22023',       // invalid_parameter_value
  NOT_FOUND: '42704',             // undefined_object
  QUERY_TIMEOUT: '57014',         // query_canceled
  ENGINE_ERROR: '22000',          // data_exception
  AUDIT_UNAVAILABLE: '58000',     // system_error
  WORKSPACE_INVALID: 'XX000',     // internal_error
  INTERNAL: 'XX000',
};

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
