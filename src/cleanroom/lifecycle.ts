/**
 * The changes a collaboration goes through, as pure functions from one version to the next.
 * Each checks who may make it (ability, ownership, membership) and bumps the version; the
 * coordinator (the creating node) applies them and every member's node keeps, and logs,
 * each version it receives.
 */
import { randomBytes } from 'node:crypto';
import { CleanroomError } from './errors.ts';
import { memberOf, parseRule, requireAbility, type Ability, type Collaboration, type ContributedColumn, type Contribution, type Member } from './model.ts';
import { templateOf, findTemplate } from './templates.ts';
import { parseComputeSettings } from './attestation-requirement.ts';

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const TABLE = /^[a-z_][a-z0-9_]{0,62}$/;

function bump(c: Collaboration, change: Partial<Collaboration>): Collaboration {
  return { ...c, ...change, version: c.version + 1 };
}

export function createCollaboration(input: { id?: string; name: string; purpose: string; creator: string; creatorKey: string; computeNode?: string; sealingKey?: Member['sealingKey']; compute?: unknown }): Collaboration {
  const id = input.id ?? `cr-${randomBytes(6).toString('hex')}`;
  if (!ID.test(id)) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'a collaboration id is lower-case letters, digits and dashes');
  if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(input.purpose)) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'a purpose is lower-case letters, digits, _ . - (at most 64)');
  const compute = parseComputeSettings(input.compute);
  return {
    id, name: input.name.slice(0, 200), purpose: input.purpose, creator: input.creator, computeNode: input.computeNode ?? input.creator,
    members: [{ nodeId: input.creator, publicKey: input.creatorKey, abilities: ['query', 'receive', 'approve'], status: 'active', sealingKey: input.sealingKey ?? null }],
    contributions: [], templates: [], status: 'active', version: 1,
    ...(compute.requireAttestation ? { compute } : {}),
  };
}

function active(c: Collaboration): void {
  if (c.status === 'ended') throw new CleanroomError('CLEANROOM_ENDED', `collaboration "${c.id}" has ended`);
}

export function addInvitee(c: Collaboration, by: string, invitee: { nodeId: string; publicKey: string }, abilities: readonly Ability[]): Collaboration {
  active(c);
  if (by !== c.creator) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', 'only the collaboration creator invites members');
  const existing = c.members.find((m) => m.nodeId === invitee.nodeId);
  if (existing?.status === 'active') throw new CleanroomError('CLEANROOM_CONFLICT', `"${invitee.nodeId}" is already a member`);
  const members = c.members.filter((m) => m.nodeId !== invitee.nodeId);
  return bump(c, { members: [...members, { ...invitee, abilities: [...abilities], status: 'invited' }] });
}

export function acceptInvitation(c: Collaboration, nodeId: string, publicKey: string, sealingKey: Member['sealingKey'] = null): Collaboration {
  active(c);
  const m = c.members.find((x) => x.nodeId === nodeId);
  if (!m || m.status !== 'invited' || m.publicKey !== publicKey) throw new CleanroomError('CLEANROOM_INVITATION_INVALID', `there is no open invitation for "${nodeId}"`);
  return bump(c, { members: c.members.map((x) => (x.nodeId === nodeId ? { ...x, status: 'active', sealingKey } : x)) });
}

export function contribute(c: Collaboration, owner: string, input: { table: string; dataset: string; columns: readonly ContributedColumn[]; rule: unknown }): Collaboration {
  active(c);
  if (memberOf(c, owner) === null) throw new CleanroomError('CLEANROOM_NOT_MEMBER', `"${owner}" is not an active member`);
  if (!TABLE.test(input.table)) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'a table name is lower-case letters, digits and _');
  const existing = c.contributions.find((t) => t.table === input.table);
  if (existing && existing.owner !== owner) throw new CleanroomError('CLEANROOM_CONFLICT', `table "${input.table}" is another member's`);
  const contribution: Contribution = { table: input.table, owner, dataset: input.dataset, columns: input.columns, rule: parseRule(input.rule, input.columns) };
  return bump(c, { contributions: [...c.contributions.filter((t) => t.table !== input.table), contribution] });
}

/** A rule change by the table's owner; it applies to the next query at once. */
export function setRule(c: Collaboration, owner: string, table: string, rule: unknown): Collaboration {
  active(c);
  const t = c.contributions.find((x) => x.table === table);
  if (!t) throw new CleanroomError('CLEANROOM_NOT_FOUND', `table "${table}" is not contributed`);
  if (t.owner !== owner) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', `only "${t.owner}" sets the rules of table "${table}"`);
  return bump(c, { contributions: c.contributions.map((x) => (x.table === table ? { ...x, rule: parseRule(rule, x.columns) } : x)) });
}

/** A new template or new text for one: a changed text loses every approval. */
export function proposeTemplate(c: Collaboration, author: string, name: string, text: string): Collaboration {
  requireAbility(c, author, 'query');
  const t = templateOf(name, text, author);
  const old = c.templates.find((x) => x.name === name);
  const next = old && old.hash === t.hash ? old : t;
  return bump(c, { templates: [...c.templates.filter((x) => x.name !== name), next] });
}

export function approveTemplate(c: Collaboration, approver: string, name: string, hash: string): Collaboration {
  requireAbility(c, approver, 'approve');
  const t = findTemplate(c, name);
  if (t.hash !== hash) throw new CleanroomError('CLEANROOM_CONFLICT', `template "${name}" changed: its text is now ${t.hash}`, 'review the current text and approve that hash');
  if (!c.contributions.some((x) => x.owner === approver)) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', 'only a member that contributes a table approves templates');
  return bump(c, { templates: c.templates.map((x) => (x.name === name ? { ...x, approvals: { ...x.approvals, [approver]: hash } } : x)) });
}

/** A member leaves: its tables leave with it, at once. */
export function leave(c: Collaboration, nodeId: string): Collaboration {
  active(c);
  if (memberOf(c, nodeId) === null) throw new CleanroomError('CLEANROOM_NOT_MEMBER', `"${nodeId}" is not an active member`);
  if (nodeId === c.creator) return end(c, nodeId);
  return bump(c, {
    members: c.members.map((m) => (m.nodeId === nodeId ? { ...m, status: 'left' } : m)),
    contributions: c.contributions.filter((t) => t.owner !== nodeId),
  });
}

export function end(c: Collaboration, by: string): Collaboration {
  if (by !== c.creator) throw new CleanroomError('CLEANROOM_ABILITY_MISSING', 'only the creator ends a collaboration; members leave it');
  return bump(c, { status: 'ended', contributions: [] });
}
