/**
 * Typed errors for the noise mechanisms. Callers match on `code` (stable, listed in
 * docs/privacy-mechanisms.md, "Error codes"), never on the message. Messages name the
 * parameter that was refused, never a data value.
 */

export class MechanismError extends Error {
  readonly code: string;
  /** HTTP status the API maps this error to. */
  readonly status: number;
  constructor(code: string, message: string, status = 400) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** NaN, ±Infinity, −0 where zero is invalid, non-integers, malformed decimal strings, wrong types. */
export class MechanismParameterInvalid extends MechanismError {
  constructor(message: string) { super('DP_PARAMETER_INVALID', message); }
}

/** A well-formed parameter outside the supported range (zero or negative scale, absurdly large scale). */
export class MechanismParameterOutOfRange extends MechanismError {
  constructor(message: string) { super('DP_PARAMETER_OUT_OF_RANGE', message); }
}

/** A fixed-point value or sum would leave the range where JavaScript numbers are exact integers. */
export class FixedPointOverflow extends MechanismError {
  constructor(message: string) { super('DP_FIXED_POINT_OVERFLOW', message); }
}
