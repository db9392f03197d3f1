/**
 * Clean-room error details on the one error model (src/errors.ts). A query that breaks an
 * analysis rule is OBLIGATION_VIOLATION (the rules are obligations); a member without the
 * ability is POLICY_DENIED; a forged invitation is AUTH_INVALID.
 */
import { GatehouseError, type ErrorCode } from '../errors.ts';

export type CleanroomErrorDetail =
  | 'CLEANROOM_RULE_VIOLATION'
  | 'CLEANROOM_TEMPLATE_UNAPPROVED'
  | 'CLEANROOM_ABILITY_MISSING'
  | 'CLEANROOM_NOT_MEMBER'
  | 'CLEANROOM_NOT_FOUND'
  | 'CLEANROOM_ENDED'
  | 'CLEANROOM_INVITATION_INVALID'
  | 'CLEANROOM_DEFINITION_INVALID'
  | 'CLEANROOM_CONFLICT';

const CODE: Readonly<Record<CleanroomErrorDetail, ErrorCode>> = {
  CLEANROOM_RULE_VIOLATION: 'OBLIGATION_VIOLATION',
  CLEANROOM_TEMPLATE_UNAPPROVED: 'POLICY_DENIED',
  CLEANROOM_ABILITY_MISSING: 'POLICY_DENIED',
  CLEANROOM_NOT_MEMBER: 'POLICY_DENIED',
  CLEANROOM_NOT_FOUND: 'NOT_FOUND',
  CLEANROOM_ENDED: 'GONE',
  CLEANROOM_INVITATION_INVALID: 'AUTH_INVALID',
  CLEANROOM_DEFINITION_INVALID: 'REQUEST_INVALID',
  CLEANROOM_CONFLICT: 'CONFLICT',
};

export class CleanroomError extends GatehouseError {
  constructor(detail: CleanroomErrorDetail, message: string, hint?: string) {
    super(CODE[detail], message, { detail, hint: hint ?? null });
  }
}

export function ruleViolation(message: string, hint: string): never {
  throw new CleanroomError('CLEANROOM_RULE_VIOLATION', message, hint);
}
