/**
 * Typed errors for statistical disclosure control: GatehouseErrors whose `detail` is the
 * SDC code the docs list (docs/disclosure-control.md, "Errors") and whose `code` SDC_CODES
 * gives. Messages name rows by index and columns by name, never a data value (invariant 9):
 * an SDC error must not itself disclose the cell it was protecting.
 */
import { codeFor, GatehouseError, type ErrorCode } from '../../errors.ts';

/** SDC code → union code: a table that cannot be published safely breaks the query's obligation. */
export const SDC_CODES: Readonly<Record<string, ErrorCode>> = {
  SDC_INPUT_INVALID: 'INTERNAL',
  SDC_UNPROTECTABLE: 'OBLIGATION_VIOLATION',
};

export class SdcError extends GatehouseError {
  declare readonly detail: string;
  /** `status` chooses the union code only for a code SDC_CODES does not list. */
  constructor(code: string, message: string, status: number) {
    super(codeFor(code, SDC_CODES, status), message, { detail: code, reasons: [code] });
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
