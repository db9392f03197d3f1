/**
 * Typed errors for statistical disclosure control. Callers match on `code`; the docs
 * list the codes (docs/disclosure-control.md, "Errors"). Messages name rows by index
 * and columns by name, never a data value (invariant 9): an SDC error must not itself
 * disclose the cell it was protecting.
 */

export class SdcError extends Error {
  readonly code: string;
  /** HTTP status the API maps this error to. */
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/**
 * The table handed to SDC is malformed: a missing, negative, fractional or non-finite
 * unit count, a non-numeric or non-finite measure, a negative count, a duplicate key.
 * This is a pipeline bug, not a user error, so it maps to 500 and the result is withheld
 * (fail closed).
 */
export class SdcInputInvalid extends SdcError {
  constructor(message: string) { super('SDC_INPUT_INVALID', message, 500); }
}

/**
 * A suppressed cell stays recoverable whatever else is suppressed, because the only
 * totals that pin it down were published elsewhere and no cell is left to hide. The
 * result is refused rather than released.
 */
export class SdcUnprotectable extends SdcError {
  constructor(message: string) { super('SDC_UNPROTECTABLE', message, 403); }
}
