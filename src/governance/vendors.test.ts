import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

function setup() {
  const clock = { t: new Date('2026-03-01T00:00:00Z') };
  const gov = GovernanceStore.open(':memory:', { now: () => clock.t });
  gov.vendors.register({ name: 'northwind-research', displayName: 'Northwind Research Ltd', by: 'olivia' });
  return { gov, clock };
}

test('the risk tier follows certifications, audits and incidents at the time asked', () => {
  const { gov, clock } = setup();
  assert.deepEqual(gov.vendors.risk('northwind-research'), { org: 'northwind-research', at: '2026-03-01T00:00:00.000Z', tier: 2, factors: ['no currently valid security certification'] });
  gov.vendors.addCertification({ org: 'northwind-research', name: 'ISO 27001', issuer: 'BSI', validUntil: '2026-06-30', by: 'olivia' });
  gov.vendors.addCertification({ org: 'northwind-research', name: 'SOC 2 Type II', issuer: 'AICPA', validUntil: '2027-01-31', by: 'olivia' });
  assert.equal(gov.vendors.risk('northwind-research').tier, 1);
  assert.deepEqual(gov.vendors.risk('northwind-research', new Date('2026-07-01T00:00:00Z')).factors, ['certification expired: ISO 27001']);
  assert.equal(gov.vendors.risk('northwind-research', new Date('2027-02-01T00:00:00Z')).tier, 3);
  gov.vendors.addAuditReport({ org: 'northwind-research', title: 'Annual pen test', date: '2026-02-15', outcome: 'fail', by: 'olivia' });
  assert.equal(gov.vendors.risk('northwind-research').tier, 2);
  const high = gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-28', severity: 'high', summary: 'phishing', by: 'olivia' }).incident;
  gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-28', severity: 'medium', summary: 'lost laptop (encrypted)', by: 'olivia' });
  assert.equal(gov.vendors.risk('northwind-research').tier, 3, 'open medium incidents do not count; an open high one does');
  gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-28', severity: 'critical', summary: 'breach', resolvedAt: '2026-02-28T12:00:00Z', by: 'olivia' });
  assert.equal(gov.vendors.risk('northwind-research').tier, 3, 'a resolved critical incident no longer counts');
  assert.equal(gov.vendors.risk('northwind-research', new Date('2026-02-28T06:00:00Z')).tier, 4, 'but it did while it was open');
  clock.t = new Date('2026-03-02T00:00:00Z');
  gov.vendors.resolveIncident(high.id, 'olivia');
  assert.equal(gov.vendors.risk('northwind-research').tier, 2);
  assert.throws(() => gov.vendors.resolveIncident(high.id, 'olivia'), (e: unknown) => e instanceof GovernanceError && e.code === 'GOV_BAD_TRANSITION');
});

test('vendor records refuse unknown orgs, duplicates, future-dated reports, bad severities and inverted incident dates', () => {
  const { gov } = setup();
  const code = (c: string) => (e: unknown) => e instanceof GovernanceError && e.code === c;
  assert.throws(() => gov.vendors.register({ name: 'northwind-research', by: 'olivia' }), code('GOV_DUPLICATE'));
  assert.throws(() => gov.vendors.register({ name: '', by: 'olivia' }), code('GOV_INVALID'));
  assert.throws(() => gov.vendors.addCertification({ org: 'acme', name: 'ISO 27001', issuer: 'BSI', validUntil: '2027-01-01', by: 'olivia' }), code('GOV_UNKNOWN_ORG'));
  assert.throws(() => gov.vendors.addCertification({ org: 'northwind-research', name: 'ISO 27001', issuer: 'BSI', validUntil: 'soon', by: 'olivia' }), /validUntil/);
  assert.throws(() => gov.vendors.addAuditReport({ org: 'northwind-research', title: 't', date: '2027-01-01', outcome: 'pass', by: 'olivia' }), /future/);
  assert.throws(() => gov.vendors.addAuditReport({ org: 'northwind-research', title: 't', date: '2026-01-01', outcome: 'ok' as never, by: 'olivia' }), /outcome must be one of pass, pass-with-findings, fail/);
  assert.throws(() => gov.vendors.addIncident({ org: 'northwind-research', date: '2026-01-01', severity: 'severe' as never, summary: 's', by: 'olivia' }), /severity must be one of low, medium, high, critical/);
  assert.throws(() => gov.vendors.addIncident({ org: 'northwind-research', date: '2026-02-01', severity: 'low', summary: 's', resolvedAt: '2026-01-01', by: 'olivia' }), /before the incident/);
  assert.equal(gov.vendors.incidents('northwind-research').length, 0);
  assert.equal(gov.vendors.certifications('northwind-research').length, 0);
});
