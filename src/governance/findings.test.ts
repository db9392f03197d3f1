import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

function setup() {
  const clock = { t: new Date('2026-03-01T00:00:00Z') };
  return { gov: GovernanceStore.open(':memory:', { now: () => clock.t }), clock };
}

test('a finding becomes overdue after its due date unless it is closed', () => {
  const { gov, clock } = setup();
  const { finding } = gov.findings.create({ title: 'Northwind MFA not enforced', severity: 'high', owner: 'olivia', dueDate: '2026-03-15', notes: 'from the Q1 review', by: 'audrey' });
  assert.match(finding.id, /^fnd_/);
  assert.equal(finding.status, 'open');
  assert.equal(finding.overdue, false);
  clock.t = new Date('2026-03-15T23:59:59Z');
  assert.equal(gov.findings.get(finding.id)!.overdue, false, 'due on the 15th means by the end of that day');
  clock.t = new Date('2026-03-16T00:00:00Z');
  assert.equal(gov.findings.get(finding.id)!.overdue, true);
  assert.deepEqual(gov.findings.list({ overdue: true }).map((f) => f.id), [finding.id]);
  gov.findings.setStatus(finding.id, { status: 'in-progress', by: 'olivia' });
  assert.equal(gov.findings.get(finding.id)!.overdue, true, 'work in progress is still overdue');
  const { finding: closed, event } = gov.findings.setStatus(finding.id, { status: 'closed', by: 'olivia', note: 'MFA required for the group' });
  assert.equal(closed.overdue, false);
  assert.equal(closed.closedAt, '2026-03-16T00:00:00.000Z');
  assert.equal(event.outcome, 'closed');
  assert.deepEqual(closed.notes.map((n) => n.text), ['from the Q1 review', 'MFA required for the group']);
  assert.deepEqual(gov.findings.list(), [], 'reports list findings until closed');
  assert.equal(gov.findings.list({ includeClosed: true }).length, 1);
});

test('closing needs a note, transitions are checked, and malformed findings are refused', () => {
  const { gov } = setup();
  const { finding } = gov.findings.create({ title: 'x', severity: 'low', owner: 'olivia', dueDate: '2026-04-01', by: 'audrey' });
  assert.throws(() => gov.findings.setStatus(finding.id, { status: 'closed', by: 'olivia' }), (e: unknown) => e instanceof GovernanceError && e.code === 'GOV_INVALID');
  assert.throws(() => gov.findings.setStatus(finding.id, { status: 'done' as never, by: 'olivia' }), /status must be one of open, in-progress, closed/);
  assert.throws(() => gov.findings.setStatus(finding.id, { status: 'open', by: 'olivia' }), (e: unknown) => e instanceof GovernanceError && e.code === 'GOV_BAD_TRANSITION');
  assert.throws(() => gov.findings.setStatus('fnd_nope', { status: 'open', by: 'olivia' }), (e: unknown) => e instanceof GovernanceError && e.code === 'GOV_NOT_FOUND');
  assert.throws(() => gov.findings.create({ title: '', severity: 'low', owner: 'olivia', dueDate: '2026-04-01', by: 'audrey' }), /title is required/);
  assert.throws(() => gov.findings.create({ title: 't', severity: 'urgent' as never, owner: 'olivia', dueDate: '2026-04-01', by: 'audrey' }), /severity must be one of low, medium, high, critical/);
  assert.throws(() => gov.findings.create({ title: 't', severity: 'low', owner: 'olivia', dueDate: '2026-13-01', by: 'audrey' }), /not a real date/);
  assert.throws(() => gov.findings.create({ title: 't', severity: 'low', owner: '', dueDate: '2026-04-01', by: 'audrey' }), /owner is required/);
  assert.equal(gov.findings.list().length, 1);
});
