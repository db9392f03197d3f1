import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

async function setup() {
  const clock = { t: new Date('2026-03-01T00:00:00Z') };
  return { gov: GovernanceStore.open(':memory:', { now: () => clock.t }), clock };
}

test('a finding becomes overdue after its due date unless it is closed', async () => {
  const { gov, clock } = await setup();
  const { finding } = await gov.findings.create({ title: 'Northwind MFA not enforced', severity: 'high', owner: 'olivia', dueDate: '2026-03-15', notes: 'from the Q1 review', by: 'audrey' });
  assert.match(finding.id, /^fnd_/);
  assert.equal(finding.status, 'open');
  assert.equal(finding.overdue, false);
  clock.t = new Date('2026-03-15T23:59:59Z');
  assert.equal((await gov.findings.get(finding.id))!.overdue, false, 'due on the 15th means by the end of that day');
  clock.t = new Date('2026-03-16T00:00:00Z');
  assert.equal((await gov.findings.get(finding.id))!.overdue, true);
  assert.deepEqual((await gov.findings.list({ overdue: true })).map((f) => f.id), [finding.id]);
  await gov.findings.setStatus(finding.id, { status: 'in-progress', by: 'olivia' });
  assert.equal((await gov.findings.get(finding.id))!.overdue, true, 'work in progress is still overdue');
  const { finding: closed, event } = await gov.findings.setStatus(finding.id, { status: 'closed', by: 'olivia', note: 'MFA required for the group' });
  assert.equal(closed.overdue, false);
  assert.equal(closed.closedAt, '2026-03-16T00:00:00.000Z');
  assert.equal(event.outcome, 'closed');
  assert.deepEqual(closed.notes.map((n) => n.text), ['from the Q1 review', 'MFA required for the group']);
  assert.deepEqual(await gov.findings.list(), [], 'reports list findings until closed');
  assert.equal((await gov.findings.list({ includeClosed: true })).length, 1);
});

test('closing needs a note, transitions are checked, and malformed findings are refused', async () => {
  const { gov } = await setup();
  const { finding } = await gov.findings.create({ title: 'x', severity: 'low', owner: 'olivia', dueDate: '2026-04-01', by: 'audrey' });
  await assert.rejects(async () => await gov.findings.setStatus(finding.id, { status: 'closed', by: 'olivia' }), (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_INVALID');
  await assert.rejects(async () => await gov.findings.setStatus(finding.id, { status: 'done' as never, by: 'olivia' }), /status must be one of open, in-progress, closed/);
  await assert.rejects(async () => await gov.findings.setStatus(finding.id, { status: 'open', by: 'olivia' }), (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_BAD_TRANSITION');
  await assert.rejects(async () => await gov.findings.setStatus('fnd_nope', { status: 'open', by: 'olivia' }), (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_NOT_FOUND');
  await assert.rejects(async () => await gov.findings.create({ title: '', severity: 'low', owner: 'olivia', dueDate: '2026-04-01', by: 'audrey' }), /title is required/);
  await assert.rejects(async () => await gov.findings.create({ title: 't', severity: 'urgent' as never, owner: 'olivia', dueDate: '2026-04-01', by: 'audrey' }), /severity must be one of low, medium, high, critical/);
  await assert.rejects(async () => await gov.findings.create({ title: 't', severity: 'low', owner: 'olivia', dueDate: '2026-13-01', by: 'audrey' }), /not a real date/);
  await assert.rejects(async () => await gov.findings.create({ title: 't', severity: 'low', owner: '', dueDate: '2026-04-01', by: 'audrey' }), /owner is required/);
  assert.equal((await gov.findings.list()).length, 1);
});
