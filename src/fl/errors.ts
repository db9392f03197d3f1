/**
 * Typed errors of federated learning: GatehouseErrors whose `detail` is the stable FL code
 * callers and tests match on, and whose union code (HTTP status, audit outcome, SQLSTATE)
 * comes from FL_CODES and the one table in src/errors.ts. Messages name participants,
 * stages and parameters only — never an update, a mask, a key or a share (invariant 9).
 */
import { codeFor, GatehouseError, type ErrorCode } from '../errors.ts';

/**
 * FL code → union code. A message that cannot prove its sender (forged, replayed, another
 * participant's key) is AUTH_INVALID; a protocol that cannot finish safely (too few
 * participants left) is UNAVAILABLE; bad parameters are REQUEST_INVALID; an exhausted
 * participant budget is BUDGET_EXHAUSTED.
 */
export const FL_CODES: Readonly<Record<string, ErrorCode>> = {
  FL_PARAMETERS_INVALID: 'REQUEST_INVALID',
  FL_VALUE_OUT_OF_RANGE: 'REQUEST_INVALID',
  FL_MESSAGE_FORGED: 'AUTH_INVALID',
  FL_MESSAGE_REPLAYED: 'AUTH_INVALID',
  FL_KEY_REUSED: 'AUTH_INVALID',
  FL_PARTICIPANT_UNKNOWN: 'AUTH_INVALID',
  FL_STAGE_OUT_OF_ORDER: 'CONFLICT',
  FL_TOO_FEW_PARTICIPANTS: 'UNAVAILABLE',
  FL_UNMASK_REFUSED: 'POLICY_DENIED',
  FL_BUDGET_EXHAUSTED: 'BUDGET_EXHAUSTED',
  FL_DECRYPTION_REFUSED: 'POLICY_DENIED',
};

export class FlError extends GatehouseError {
  declare readonly detail: string;
  constructor(detail: keyof typeof FL_CODES & string, message: string, hint: string | null = null) {
    super(codeFor(detail, FL_CODES), message, { detail, hint, reasons: [detail] });
  }
}
