/** Identity library errors → the API's codes, without passing on any secret. */
import { GatehouseError } from '../errors.ts';
import { ElevationError } from './elevation.ts';
import { IdentityError } from './password.ts';

export function identityError(err: unknown, message: string): GatehouseError {
  if (err instanceof GatehouseError) return err;
  if (err instanceof ElevationError) {
    if (err.status === 403) return new GatehouseError('POLICY_DENIED', err.message, { reasons: [err.code] });
    if (err.status === 404) return new GatehouseError('NOT_FOUND', err.message);
    if (err.status === 409) return new GatehouseError('CONFLICT', err.message, { reasons: [err.code] });
    return new GatehouseError('REQUEST_INVALID', err.message, { reasons: [err.code] });
  }
  if (err instanceof IdentityError) {
    if (err.status === 429) return new GatehouseError('RATE_LIMITED', `too many attempts; try again in ${err.retryAfterSeconds ?? 60} s`, { hint: 'wait, then retry', retryAfterSeconds: err.retryAfterSeconds ?? 60 });
    if (err.code === 'IDENTITY_MFA_CODE_REQUIRED') return new GatehouseError('MFA_REQUIRED', err.message, { hint: 'send the current code from your authenticator as "code"' });
    if (err.status === 403 && err.code !== 'IDENTITY_ACCOUNT_DISABLED') return new GatehouseError('POLICY_DENIED', err.message, { reasons: [err.code] });
    if (err.status === 401 || err.status === 403 || err.status === 404) return new GatehouseError('AUTH_INVALID', message, { reasons: [err.code] });
    if (err.status === 400) return new GatehouseError('REQUEST_INVALID', err.message);
    if (err.status === 409) return new GatehouseError('CONFLICT', err.message, { reasons: [err.code] });
    if (err.status === 503) return new GatehouseError('UNAVAILABLE', err.message, { reasons: [err.code] });
  }
  return new GatehouseError('INTERNAL', 'identity service error; the request was not completed', { cause: err });
}
