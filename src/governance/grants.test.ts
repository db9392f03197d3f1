import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';

const DATASETS = new Set(['patients', 'encounters', 'claims']);
const OWNERS: Record<string, string[]> = { patients: ['olivia'], encounters: ['olivia'], claims: ['olivia', 'oscar'] };
const isOwner = (who: string, dataset: string): boolean => (OWNERS[dataset] ?? []).includes(who);

async function setup(start = '2026-03-01T00:00:00Z') {
  const clock = { t: new Date(start) };
  const gov = GovernanceStore.open(':memory:', { now: () => clock.t });
  await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
  await gov.vendors.register({ name: 'keystone-mutual', by: 'olivia' });
  const agreement = (await gov.agreements.create({
    kind: 'DPA', title: 'Northwind DPA', parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-01-01', endsOn: '2026-06-30',
    datasets: ['patients', 'encounters'], purposes: ['research'], clauses: { termination: { destruction: 'required', withinDays: 7 } }, by: 'olivia',
  }, { knownDatasets: DATASETS })).agreement;
  return { gov, clock, agreement };
}

async function refuses(fn: () => unknown, code: string, match?: RegExp): Promise<GovernanceError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof GovernanceError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.detail, code, caught.message);
  assert.ok(caught.hint.length > 0);
  if (match) assert.match(caught.message, match);
  return caught;
}

const rhea = { kind: 'principal' as const, id: 'rhea', org: 'northwind-research' };

test('a grant cites an active agreement covering its dataset and purpose and cannot outlive it', async () => {
  const { gov, agreement } = await setup();
  const { grant, event } = await gov.grants.create({ grantee: rhea, dataset: 'patients', purpose: 'research', agreementId: agreement.id, until: '2026-04-01', by: 'olivia' });
  assert.match(grant.id, /^grt_/);
  assert.equal(grant.from, '2026-03-01T00:00:00.000Z');
  assert.equal(grant.until, '2026-04-01T00:00:00.000Z');
  assert.equal(event.subject, 'rhea');
  const err = await refuses(async () => await gov.grants.create({ grantee: rhea, dataset: 'patients', purpose: 'research', agreementId: agreement.id, until: '2026-08-01', by: 'olivia' }), 'GOV_GRANT_BEYOND_AGREEMENT');
  assert.ok(err.hint.includes('2026-07-01T00:00:00.000Z'));
});

test('grants citing an expired, terminated, pending, foreign or non-covering agreement are refused', async () => {
  const { gov, clock, agreement } = await setup();
  await refuses(async () => await gov.grants.create({ grantee: rhea, dataset: 'claims', purpose: 'research', agreementId: agreement.id, until: '2026-04-01', by: 'olivia' }), 'GOV_AGREEMENT_NOT_COVERING', /dataset "claims"/);
  await refuses(async () => await gov.grants.create({ grantee: rhea, dataset: 'patients', purpose: 'marketing', agreementId: agreement.id, until: '2026-04-01', by: 'olivia' }), 'GOV_AGREEMENT_NOT_COVERING', /purpose "marketing"/);
  await refuses(async () => await gov.grants.create({ grantee: { kind: 'org', org: 'keystone-mutual' }, dataset: 'patients', purpose: 'research', agreementId: agreement.id, until: '2026-04-01', by: 'olivia' }), 'GOV_AGREEMENT_NOT_COVERING', /not with keystone-mutual/);
  await refuses(async () => await gov.grants.create({ grantee: rhea, dataset: 'patients', purpose: 'research', agreementId: 'agr_forged', until: '2026-04-01', by: 'olivia' }), 'GOV_NOT_FOUND');
  const future = (await gov.agreements.create({
    kind: 'NDA', title: 'Keystone NDA', parties: { ours: 'st-avery', partner: 'keystone-mutual' }, effectiveFrom: '2026-09-01', endsOn: null, datasets: ['claims'], purposes: ['claims-audit'], by: 'olivia',
  }, { knownDatasets: DATASETS })).agreement;
  await refuses(async () => await gov.grants.create({ grantee: { kind: 'org', org: 'keystone-mutual' }, dataset: 'claims', purpose: 'claims-audit', agreementId: future.id, until: '2026-10-01', by: 'olivia' }), 'GOV_AGREEMENT_NOT_ACTIVE', /pending/);
  clock.t = new Date('2026-07-02T00:00:00Z');
  await refuses(async () => await gov.grants.create({ grantee: rhea, dataset: 'patients', purpose: 'research', agreementId: agreement.id, until: '2026-07-10', by: 'olivia' }), 'GOV_AGREEMENT_NOT_ACTIVE', /expired/);
  clock.t = new Date('2026-03-01T00:00:00Z');
  await gov.agreements.terminate(agreement.id, { by: 'olivia', reason: 'ended early' });
  await refuses(async () => await gov.grants.create({ grantee: rhea, dataset: 'patients', purpose: 'research', agreementId: agreement.id, until: '2026-04-01', by: 'olivia' }), 'GOV_AGREEMENT_NOT_ACTIVE', /terminated/);
  assert.equal((await gov.grants.list({ all: true })).length, 0);
});

