/**
 * Identity errors as callers see them. Identity's own errors are GatehouseErrors with a
 * public code already (src/identity/password.ts, elevation.ts); what this adds is that an
 * invalid credential is always answered with the same message the caller chose — whether
 * the user is unknown, the password wrong, the account disabled or the session ended — so
 * nothing is learnt from the wording. Anything else unexpected becomes INTERNAL.
 */
import { asGatehouseError, GatehouseError } from '../errors.ts';

export function identityError(err: unknown, message: string): GatehouseError {
  const e = asGatehouseError(err);
  if (e.code === 'AUTH_INVALID' && e.message !== message) return new GatehouseError('AUTH_INVALID', message, { reasons: e.reasons, cause: err });
  return e;
}
