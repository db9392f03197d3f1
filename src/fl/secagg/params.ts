/**
 * Checks of a session's parameters, shared by the coordinator and every participant, so a
 * participant refuses a session whose threshold would let the coordinator reconstruct both
 * secrets of one participant.
 *
 * Why 2t > k + 1: v's secrets are split into k + 1 shares (its k neighbours and v itself, as
 * in Bonawitz et al., whose shares go to all of U1). An honest participant reveals, for each
 * neighbour v, either a share of b_v or a share of s_v^SK (messages.ts, round 4). To learn
 * both, the coordinator would need t shares of each; if 2t > k + 1 there are not enough
 * holders for two disjoint
 * sets of t, and the consistency round stops it from showing different survivor sets to
 * different neighbours (Bonawitz et al. 2017 §4, Thm 6.3 for the active case).
 */
import { FlError } from '../errors.ts';
import type { SessionParams } from './messages.ts';

export const MAX_ROSTER = 10_000;
export const MAX_LENGTH = 1 << 26;

export function checkParams(p: SessionParams): void {
  if (typeof p.session !== 'string' || p.session.length < 8 || p.session.length > 200) throw new FlError('FL_PARAMETERS_INVALID', 'a session id is 8–200 characters');
  if (!Array.isArray(p.roster) || p.roster.length < 2 || p.roster.length > MAX_ROSTER) throw new FlError('FL_PARAMETERS_INVALID', `a session has 2–${MAX_ROSTER} participants`);
  if (!Number.isInteger(p.length) || p.length < 1 || p.length > MAX_LENGTH) throw new FlError('FL_PARAMETERS_INVALID', `the vector length must be 1–${MAX_LENGTH}`);
  const k = Math.min(p.degree, p.roster.length - 1);
  if (!Number.isInteger(p.threshold) || p.threshold < 2 || p.threshold > k + 1 || 2 * p.threshold <= k + 1) {
    throw new FlError('FL_PARAMETERS_INVALID', `the threshold must satisfy 2t > k + 1 and 2 ≤ t ≤ k + 1 (k = ${k}, t = ${p.threshold})`, 'raise the threshold above half the neighbourhood size');
  }
  if (k + 1 > 255) throw new FlError('FL_PARAMETERS_INVALID', 'a neighbourhood has at most 255 members (Shamir over GF(2^8))', 'use SecAgg+ with a smaller degree');
}