test('malformed grant input is refused: bad grantee kinds, inverted windows, bad purposes', async () => {
  const { gov, agreement } = await setup();
  const base = { grantee: rhea, dataset: 'patients', purpose: 'research', agreementId: agreement.id, until: '2026-04-01', by: 'olivia' };
  await refuses(async () => await gov.grants.create({ ...base, grantee: { kind: 'group', org: 'x' } as never }), 'GOV_INVALID', /grantee.kind/);
  await refuses(async () => await gov.grants.create({ ...base, from: '2026-04-02', until: '2026-04-01' }), 'GOV_INVALID', /must be after from/);
  await refuses(async () => await gov.grants.create({ ...base, purpose: '' }), 'GOV_INVALID');
  await refuses(async () => await gov.grants.create({ ...base, until: 'tomorrow' }), 'GOV_INVALID', /ISO 8601/);
  await refuses(async () => await gov.grants.create({ ...base, grantee: { kind: 'principal', id: 'olivia', org: 'northwind-research' } }), 'GOV_SELF_APPROVAL');
  assert.equal((await gov.grants.list({ all: true })).length, 0);
});

test('an access request approved by an owner becomes a time-boxed grant, with an event per transition', async () => {
  const { gov, clock, agreement } = await setup();
  const { request, event: requested } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 30, justification: 'cohort study 12' });
  assert.equal(request.status, 'pending');
  assert.equal(requested.outcome, 'requested');
  assert.ok(!JSON.stringify(requested).includes('cohort study'), 'audit events never carry the justification text');
  clock.t = new Date('2026-03-02T00:00:00Z');
  const { grant, events, request: decided } = await gov.grants.approve(request.id, { approverId: 'olivia', isOwner });
  assert.equal(decided.status, 'approved');
  assert.equal(decided.decidedBy, 'olivia');
  assert.equal(grant.agreementId, agreement.id);
  assert.equal(grant.requestId, request.id);
  assert.equal(grant.from, '2026-03-02T00:00:00.000Z');
  assert.equal(grant.until, '2026-04-01T00:00:00.000Z');
  assert.deepEqual(events.map((e) => [e.action, e.outcome, e.refs.grantId]), [['grant.approve', 'approved', grant.id]]);
});

test('an approval is cut at the end of the agreement it cites', async () => {
  const { gov, clock } = await setup();
  clock.t = new Date('2026-06-15T00:00:00Z');
  const { request } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 90, justification: 'x' });
  const { grant } = await gov.grants.approve(request.id, { approverId: 'olivia', isOwner });
  assert.equal(grant.until, '2026-07-01T00:00:00.000Z');
});

test('a requester can never approve their own request, even when they own the dataset', async () => {
  const { gov } = await setup();
  const { request } = await gov.grants.request({ principalId: 'oscar', org: 'northwind-research', dataset: 'claims', purpose: 'research', days: 5, justification: 'x' });
  const err = await refuses(async () => await gov.grants.approve(request.id, { approverId: 'oscar', isOwner }), 'GOV_SELF_APPROVAL');
  assert.equal(err.event?.outcome, 'refused', 'the refused attempt is itself auditable');
  assert.equal(err.event?.actor, 'oscar');
  await refuses(async () => await gov.grants.deny(request.id, { approverId: 'oscar', isOwner, reason: 'no' }), 'GOV_SELF_APPROVAL');
  assert.equal((await gov.grants.getRequest(request.id))!.status, 'pending');
});

test('someone who does not own the dataset cannot approve', async () => {
  const { gov } = await setup();
  const { request } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 5, justification: 'x' });
  await refuses(async () => await gov.grants.approve(request.id, { approverId: 'mallory', isOwner }), 'GOV_NOT_OWNER');
  assert.equal((await gov.grants.list({ all: true })).length, 0);
});

