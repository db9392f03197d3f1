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
  PROTOCOL_VIOLATION: { status: 400, outcome: 'error', sqlstate: '08P01', when: 'A PostgreSQL wire-protocol client sent a truncated, inconsistent or out-of-order message; the connection is closed.', next: 'Use a PostgreSQL client or driver that speaks protocol 3.0.' },
  NOT_FOUND: { status: 404, outcome: 'deny', sqlstate: '42704', when: 'No such object that you may see (route, result, grant, request).', next: 'Check the id; list what you may see first.' },
  GONE: { status: 410, outcome: 'deny', sqlstate: '42704', when: 'The object was destroyed on purpose (crypto-shredded, or its key retired) and cannot be recovered.', next: 'Read the destruction certificate in the audit log; run the query again if you are still entitled to the data.' },
  CONFLICT: { status: 409, outcome: 'deny', sqlstate: '55000', when: 'The change conflicts with the current state: already decided, overlapping, under legal hold, already exists.', next: 'Read the current state, then decide again.' },
  QUERY_TIMEOUT: { status: 408, outcome: 'error', sqlstate: '57014', when: 'The query ran past its statement timeout or was cancelled.', next: 'Narrow the query, or aggregate.' },
  QUERY_TOO_COSTLY: { status: 422, outcome: 'error', sqlstate: '54000', when: 'The query is refused before it runs: its expressions are too large or deeply nested, or its estimated cost exceeds the limit.', next: 'Simplify the expressions, filter earlier, or join on declared keys.' },
  ENGINE_ERROR: { status: 422, outcome: 'error', sqlstate: '22000', when: 'The engine refused the query for a reason that depends on no value you may not see.', next: 'Read the message; fix the query.' },
  AUDIT_UNAVAILABLE: { status: 503, outcome: 'error', sqlstate: '58000', when: 'The audit log could not record the request, so it was not completed (fail closed).', next: 'Retry later; operators: check the audit log storage.' },
  UNAVAILABLE: { status: 503, outcome: 'error', sqlstate: '57P03', when: 'A part the request needs is not available now (shutting down, a store unreachable).', next: 'Retry later.' },
  WORKSPACE_INVALID: { status: 500, outcome: 'error', sqlstate: 'XX000', when: 'The workspace configuration is invalid.', next: 'Operators: run `gatehouse validate`.' },
  ATTESTATION_REFUSED: { status: 403, outcome: 'deny', sqlstate: '28000', when: 'Enclave evidence did not verify (forged, malformed, expired chain, wrong root) or its appraisal refused it: a wrong, used or expired nonce, debug mode, an unapproved measurement or code hash, the sample TEE outside test mode.', next: 'Request a new challenge (`POST /v1/attestation/challenge`) and attest again from an approved, non-debug enclave.' },
  JOB_LIMIT_EXCEEDED: { status: 422, outcome: 'error', sqlstate: '54000', when: 'A sandboxed job hit a limit (CPU, memory, stack, output or log size) and was stopped; nothing was released.', next: 'Make the job cheaper (stream rows, return aggregates) or ask the data owner for larger limits.' },
  JOB_FAILED: { status: 422, outcome: 'error', sqlstate: '38000', when: 'A sandboxed job threw, returned nothing JSON can represent, or did not match its manifest; nothing was released.', next: 'Run the job against mock data (`gatehouse job mock`) and fix it; read its logs (`gatehouse job logs`).' },
  BUNDLE_REJECTED: { status: 400, outcome: 'deny', sqlstate: '22023', when: 'An air-gapped bundle was refused: a bad signature or hash, a wrong recipient, a replayed or out-of-order sequence number; nothing was imported.', next: 'Ask the sender to export the bundle again; import bundles in sequence order.' },
  INTERNAL: { status: 500, outcome: 'error', sqlstate: 'XX000', when: 'An unexpected failure; nothing was released.', next: 'Retry; operators: read the server log.' },
  RESIDENCY_RAW_ROWS: { status: 403, outcome: 'deny', sqlstate: '42501', when: 'The result would carry rows of a dataset out of the region it must stay in: only aggregates released under aggregation-only (at least k units), differential-privacy releases and masked columns may cross.', next: 'Aggregate (`GROUP BY` with `count`/`sum`) so policy can release it across the border, or query from a node in the data\'s region.' },
  RESIDENCY_NOT_SPLITTABLE: { status: 403, outcome: 'deny', sqlstate: '0A000', when: 'The query reads data held in several regions and cannot be split into partial aggregates that may each cross: a join or set operation across regions, or an aggregate other than `count`/`sum`.', next: 'Query one region at a time, or ask for `count` and `sum` (divide for an average) grouped by columns you select.' },
  REGION_UNREACHABLE: { status: 503, outcome: 'error', sqlstate: '57P03', when: 'No node of a region the query needs answered (a partition between regions); no partial answer was given.', next: 'Retry when the region is reachable; `gatehouse node status` shows each pinned peer.' },
  CSRF_REJECTED: { status: 403, outcome: 'deny', sqlstate: '42501', when: 'A console request relied on the session cookie without the matching X-Gatehouse-CSRF header, or came from another site (Origin).', next: 'Use the console at /console; API clients send `Authorization: Bearer` instead of the cookie.' },
  POLICY_WIDENING_UNACKNOWLEDGED: { status: 409, outcome: 'deny', sqlstate: '55000', when: 'A workspace change would newly show a regulated column unmasked to some principal, and no second administrator signed an acknowledgement of it; the version in force stays.', next: 'Read the report (`gatehouse policy whatif --draft DIR`); if the widening is intended, an administrator signs it (`--acknowledge`), else fix the policy.' },
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

