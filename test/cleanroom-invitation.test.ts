/**
 * Signed invitations and the collaboration lifecycle (src/cleanroom/invitation.ts,
 * lifecycle.ts): forged, misaddressed and expired invitations, and who may change what.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { signInvitation, verifyInvitation } from '../src/cleanroom/invitation.ts';
import * as life from '../src/cleanroom/lifecycle.ts';
import { ACCOUNT_COLUMNS } from '../src/cleanroom/demo-bank.ts';

const inviter = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const now = new Date('2026-12-07T10:00:00Z');
const body = {
  collaborationId: 'fraud-ring', name: 'Fraud', purpose: 'fraud-detection', inviter: 'bank-a', invitee: 'bank-b', inviteeKey: 'ed25519:bbb',
  abilities: ['query', 'receive'] as const, computeNode: 'bank-a', issuedAt: now.toISOString(), expiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
};
const self = { nodeId: 'bank-b', publicKey: 'ed25519:bbb' };
const detail = (fn: () => unknown): string => { try { fn(); } catch (e) { return (e as { detail?: string }).detail ?? String(e); } return 'accepted'; };

describe('signed invitations', () => {
  it('verify against the inviter\'s pinned key when addressed to this node and unexpired', () => {
    const inv = signInvitation({ ...body, abilities: [...body.abilities] }, inviter.privateKey);
    assert.equal(verifyInvitation(inv, inviter.publicKey, self, now).collaborationId, 'fraud-ring');
  });

  it('refuse a signature by another key, any edited field, another addressee and an expired invitation', () => {
    const inv = signInvitation({ ...body, abilities: [...body.abilities] }, inviter.privateKey);
    assert.equal(detail(() => verifyInvitation(inv, stranger.publicKey, self, now)), 'CLEANROOM_INVITATION_INVALID');
    assert.equal(detail(() => verifyInvitation({ ...inv, abilities: ['query', 'receive', 'approve'] }, inviter.publicKey, self, now)), 'CLEANROOM_INVITATION_INVALID');
    assert.equal(detail(() => verifyInvitation(inv, inviter.publicKey, { nodeId: 'bank-c', publicKey: 'ed25519:ccc' }, now)), 'CLEANROOM_INVITATION_INVALID');
    assert.equal(detail(() => verifyInvitation(inv, inviter.publicKey, self, new Date(now.getTime() + 7_200_000))), 'CLEANROOM_INVITATION_INVALID');
    const forged = signInvitation({ ...body, abilities: [...body.abilities] }, stranger.privateKey);
    assert.equal(detail(() => verifyInvitation(forged, inviter.publicKey, self, now)), 'CLEANROOM_INVITATION_INVALID');
  });
});

describe('the collaboration lifecycle', () => {
  const rule = { kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment'], aggregateColumns: [{ column: 'exposure', functions: ['sum'] }], privacyUnit: 'customer_id', minDistinctUnits: 10 };
  const base = (): ReturnType<typeof life.createCollaboration> => {
    let c = life.createCollaboration({ id: 'fraud-ring', name: 'Fraud', purpose: 'fraud-detection', creator: 'bank-a', creatorKey: 'ed25519:aaa' });
    c = life.addInvitee(c, 'bank-a', { nodeId: 'bank-b', publicKey: 'ed25519:bbb' }, ['query', 'receive', 'approve']);
    return life.acceptInvitation(c, 'bank-b', 'ed25519:bbb');
  };

  it('lets only the creator invite, only owners set their rules, and bumps the version on every change', () => {
    const c = base();
    assert.equal(detail(() => life.addInvitee(c, 'bank-b', { nodeId: 'bank-c', publicKey: 'ed25519:ccc' }, ['query'])), 'CLEANROOM_ABILITY_MISSING');
    const withTable = life.contribute(c, 'bank-b', { table: 'b_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule });
    assert.equal(withTable.version, c.version + 1);
    assert.equal(detail(() => life.setRule(withTable, 'bank-a', 'b_accounts', rule)), 'CLEANROOM_ABILITY_MISSING');
    assert.equal(detail(() => life.contribute(withTable, 'bank-a', { table: 'b_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule })), 'CLEANROOM_CONFLICT');
    assert.equal(detail(() => life.acceptInvitation(c, 'bank-c', 'ed25519:ccc')), 'CLEANROOM_INVITATION_INVALID');
  });

  it('drops a leaving member\'s tables at once; the creator leaving ends the collaboration', () => {
    const c = life.contribute(base(), 'bank-b', { table: 'b_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule });
    const left = life.leave(c, 'bank-b');
    assert.deepEqual(left.contributions, []);
    assert.equal(left.members.find((m) => m.nodeId === 'bank-b')!.status, 'left');
    const ended = life.leave(c, 'bank-a');
    assert.equal(ended.status, 'ended');
    assert.equal(detail(() => life.contribute(ended, 'bank-b', { table: 'x', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule })), 'CLEANROOM_ENDED');
  });

  it('a changed template text loses its approvals; an approval must name the current hash', () => {
    let c = life.contribute(base(), 'bank-b', { table: 'b_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule });
    c = life.proposeTemplate(c, 'bank-a', 'bands', 'SELECT 1');
    const h = c.templates[0]!.hash;
    c = life.approveTemplate(c, 'bank-b', 'bands', h);
    assert.equal(c.templates[0]!.approvals['bank-b'], h);
    c = life.proposeTemplate(c, 'bank-a', 'bands', 'SELECT 2');
    assert.deepEqual(c.templates[0]!.approvals, {});
    assert.equal(detail(() => life.approveTemplate(c, 'bank-b', 'bands', h)), 'CLEANROOM_CONFLICT');
    assert.equal(detail(() => life.approveTemplate(c, 'bank-a', 'bands', c.templates[0]!.hash)), 'CLEANROOM_ABILITY_MISSING');
  });
});
