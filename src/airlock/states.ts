/**
 * The airlock's states and the only transitions between them (the Azure TRE airlock and
 * OpenSAFELY output checking, as one table):
 *
 *   draft ──submit──▶ submitted ──checks pass──▶ in_review ──2 distinct approvals──▶ approved ──release──▶ released
 *                          │                        │
 *                          └──checks fail──▶ blocked └──reject──▶ rejected
 *
 * and from in_review or approved, outputs whose hash changed ──▶ blocked.
 *
 * Anything else is refused with CONFLICT and changes nothing. Terminal: released, rejected,
 * blocked (a blocked or rejected output needs a new request from a new run).
 */
import { GatehouseError } from '../errors.ts';

export const AIRLOCK_STATES = ['draft', 'submitted', 'in_review', 'approved', 'rejected', 'blocked', 'released'] as const;
export type AirlockState = (typeof AIRLOCK_STATES)[number];

/** `tamper-detected`: the pinned outputs no longer hash to what was submitted. */
export type AirlockEvent = 'submit' | 'checks-passed' | 'checks-failed' | 'approve' | 'reject' | 'release' | 'tamper-detected';

const TRANSITIONS: Readonly<Record<AirlockState, Partial<Record<AirlockEvent, AirlockState>>>> = {
  draft: { submit: 'submitted' },
  submitted: { 'checks-passed': 'in_review', 'checks-failed': 'blocked' },
  in_review: { approve: 'in_review', reject: 'rejected', 'tamper-detected': 'blocked' },
  approved: { release: 'released', 'tamper-detected': 'blocked' },
  rejected: {},
  blocked: {},
  released: {},
};

/** The state after `event`, or CONFLICT if the event is not allowed in `from`. */
export function transition(from: AirlockState, event: AirlockEvent): AirlockState {
  const to = TRANSITIONS[from][event];
  if (to === undefined) {
    throw new GatehouseError('CONFLICT', `an airlock request in state "${from}" cannot ${event.replace('-', ' ')}`, {
      detail: 'AIRLOCK_ILLEGAL_TRANSITION',
      hint: `allowed from "${from}": ${Object.keys(TRANSITIONS[from]).join(', ') || 'nothing (final state)'}`,
    });
  }
  return to;
}

/** Approvals needed, from distinct reviewers none of whom is the requester or the job's author. */
export const REQUIRED_APPROVALS = 2;
