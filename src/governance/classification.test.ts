import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

async function setup() {
  return GovernanceStore.open(':memory:', { now: () => new Date('2026-03-01T00:00:00Z') });
}

const proposal = { dataset: 'claims', column: 'member_email', level: 'regulated' as const, tags: ['pii.email'], evidence: ['column name matches email', '97/100 sampled values are e-mail addresses'], confidence: 0.97, proposedBy: 'classifier' };

test('nothing applies until a proposal is confirmed, and then the stricter level wins', async () => {
  const gov = await setup();
  const { proposal: p, created } = await gov.classification.propose(proposal);
  assert.equal(created, true);
  assert.equal(p.status, 'pending');
  assert.deepEqual(await gov.classification.effectiveClassification('claims', 'member_email', 'internal'), { level: 'internal', tags: [], decision: null });
  const { event } = await gov.classification.confirm(p.id, 'olivia');
  assert.equal(event.outcome, 'confirmed');
  assert.deepEqual(await gov.classification.effectiveClassification('claims', 'member_email', 'internal', ['contact']), { level: 'regulated', tags: ['contact', 'pii.email'], decision: p.id });
  // A confirmation never lowers a stricter declared level.
  const lower = (await gov.classification.propose({ ...proposal, level: 'public', tags: [] })).proposal;
  await gov.classification.confirm(lower.id, 'olivia');
  assert.equal((await gov.classification.effectiveClassification('claims', 'member_email', 'confidential')).level, 'confidential');
  // Another column, or the dataset itself, is unaffected.
  assert.equal((await gov.classification.effectiveClassification('claims', null, 'internal')).level, 'internal');
  assert.equal((await gov.classification.effectiveClassification('claims', 'payer', 'internal')).level, 'internal');
});

test('a rejected proposal never applies and cannot be decided twice', async () => {
  const gov = await setup();
  const p = (await gov.classification.propose(proposal)).proposal;
  await gov.classification.reject(p.id, 'olivia', 'these are synthetic test addresses');
  assert.equal((await gov.classification.effectiveClassification('claims', 'member_email', 'internal')).level, 'internal');
  await assert.rejects(async () => await gov.classification.confirm(p.id, 'olivia'), (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_ALREADY_DECIDED');
});

test('the same pending proposal is not duplicated when the classifier runs again', async () => {
  const gov = await setup();
  const a = await gov.classification.propose(proposal);
  const b = await gov.classification.propose({ ...proposal, tags: ['pii.email'] });
  assert.equal(b.created, false);
  assert.equal(b.proposal.id, a.proposal.id);
  assert.equal((await gov.classification.list({ status: 'pending' })).length, 1);
});

test('malformed proposals are refused: unknown levels, bad tags, confidence outside 0..1', async () => {
  const gov = await setup();
  await assert.rejects(async () => await gov.classification.propose({ ...proposal, level: 'secret' as never }), /level must be one of public, internal, confidential, regulated/);
  await assert.rejects(async () => await gov.classification.propose({ ...proposal, tags: ['PII Email'] }), /tag/);
  await assert.rejects(async () => await gov.classification.propose({ ...proposal, confidence: 1.5 }), /confidence/);
  await assert.rejects(async () => await gov.classification.propose({ ...proposal, confidence: Number.NaN }), /confidence/);
  await assert.rejects(async () => await gov.classification.propose({ ...proposal, dataset: '' }), /dataset is required/);
  assert.equal((await gov.classification.list()).length, 0);
});
