/**
 * PSI's own error details on the project's one error model (src/errors.ts): a malformed or
 * hostile peer message is REQUEST_INVALID, a replayed or out-of-order one is CONFLICT, a
 * peer over its allowance is RATE_LIMITED. Messages never carry an element or a point.
 */
import { GatehouseError, type ErrorCode } from '../errors.ts';

export type PsiErrorDetail =
  | 'PSI_POINT_INVALID'
  | 'PSI_MESSAGE_MALFORMED'
  | 'PSI_REPLAY'
  | 'PSI_OUT_OF_ORDER'
  | 'PSI_SESSION_UNKNOWN'
  | 'PSI_SET_TOO_LARGE'
  | 'PSI_RATE_LIMITED';

const CODE: Readonly<Record<PsiErrorDetail, ErrorCode>> = {
  PSI_POINT_INVALID: 'REQUEST_INVALID',
  PSI_MESSAGE_MALFORMED: 'REQUEST_INVALID',
  PSI_REPLAY: 'CONFLICT',
  PSI_OUT_OF_ORDER: 'CONFLICT',
  PSI_SESSION_UNKNOWN: 'NOT_FOUND',
  PSI_SET_TOO_LARGE: 'REQUEST_INVALID',
  PSI_RATE_LIMITED: 'RATE_LIMITED',
};

export class PsiError extends GatehouseError {
  constructor(detail: PsiErrorDetail, message: string, options: { hint?: string; retryAfterSeconds?: number } = {}) {
    super(CODE[detail], message, { detail, hint: options.hint ?? null, retryAfterSeconds: options.retryAfterSeconds ?? null });
  }
}
