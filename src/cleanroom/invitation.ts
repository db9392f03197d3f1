/**
 * Signed invitations. The inviting node signs, with its Ed25519 node key (the key its peers
 * pin; src/federation), what it offers: which collaboration, for which purpose, to which
 * node (by id and pinned key), with which abilities, until when. The invitee verifies the
 * signature against the inviter's pinned key before it shows or accepts anything, and the
 * coordinator accepts each invitation once (its nonce) and never after it expires.
 *
 * Signature: Ed25519 (RFC 8032) over the canonical JSON (src/audit/canonical.ts) of the
 * invitation without its signature.
 */
import { randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalBytes } from '../audit/canonical.ts';
import { CleanroomError } from './errors.ts';
import { ABILITIES, type Ability } from './model.ts';

export const INVITATION_FORMAT = 'gatehouse-cleanroom-invitation/v1';

export interface InvitationBody {
  readonly type: typeof INVITATION_FORMAT;
  readonly collaborationId: string;
  readonly name: string;
  readonly purpose: string;
  readonly inviter: string;
  readonly invitee: string;
  readonly inviteeKey: string;
  readonly abilities: readonly Ability[];
  readonly computeNode: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly nonce: string;
}

export interface Invitation extends InvitationBody {
  /** base64url Ed25519 signature by the inviter's node key. */
  readonly signature: string;
}

export function signInvitation(body: Omit<InvitationBody, 'type' | 'nonce'>, inviterKey: KeyObject): Invitation {
  const full: InvitationBody = { ...body, type: INVITATION_FORMAT, nonce: randomBytes(16).toString('base64url') };
  return { ...full, signature: sign(null, canonicalBytes(full), inviterKey).toString('base64url') };
}

function refuse(message: string): never {
  throw new CleanroomError('CLEANROOM_INVITATION_INVALID', message, 'ask the inviting member for a new invitation');
}

/**
 * Verifies an invitation for `self` against the inviter's pinned key; returns it typed.
 * Refuses a wrong signature, a wrong addressee, an expired invitation and unknown abilities.
 */
export function verifyInvitation(raw: unknown, inviterKey: KeyObject, self: { nodeId: string; publicKey: string }, now: Date): Invitation {
  if (typeof raw !== 'object' || raw === null) refuse('not an invitation');
  const inv = raw as Record<string, unknown>;
  if (inv.type !== INVITATION_FORMAT) refuse(`not a ${INVITATION_FORMAT}`);
  const fields = ['collaborationId', 'name', 'purpose', 'inviter', 'invitee', 'inviteeKey', 'computeNode', 'issuedAt', 'expiresAt', 'nonce', 'signature'];
  for (const f of fields) if (typeof inv[f] !== 'string') refuse(`the invitation has no ${f}`);
  if (!Array.isArray(inv.abilities) || inv.abilities.some((a) => !ABILITIES.includes(a as Ability))) refuse('the invitation lists unknown abilities');
  const { signature, ...body } = inv;
  let ok = false;
  try {
    ok = verify(null, canonicalBytes(body), inviterKey, Buffer.from(signature as string, 'base64url'));
  } catch {
    ok = false;
  }
  if (!ok) refuse('the invitation signature does not verify against the inviter\'s pinned node key');
  if (inv.invitee !== self.nodeId || inv.inviteeKey !== self.publicKey) refuse('the invitation is addressed to another node');
  if (Date.parse(inv.expiresAt as string) <= now.getTime()) refuse('the invitation has expired');
  return inv as unknown as Invitation;
}
