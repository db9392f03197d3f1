/**
 * Every error Gatehouse returns to a caller is a GatehouseError with a stable code.
 * Codes are listed in docs/errors.md; callers match on `code`, never on the message.
 * Messages and hints never contain data values or secrets (invariant 9).
 */
export const ERROR_STATUS = {
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  MFA_REQUIRED: 401,
  RATE_LIMITED: 429,
  POLICY_DENIED: 403,
  OBLIGATION_VIOLATION: 403,
  ROW_CAP_EXCEEDED: 403,
  BUDGET_EXHAUSTED: 403,
  DLP_BLOCKED: 403,
  DIFFERENCING_DETECTED: 403,
  SQL_SYNTAX: 400,
  SQL_UNSUPPORTED: 400,
  SQL_FUNCTION_NOT_ALLOWED: 400,
  SQL_UNKNOWN_DATASET: 400,
  SQL_UNKNOWN_COLUMN: 400,
  SQL_AMBIGUOUS_COLUMN: 400,
  SQL_INVALID: 400,
  REQUEST_INVALID: 400,
  NOT_FOUND: 404,
  QUERY_TIMEOUT: 408,
  ENGINE_ERROR: 422,
  AUDIT_UNAVAILABLE: 503,
  WORKSPACE_INVALID: 500,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | null;
  /** Reasons a user can act on (policy denials list them); never data values. */
  readonly reasons: readonly string[];

  constructor(code: ErrorCode, message: string, options: { hint?: string; reasons?: readonly string[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.hint = options.hint ?? null;
    this.reasons = options.reasons ?? [];
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** Fastify's convention, so plugins with their own error handlers keep the status. */
  get statusCode(): number {
    return this.status;
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
