/**
 * The one error model. Every error Gatehouse returns to a caller is a GatehouseError (or a
 * subclass a part defines, as jose's JWTExpired extends JOSEError) with a stable code from
 * one union. One table gives each code its HTTP status, its audit outcome (a refusal is
 * `deny`, a failure is `error`) and its SQLSTATE on the PostgreSQL wire protocol, so every
 * front and every audit entry classify the same failure the same way.
 *
 * docs/errors.md is generated from this table (`node scripts/errors-doc.ts`); a test fails
 * when they differ. Messages and hints never contain data values or secrets (invariant 9).
 */

export type AuditOutcome = 'deny' | 'error';

interface CodeSpec {
  readonly status: number;
  readonly outcome: AuditOutcome;
  readonly sqlstate: string;
  /** When a caller sees it (docs/errors.md). */
  readonly when: string;
  /** What to do next (docs/errors.md). */
  readonly next: string;
}

export const ERRORS = {
  AUTH_REQUIRED: { status: 401, outcome: 'deny', sqlstate: '28000', when: 'No credential was presented.', next: 'Send `Authorization: Bearer <API key or session token>`; on the wire, sign in with a connection password or a client certificate.' },
  AUTH_INVALID: { status: 401, outcome: 'deny', sqlstate: '28P01', when: 'The credential matches no principal: unknown, revoked, expired, or a wrong password (all answered alike).', next: 'Check the credential; revoked keys and ended sessions stop working at the next request. Sign in again or ask for a new key.' },
  MFA_REQUIRED: { status: 401, outcome: 'deny', sqlstate: '28000', when: 'The principal must use multi-factor authentication and presented an API key or a password-only session, has not enrolled yet, or regulated data needs a more recent MFA event (step-up).', next: 'Enrol (`gatehouse mfa enrol/confirm`), sign in with password and code (`gatehouse login`), or step up (`gatehouse mfa step-up`).' },
  RATE_LIMITED: { status: 429, outcome: 'deny', sqlstate: '53400', when: 'Too many requests or concurrent queries from the address, principal or organisation, or too many sign-in attempts.', next: 'Wait the time the message (and the `Retry-After` header) gives, then retry.' },
  POLICY_DENIED: { status: 403, outcome: 'deny', sqlstate: '42501', when: 'No policy allows the request (default deny), a forbid policy matched, contractor governance refused it, or the caller lacks a role the operation needs. `reasons` lists why.', next: 'Read the reasons: use a permitted purpose, or ask the data owner for a grant, an agreement or the missing attribute.' },
  OBLIGATION_VIOLATION: { status: 403, outcome: 'deny', sqlstate: '42501', when: 'The query breaks an obligation of the decision: aggregation-only, join-only or differential-privacy rules.', next: 'Rewrite the query as the message and hint say (for example `GROUP BY` with `count`/`sum`).' },
  ROW_CAP_EXCEEDED: { status: 403, outcome: 'deny', sqlstate: '54000', when: '`OFFSET` at or past the row cap, or inside a subquery. Longer results are truncated, not refused.', next: 'Narrow the query with `WHERE`, or aggregate, instead of paging.' },
  BUDGET_EXHAUSTED: { status: 403, outcome: 'deny', sqlstate: '53400', when: 'The query would exceed a differential-privacy budget.', next: 'Ask what a query costs first (`gatehouse query --estimate`); wait for the window to reset, or ask the data owner.' },
  DLP_BLOCKED: { status: 403, outcome: 'deny', sqlstate: '42501', when: 'Data-loss prevention found sensitive values in the result and the rule blocks it.', next: 'Leave the sensitive column out, or query it through its mask.' },
  DIFFERENCING_DETECTED: { status: 403, outcome: 'deny', sqlstate: '42501', when: 'Together with earlier queries, this one would isolate fewer individuals than the rule allows.', next: 'Change the filter by a larger group, or ask for differentially private access.' },
  SQL_SYNTAX: { status: 400, outcome: 'error', sqlstate: '42601', when: 'The SQL does not parse.', next: 'Fix the syntax at the position the message gives.' },
  SQL_UNSUPPORTED: { status: 400, outcome: 'error', sqlstate: '0A000', when: 'The SQL uses a construct outside the governed subset (docs/sql.md), or mixes engines.', next: 'Rewrite the query with the supported constructs the message names.' },
  SQL_FUNCTION_NOT_ALLOWED: { status: 400, outcome: 'error', sqlstate: '42883', when: 'A function outside the allowlist.', next: 'Use an allowed function (docs/sql.md).' },
  SQL_UNKNOWN_DATASET: { status: 400, outcome: 'error', sqlstate: '42P01', when: 'A table name that is not a dataset you may see.', next: 'List your datasets (`gatehouse datasets`).' },
  SQL_UNKNOWN_COLUMN: { status: 400, outcome: 'error', sqlstate: '42703', when: 'A column the dataset does not have.', next: 'Describe the dataset (`gatehouse datasets`).' },
  SQL_AMBIGUOUS_COLUMN: { status: 400, outcome: 'error', sqlstate: '42702', when: 'A column name that several tables of the query have.', next: 'Qualify it with the table name or alias.' },
  SQL_INVALID: { status: 400, outcome: 'error', sqlstate: '42000', when: 'The SQL parses but is not valid: a type mismatch found at bind time, a misplaced aggregate, a bad parameter.', next: 'Fix the query as the message says.' },
  REQUEST_INVALID: { status: 400, outcome: 'error', sqlstate: '22023', when: 'The request is malformed: a missing or invalid field, an oversized body or message.', next: 'Fix the request as the message says.' },
  NOT_FOUND: { status: 404, outcome: 'deny', sqlstate: '42704', when: 'No such object that you may see (route, result, grant, request).', next: 'Check the id; list what you may see first.' },
  CONFLICT: { status: 409, outcome: 'deny', sqlstate: '55000', when: 'The change conflicts with the current state: already decided, overlapping, under legal hold, already exists.', next: 'Read the current state, then decide again.' },
  QUERY_TIMEOUT: { status: 408, outcome: 'error', sqlstate: '57014', when: 'The query ran past its statement timeout or was cancelled.', next: 'Narrow the query, or aggregate.' },
  QUERY_TOO_COSTLY: { status: 422, outcome: 'error', sqlstate: '54000', when: 'The query is refused before it runs: its expressions are too large or deeply nested, or its estimated cost exceeds the limit.', next: 'Simplify the expressions, filter earlier, or join on declared keys.' },
  ENGINE_ERROR: { status: 422, outcome: 'error', sqlstate: '22000', when: 'The engine refused the query for a reason that depends on no value you may not see.', next: 'Read the message; fix the query.' },
  AUDIT_UNAVAILABLE: { status: 503, outcome: 'error', sqlstate: '58000', when: 'The audit log could not record the request, so it was not completed (fail closed).', next: 'Retry later; operators: check the audit log storage.' },
  UNAVAILABLE: { status: 503, outcome: 'error', sqlstate: '57P03', when: 'A part the request needs is not available now (shutting down, a store unreachable).', next: 'Retry later.' },
  WORKSPACE_INVALID: { status: 500, outcome: 'error', sqlstate: 'XX000', when: 'The workspace configuration is invalid.', next: 'Operators: run `gatehouse validate`.' },
  INTERNAL: { status: 500, outcome: 'error', sqlstate: 'XX000', when: 'An unexpected failure; nothing was released.', next: 'Retry; operators: read the server log.' },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** HTTP status per code (kept for callers that want only the status). */
export const ERROR_STATUS: { readonly [K in ErrorCode]: (typeof ERRORS)[K]['status'] } = Object.fromEntries(
  Object.entries(ERRORS).map(([k, v]) => [k, v.status]),
) as never;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The audit outcome of a request that ended with this code. */
export function outcomeOf(code: ErrorCode): AuditOutcome {
  return ERRORS[code].outcome;
}

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | null;
  /** Reasons a user can act on (policy denials list them); never data values. */
  readonly reasons: readonly string[];
  /** Seconds before a retry may succeed (RATE_LIMITED, UNAVAILABLE); null otherwise. */
  readonly retryAfterSeconds: number | null;

  constructor(code: ErrorCode, message: string, options: { hint?: string | null; reasons?: readonly string[]; cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.hint = options.hint ?? null;
    this.reasons = options.reasons ?? [];
    this.retryAfterSeconds = options.retryAfterSeconds ?? null;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  /** Fastify's convention, so plugins with their own error handlers keep the status. */
  get statusCode(): number {
    return this.status;
  }

  get outcome(): AuditOutcome {
    return ERRORS[this.code].outcome;
  }

  get sqlstate(): string {
    return ERRORS[this.code].sqlstate;
  }

  toJSON(): { code: ErrorCode; message: string; hint: string | null; reasons: readonly string[] } {
    return { code: this.code, message: this.message, hint: this.hint, reasons: this.reasons };
  }
}

/** Wraps anything thrown into a GatehouseError without leaking its message. */
export function asGatehouseError(err: unknown): GatehouseError {
  if (err instanceof GatehouseError) return err;
  return new GatehouseError('INTERNAL', 'internal error; the request was not completed', { cause: err });
}
