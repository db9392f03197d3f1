/**
 * Typed errors for privacy-budget accounting: GatehouseErrors whose `detail` is the stable
 * accounting code callers (the pipeline, the HTTP API, the CLI) match on, never the message
 * (docs/privacy-budgets.md lists them), and whose `code` ACCOUNTING_CODES gives. Messages
 * carry parameter names and ρ values, never data values or secrets.
 *
 * A charge that does not fit the budget is *not* an error: `charge` returns
 * `{ ok: false, reason }` so the caller can explain the denial. Errors are for invalid
 * input, misuse of the refund protocol and an unavailable store.
 */

import { codeFor, GatehouseError, type ErrorCode } from '../../errors.ts';

/**
 * Accounting code → union code: malformed parameters are REQUEST_INVALID; misuse of the
 * charge/refund protocol against the ledger's state is a CONFLICT (409); a busy or closed
 * store is UNAVAILABLE (503), and nothing was charged.
 */
export const ACCOUNTING_CODES: Readonly<Record<string, ErrorCode>> = {
  DP_PARAMETER_INVALID: 'REQUEST_INVALID',
  BUDGET_RHO_INVALID: 'REQUEST_INVALID',
  BUDGET_WINDOW_INVALID: 'REQUEST_INVALID',
  BUDGET_ARGUMENT_INVALID: 'REQUEST_INVALID',
  BUDGET_WINDOW_LOCKED: 'CONFLICT',
  BUDGET_QUERY_ID_REUSED: 'CONFLICT',
  BUDGET_CHARGE_NOT_FOUND: 'NOT_FOUND',
  BUDGET_REFUND_AFTER_RELEASE: 'CONFLICT',
  BUDGET_CHARGE_REFUNDED: 'CONFLICT',
  BUDGET_STORE_BUSY: 'UNAVAILABLE',
  BUDGET_STORE_UNAVAILABLE: 'UNAVAILABLE',
};

export class AccountingError extends GatehouseError {
  declare readonly detail: string;
  /** `status` chooses the union code only for a code ACCOUNTING_CODES does not list. */
  constructor(code: string, message: string, status: number, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(codeFor(code, ACCOUNTING_CODES, status), message, { detail: code, reasons: [code], cause: options?.cause, retryAfterSeconds: options?.retryAfterSeconds ?? null });
  }
}

/** A privacy parameter (ρ, ε, δ, σ², sensitivity, scale) is NaN, infinite, negative or out of range. */
export class DpParameterInvalid extends AccountingError {
  constructor(message: string) { super('DP_PARAMETER_INVALID', message, 400); }
}

/** A ρ to charge or a cap is not a finite number in (0, MAX_RHO]; NaN, ±Infinity and −0 are refused. */
export class BudgetRhoInvalid extends AccountingError {
  constructor(message: string) { super('BUDGET_RHO_INVALID', message, 400); }
}

/** A window definition is malformed (unknown kind, non-integer or out-of-range days). */
export class BudgetWindowInvalid extends AccountingError {
  constructor(message: string) { super('BUDGET_WINDOW_INVALID', message, 400); }
}

/** Subject, dataset, query id, charge id, reason or time is missing or malformed. */
export class BudgetArgumentInvalid extends AccountingError {
  constructor(message: string) { super('BUDGET_ARGUMENT_INVALID', message, 400); }
}

/** The window of a budget that already has ledger rows cannot be changed (the cap can). */
export class BudgetWindowLocked extends AccountingError {
  constructor() { super('BUDGET_WINDOW_LOCKED', 'the window of a budget with recorded charges cannot be changed', 409); }
}

/** A query id was charged before with a different ρ, or its charge was refunded. */
export class BudgetQueryIdReused extends AccountingError {
  constructor(message: string) { super('BUDGET_QUERY_ID_REUSED', message, 409); }
}

/** No charge with this id exists. */
export class BudgetChargeNotFound extends AccountingError {
  constructor() { super('BUDGET_CHARGE_NOT_FOUND', 'no charge with this id', 404); }
}

/** The charge's result was released: it can never be refunded. */
export class BudgetRefundAfterRelease extends AccountingError {
  constructor() { super('BUDGET_REFUND_AFTER_RELEASE', 'the result of this charge was released; it cannot be refunded', 409); }
}

/** The charge was refunded: its result must not be released. */
export class BudgetChargeRefunded extends AccountingError {
  constructor() { super('BUDGET_CHARGE_REFUNDED', 'this charge was refunded; its result must not be released', 409); }
}

/** The database stayed locked by other writers through every retry. Nothing was charged. */
export class BudgetStoreBusy extends AccountingError {
  constructor(options?: { cause?: unknown }) { super('BUDGET_STORE_BUSY', 'the budget store is busy; nothing was charged, retry later', 503, { ...options, retryAfterSeconds: 1 }); }
}

/** The store is closed, or its contents break an invariant (never silently repaired). */
export class BudgetStoreUnavailable extends AccountingError {
  constructor(message: string, options?: { cause?: unknown }) { super('BUDGET_STORE_UNAVAILABLE', message, 503, options); }
}
