import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

async function setup() {
  const clock = { t: new Date('2026-03-01T00:00:00Z') };
  const gov = GovernanceStore.open(':memory:', { now: () => clock.t });
  await gov.vendors.register({ name: 'northwind-research', displayName: 'Northwind Research Ltd', by: 'olivia' });
  return { gov, clock };
}

test('the risk tier follows certifications, audits and incidents at the time asked', async () => {
  const { gov, clock } = await setup();
  assert.deepEqual(await gov.vendors.risk('northwind-research'), { org: 'northwind-research', at: '2026-03-01T00:00:00.000Z', tier: 2, factors: ['no currently valid security certification'] });
  await gov.vendors.addCertification({ org: 'northwind-research', name: 'ISO 27001', issuer: 'BSI', validUntil: '2026-06-30', by: 'olivia' });
  await gov.vendors.addCertification({ org: 'northwind-research', name: 'SOC 2 Type II', issuer: 'AICPA', validUntil: '2027-01-31', by: 'olivia' });
  assert.equal((await gov.vendors.risk('northwind-research')).tier, 1);
  assert.deepEqual((await gov.vendors.risk('northwind-research', new Date('2026-07-01T00:00:00Z'))).factors, ['certification expired: ISO 27001']);
  assert.equal((await gov.vendors.risk('northwind-research', new Date('2027-02-01T00:00:00Z'))).tier, 3);
  await gov.vendors.addAuditReport({ org: 'northwind-research', title: 'Annual pen test', date: '2026-02-15', outcome: 'fail', by: 'olivia' });
  assert.equal((await gov.vendors.risk('northwind-research')).tier, 2);
  const high = (await gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-28', severity: 'high', summary: 'phishing', by: 'olivia' })).incident;
  await gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-28', severity: 'medium', summary: 'lost laptop (encrypted)', by: 'olivia' });
  assert.equal((await gov.vendors.risk('northwind-research')).tier, 3, 'open medium incidents do not count; an open high one does');
  await gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-28', severity: 'critical', summary: 'breach', resolvedAt: '2026-02-28T12:00:00Z', by: 'olivia' });
  assert.equal((await gov.vendors.risk('northwind-research')).tier, 3, 'a resolved critical incident no longer counts');
  assert.equal((await gov.vendors.risk('northwind-research', new Date('2026-02-28T06:00:00Z'))).tier, 4, 'but it did while it was open');
  clock.t = new Date('2026-03-02T00:00:00Z');
  await gov.vendors.resolveIncident(high.id, 'olivia');
  assert.equal((await gov.vendors.risk('northwind-research')).tier, 2);
  await assert.rejects(async () => await gov.vendors.resolveIncident(high.id, 'olivia'), (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_BAD_TRANSITION');
});

test('vendor records refuse unknown orgs, duplicates, future-dated reports, bad severities and inverted incident dates', async () => {
  const { gov } = await setup();
  const code = (c: string) => (e: unknown) => e instanceof GovernanceError && e.detail === c;
  await assert.rejects(async () => await gov.vendors.register({ name: 'northwind-research', by: 'olivia' }), code('GOV_DUPLICATE'));
  await assert.rejects(async () => await gov.vendors.register({ name: '', by: 'olivia' }), code('GOV_INVALID'));
  await assert.rejects(async () => await gov.vendors.addCertification({ org: 'acme', name: 'ISO 27001', issuer: 'BSI', validUntil: '2027-01-01', by: 'olivia' }), code('GOV_UNKNOWN_ORG'));
  await assert.rejects(async () => await gov.vendors.addCertification({ org: 'northwind-research', name: 'ISO 27001', issuer: 'BSI', validUntil: 'soon', by: 'olivia' }), /validUntil/);
  await assert.rejects(async () => await gov.vendors.addAuditReport({ org: 'northwind-research', title: 't', date: '2027-01-01', outcome: 'pass', by: 'olivia' }), /future/);
  await assert.rejects(async () => await gov.vendors.addAuditReport({ org: 'northwind-research', title: 't', date: '2026-01-01', outcome: 'ok' as never, by: 'olivia' }), /outcome must be one of pass, pass-with-findings, fail/);
  await assert.rejects(async () => await gov.vendors.addIncident({ org: 'northwind-research', date: '2026-01-01', severity: 'severe' as never, summary: 's', by: 'olivia' }), /severity must be one of low, medium, high, critical/);
  await assert.rejects(async () => await gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-01', severity: 'low', summary: 's', resolvedAt: '2026-01-01', by: 'olivia' }), /before the incident/);
  assert.equal((await gov.vendors.incidents('northwind-research')).length, 0);
  assert.equal((await gov.vendors.certifications('northwind-research')).length, 0);
});
