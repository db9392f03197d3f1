/**
 * Typed errors for the noise mechanisms: GatehouseErrors whose `detail` is the stable
 * mechanism code (listed in docs/privacy-mechanisms.md, "Error codes") callers match on,
 * never the message; `code` is the union code MECHANISM_CODES gives. Messages name the
 * parameter that was refused, never a data value.
 */
import { codeFor, GatehouseError, type ErrorCode } from '../../errors.ts';

/** Mechanism code → union code: every refusal is a parameter the caller (or the workspace) set. */
export const MECHANISM_CODES: Readonly<Record<string, ErrorCode>> = {
  DP_PARAMETER_INVALID: 'REQUEST_INVALID',
  DP_PARAMETER_OUT_OF_RANGE: 'REQUEST_INVALID',
  DP_FIXED_POINT_OVERFLOW: 'REQUEST_INVALID',
};

export class MechanismError extends GatehouseError {
  declare readonly detail: string;
  /** `status` chooses the union code only for a code MECHANISM_CODES does not list. */
  constructor(code: string, message: string, status = 400) {
    super(codeFor(code, MECHANISM_CODES, status), message, { detail: code, reasons: [code] });
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