test('a double approval does not double-grant, and a denied request cannot be approved', async () => {
  const { gov } = await setup();
  const { request } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 5, justification: 'x' });
  await gov.grants.approve(request.id, { approverId: 'olivia', isOwner });
  await refuses(async () => await gov.grants.approve(request.id, { approverId: 'olivia', isOwner }), 'GOV_ALREADY_DECIDED');
  assert.equal((await gov.grants.list({ all: true })).length, 1);
  const second = (await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'encounters', purpose: 'research', days: 5, justification: 'x' })).request;
  const denied = await gov.grants.deny(second.id, { approverId: 'olivia', isOwner, reason: 'use the aggregate view' });
  assert.equal(denied.request.status, 'denied');
  assert.equal(denied.event.outcome, 'denied');
  await refuses(async () => await gov.grants.approve(second.id, { approverId: 'olivia', isOwner }), 'GOV_ALREADY_DECIDED', /denied/);
  assert.equal((await gov.grants.list({ all: true })).length, 1);
});

test('a second connection approving the same request finds it decided: exactly one grant exists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gov-'));
  try {
    const path = join(dir, 'g.db');
    const now = () => new Date('2026-03-01T00:00:00Z');
    const a = GovernanceStore.open(path, { now });
    await a.vendors.register({ name: 'northwind-research', by: 'olivia' });
    await a.agreements.create({ kind: 'DPA', title: 'DPA', parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-01-01', endsOn: null, datasets: ['patients'], purposes: ['research'], by: 'olivia' }, { knownDatasets: DATASETS });
    const { request } = await a.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 5, justification: 'x' });
    const b = GovernanceStore.open(path, { now });
    const outcomes = await Promise.all([a, b].map(async (s) => {
      try {
        return (await s.grants.approve(request.id, { approverId: 'olivia', isOwner })).grant.id;
      } catch (err) {
        return (err as GovernanceError).detail;
      }
    }));
    assert.equal(outcomes.filter((o) => o.startsWith('grt_')).length, 1);
    assert.ok(outcomes.includes('GOV_ALREADY_DECIDED'));
    assert.equal((await b.grants.list({ all: true })).length, 1);
    await a.close();
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an approval without an agreement covering the request is refused and leaves the request pending', async () => {
  const { gov } = await setup();
  const { request } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'claims', purpose: 'research', days: 5, justification: 'x' });
  const err = await refuses(async () => await gov.grants.approve(request.id, { approverId: 'olivia', isOwner }), 'GOV_AGREEMENT_NOT_ACTIVE');
  assert.match(err.hint, /gatehouse agreement create --partner northwind-research --dataset claims --purpose research/);
  assert.equal((await gov.grants.getRequest(request.id))!.status, 'pending');
  assert.equal((await gov.grants.list({ all: true })).length, 0);
});

test('malformed access requests are refused: zero or huge days, blank justification, unregistered org, unknown dataset', async () => {
  const { gov } = await setup();
  const base = { principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 5, justification: 'x' };
  await refuses(async () => await gov.grants.request({ ...base, days: 0 }), 'GOV_INVALID', /days/);
  await refuses(async () => await gov.grants.request({ ...base, days: 10_000 }), 'GOV_INVALID', /days/);
  await refuses(async () => await gov.grants.request({ ...base, days: 1.5 }), 'GOV_INVALID', /days/);
  await refuses(async () => await gov.grants.request({ ...base, justification: '  ' }), 'GOV_INVALID', /justification/);
  await refuses(async () => await gov.grants.request({ ...base, org: 'st-avery' }), 'GOV_UNKNOWN_ORG');
  await refuses(async () => await gov.grants.request({ ...base, dataset: 'payroll', knownDatasets: DATASETS }), 'GOV_UNKNOWN_DATASET');
  await refuses(async () => await gov.grants.request({ ...base, principalId: "rhea'; DROP TABLE gov_grants;--" }), 'GOV_INVALID');
  assert.deepEqual(await gov.grants.pendingRequests(), []);
});

test('revoking a grant ends it at once and cannot be repeated', async () => {
  const { gov, agreement } = await setup();
  const { grant } = await gov.grants.create({ grantee: rhea, dataset: 'patients', purpose: 'research', agreementId: agreement.id, until: '2026-04-01', by: 'olivia' });
  assert.equal((await gov.grants.list({ principalId: 'rhea' })).length, 1);
  const { event } = await gov.grants.revoke(grant.id, { by: 'olivia', reason: 'study finished' });
  assert.equal(event.outcome, 'revoked');
  assert.equal((await gov.grants.list({ principalId: 'rhea' })).length, 0);
  await refuses(async () => await gov.grants.revoke(grant.id, { by: 'olivia', reason: 'again' }), 'GOV_GRANT_ALREADY_REVOKED');
});