export interface GatehouseErrorOptions {
  readonly hint?: string | null;
  readonly reasons?: readonly string[];
  readonly cause?: unknown;
  readonly retryAfterSeconds?: number | null;
  /** The part's own, more precise code (`IDENTITY_ACCOUNT_LOCKED`, `GOV_ALREADY_DECIDED`). */
  readonly detail?: string | null;
}

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  /**
   * The part's own code when a part raised it (identity, governance, keys, audit, ...), for
   * operators, tests and audit entries; null for errors raised with a union code only.
   */
  readonly detail: string | null;
  readonly hint: string | null;
  /** Reasons a user can act on (policy denials list them); never data values. */
  readonly reasons: readonly string[];
  /** Seconds before a retry may succeed (RATE_LIMITED, UNAVAILABLE); null otherwise. */
  readonly retryAfterSeconds: number | null;

  constructor(code: ErrorCode, message: string, options: GatehouseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.detail = options.detail ?? null;
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

/**
 * The union code of a part's error when the part's own table does not name its detailed
 * code: the HTTP status the part gave it decides. Each part keeps a small table (detailed
 * code → union code) for the cases a status cannot tell apart (a 401 that means "send
 * your MFA code", a 403 that is a disabled account).
 */
export const CODE_BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'REQUEST_INVALID',
  401: 'AUTH_INVALID',
  403: 'POLICY_DENIED',
  404: 'NOT_FOUND',
  408: 'QUERY_TIMEOUT',
  409: 'CONFLICT',
  410: 'GONE',
  429: 'RATE_LIMITED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
};

/** A part's detailed code → the union code: the part's table first, then the status it gave, else INTERNAL. */
export function codeFor(detail: string, table: Readonly<Record<string, ErrorCode>>, status?: number): ErrorCode {
  return (Object.hasOwn(table, detail) ? table[detail] : undefined) ?? (status === undefined ? undefined : CODE_BY_STATUS[status]) ?? 'INTERNAL';
}

/**
 * Wraps anything thrown into a GatehouseError without leaking its message. A part's
 * INTERNAL error (a damaged keyring, a misconfigured store) keeps its detailed code but not
 * its message, which is for operators (file paths, configuration): the original stays the
 * `cause`, for the server log.
 */
export function asGatehouseError(err: unknown): GatehouseError {
  if (err instanceof GatehouseError && !(err.code === 'INTERNAL' && err.detail !== null)) return err;
  const detail = err instanceof GatehouseError ? err.detail : null;
  return new GatehouseError('INTERNAL', 'internal error; the request was not completed', { cause: err, detail, reasons: detail === null ? [] : [detail] });
}
