import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';
import type { AgreementInput } from './agreements.ts';

const DATASETS = new Set(['patients', 'encounters', 'claims']);

async function setup(start = '2026-03-01T00:00:00Z') {
  const clock = { t: new Date(start) };
  const gov = GovernanceStore.open(':memory:', { now: () => clock.t });
  await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
  await gov.vendors.register({ name: 'keystone-mutual', by: 'olivia' });
  return { gov, clock };
}

function dpa(over: Partial<AgreementInput> = {}): AgreementInput {
  return {
    kind: 'DPA', title: 'Northwind research DPA', parties: { ours: 'st-avery', partner: 'northwind-research' },
    effectiveFrom: '2026-01-01', endsOn: '2026-12-31', datasets: ['patients', 'encounters'], purposes: ['research'],
    clauses: { ip: 'Results belong to St Avery', termination: { destruction: 'required', withinDays: 30 }, resultRetentionDays: 90 },
    by: 'olivia', ...over,
  };
}

async function refuses(fn: () => unknown, code: string, match?: RegExp): Promise<GovernanceError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof GovernanceError, `expected a GovernanceError ${code}, got ${String(caught)}`);
  assert.equal(caught.detail, code, caught.message);
  assert.ok(caught.hint.length > 0, 'every refusal says what to do next');
  if (match) assert.match(caught.message, match);
  return caught;
}

test('an agreement is recorded with its clauses and its status follows the dates', async () => {
  const { gov, clock } = await setup();
  const { agreement, event } = await gov.agreements.create(dpa(), { knownDatasets: DATASETS });
  assert.match(agreement.id, /^agr_[a-z2-9]{16}$/);
  assert.equal(agreement.status, 'active');
  assert.equal(agreement.endsOn, '2027-01-01T00:00:00.000Z', 'a date-only end means the end of that day');
  assert.deepEqual(agreement.clauses.termination, { destruction: 'required', withinDays: 30 });
  assert.equal(event.action, 'agreement.create');
  assert.equal(event.refs.agreementId, agreement.id);
  assert.equal((await gov.agreements.get(agreement.id, new Date('2025-12-31T23:59:59Z')))!.status, 'pending');
  assert.equal((await gov.agreements.get(agreement.id, new Date('2026-12-31T23:59:59Z')))!.status, 'active');
  clock.t = new Date('2027-01-01T00:00:00Z');
  assert.equal((await gov.agreements.get(agreement.id))!.status, 'expired');
});

test('inverted or equal agreement dates are refused and nothing is stored', async () => {
  const { gov } = await setup();
  await refuses(async () => await gov.agreements.create(dpa({ effectiveFrom: '2026-12-31T00:00:00Z', endsOn: '2026-01-01T00:00:00Z' }), { knownDatasets: DATASETS }), 'GOV_AGREEMENT_DATES', /not after effectiveFrom/);
  await refuses(async () => await gov.agreements.create(dpa({ effectiveFrom: '2026-05-01T00:00:00Z', endsOn: '2026-05-01T00:00:00Z' }), { knownDatasets: DATASETS }), 'GOV_AGREEMENT_DATES');
  assert.deepEqual(await gov.agreements.list(), []);
});

test('an overlapping agreement of the same kind, partner and dataset is refused, naming the one in force', async () => {
  const { gov } = await setup();
  const first = (await gov.agreements.create(dpa(), { knownDatasets: DATASETS })).agreement;
  const err = await refuses(async () => await gov.agreements.create(dpa({ effectiveFrom: '2026-06-01', endsOn: '2027-06-30', datasets: ['encounters'] }), { knownDatasets: DATASETS }), 'GOV_AGREEMENT_OVERLAP');
  assert.ok(err.message.includes(first.id));
  assert.ok(err.hint.includes(`gatehouse agreement terminate ${first.id}`));
  // An open-ended agreement overlaps everything after its start.
  await refuses(async () => await gov.agreements.create(dpa({ effectiveFrom: '2025-01-01', endsOn: null, datasets: ['patients'] }), { knownDatasets: DATASETS }), 'GOV_AGREEMENT_OVERLAP');
  assert.equal((await gov.agreements.list()).length, 1);
});

test('agreements that do not overlap in time, kind, partner or datasets are accepted', async () => {
  const { gov } = await setup();
  await gov.agreements.create(dpa(), { knownDatasets: DATASETS });
  // Back to back: the first ends (exclusive) exactly when the next begins.
  await gov.agreements.create(dpa({ effectiveFrom: '2027-01-01', endsOn: '2027-12-31' }), { knownDatasets: DATASETS });
  await gov.agreements.create(dpa({ kind: 'NDA' }), { knownDatasets: DATASETS });
  await gov.agreements.create(dpa({ datasets: ['claims'] }), { knownDatasets: DATASETS });
  await gov.agreements.create(dpa({ parties: { ours: 'st-avery', partner: 'keystone-mutual' } }), { knownDatasets: DATASETS });
  assert.equal((await gov.agreements.list()).length, 5);
});

test('a terminated agreement no longer blocks a new one from the termination onwards', async () => {
  const { gov, clock } = await setup();
  const first = (await gov.agreements.create(dpa(), { knownDatasets: DATASETS })).agreement;
  clock.t = new Date('2026-04-01T00:00:00Z');
  await gov.agreements.terminate(first.id, { by: 'olivia', reason: 'renegotiated' });
  await gov.agreements.create(dpa({ effectiveFrom: '2026-04-01T00:00:00Z', endsOn: '2027-03-31' }), { knownDatasets: DATASETS });
  await refuses(async () => await gov.agreements.create(dpa({ effectiveFrom: '2026-03-15', endsOn: '2026-03-20' }), { knownDatasets: DATASETS }), 'GOV_AGREEMENT_OVERLAP');
});

test('unknown datasets, an unregistered partner and identical parties are refused', async () => {
  const { gov } = await setup();
  const err = await refuses(async () => await gov.agreements.create(dpa({ datasets: ['patients', 'payroll', 'x'] }), { knownDatasets: DATASETS }), 'GOV_UNKNOWN_DATASET');
  assert.match(err.message, /"payroll", "x"/);
  await refuses(async () => await gov.agreements.create(dpa({ parties: { ours: 'st-avery', partner: 'umbrella-corp' } }), { knownDatasets: DATASETS }), 'GOV_UNKNOWN_ORG');
  await refuses(async () => await gov.agreements.create(dpa({ parties: { ours: 'northwind-research', partner: 'northwind-research' } }), { knownDatasets: DATASETS }), 'GOV_INVALID');
  assert.deepEqual(await gov.agreements.list(), []);
});

test('malformed agreement input gets a precise error: bad dates, empty names, unknown kinds, bad clauses', async () => {
  const { gov } = await setup();
  const bad: [Partial<AgreementInput> | Record<string, unknown>, RegExp][] = [
    [{ kind: 'LOI' as never }, /kind must be one of NDA, DPA, SLA, MSA/],
    [{ title: '   ' }, /title is required/],
    [{ effectiveFrom: '2026-02-30' }, /not a real date/],
    [{ effectiveFrom: '01/03/2026' }, /ISO 8601/],
    [{ endsOn: '2026-12-31T25:00:00Z' }, /impossible time/],
    [{ endsOn: undefined }, /endsOn is required/],
    [{ effectiveFrom: '2026-03-01T00:00:00' }, /ISO 8601/],
    [{ datasets: ['patients', 'patients'] }, /twice/],
    [{ datasets: [''] }, /required/],
    [{ purposes: ['Research!'] }, /lower-case/],
    [{ parties: { ours: '', partner: 'northwind-research' } }, /parties.ours is required/],
    [{ by: '../etc' }, /by must start/],
    [{ clauses: { termination: { destruction: 'required' } } }, /withinDays must be a whole number/],
    [{ clauses: { termination: { destruction: 'maybe' } } } as never, /destruction must be one of/],
    [{ clauses: { resultRetentionDays: -1 } }, /resultRetentionDays/],
  ];
  for (const [over, msg] of bad) {
    await refuses(async () => await gov.agreements.create({ ...dpa(), ...over } as AgreementInput, { knownDatasets: DATASETS }), 'GOV_INVALID', msg);
  }
  await refuses(async () => await gov.agreements.create(null as never, { knownDatasets: DATASETS }), 'GOV_INVALID');
  assert.deepEqual(await gov.agreements.list(), []);
});

test('terminate revokes every grant citing the agreement in one step and says what must be destroyed by when', async () => {
  const { gov, clock } = await setup();
  const a = (await gov.agreements.create(dpa(), { knownDatasets: DATASETS })).agreement;
  const g1 = (await gov.grants.create({ grantee: { kind: 'principal', id: 'rhea', org: 'northwind-research' }, dataset: 'patients', purpose: 'research', agreementId: a.id, until: '2026-06-01', by: 'olivia' })).grant;
  const g2 = (await gov.grants.create({ grantee: { kind: 'org', org: 'northwind-research' }, dataset: 'encounters', purpose: 'research', agreementId: a.id, until: '2026-06-01', by: 'olivia' })).grant;
  await gov.retention.placeHold({ subject: { kind: 'dataset', id: 'encounters' }, reason: 'litigation 2026-17', placedBy: 'counsel' });
  clock.t = new Date('2026-04-10T12:00:00Z');
  const end = await gov.agreements.terminate(a.id, { by: 'olivia', reason: 'contract breach' });
  assert.equal(end.agreement.status, 'terminated');
  assert.deepEqual(end.revokedGrants.map((g) => g.id).sort(), [g1.id, g2.id].sort());
  assert.equal((await gov.grants.get(g1.id))!.revoked!.at, '2026-04-10T12:00:00.000Z');
  assert.equal((await gov.grants.list({ org: 'northwind-research' })).length, 0);
  assert.deepEqual(end.destruction, {
    agreementId: a.id, required: true, dueBy: '2026-05-10T12:00:00.000Z', partnerOrg: 'northwind-research', datasets: ['encounters', 'patients'], principals: ['rhea'],
    holds: [{ id: end.destruction.holds[0]!.id, subjectKind: 'dataset', subject: 'encounters', reason: 'litigation 2026-17' }],
    match: { agreement: a.id, org: 'northwind-research', datasets: ['encounters', 'patients'] },
  });
  assert.deepEqual(end.events.map((e) => e.action), ['agreement.terminate', 'grant.revoke', 'grant.revoke']);
  await refuses(async () => await gov.agreements.terminate(a.id, { by: 'olivia', reason: 'again' }), 'GOV_AGREEMENT_ALREADY_ENDED');
});

test('a failed termination changes nothing: the agreement and its grants stay as they were', async () => {
  const { gov } = await setup();
  const a = (await gov.agreements.create(dpa(), { knownDatasets: DATASETS })).agreement;
  await gov.grants.create({ grantee: { kind: 'principal', id: 'rhea', org: 'northwind-research' }, dataset: 'patients', purpose: 'research', agreementId: a.id, until: '2026-06-01', by: 'olivia' });
  await refuses(async () => await gov.agreements.terminate(a.id, { by: 'olivia', reason: '' }), 'GOV_INVALID');
  await refuses(async () => await gov.agreements.terminate(a.id, { by: 'olivia', reason: 'later', at: '2030-01-01' }), 'GOV_INVALID', /future/);
  await refuses(async () => await gov.agreements.terminate('agr_nope', { by: 'olivia', reason: 'x' }), 'GOV_NOT_FOUND');
  assert.equal((await gov.agreements.get(a.id))!.status, 'active');
  assert.equal((await gov.grants.list()).length, 1);
});

test('closing out expired agreements revokes their grants once and is idempotent', async () => {
  const { gov, clock } = await setup();
  const a = (await gov.agreements.create(dpa({ endsOn: '2026-03-31' }), { knownDatasets: DATASETS })).agreement;
  await gov.grants.create({ grantee: { kind: 'principal', id: 'rhea', org: 'northwind-research' }, dataset: 'patients', purpose: 'research', agreementId: a.id, until: '2026-03-31', by: 'olivia' });
  assert.deepEqual(await gov.agreements.closeOutEnded('scheduler'), []);
  clock.t = new Date('2026-04-02T00:00:00Z');
  const ended = await gov.agreements.closeOutEnded('scheduler');
  assert.equal(ended.length, 1);
  assert.equal(ended[0]!.revokedGrants.length, 1);
  assert.equal(ended[0]!.destruction.dueBy, '2026-05-01T00:00:00.000Z', 'due 30 days after the end date');
  assert.deepEqual(await gov.agreements.closeOutEnded('scheduler'), []);
  await refuses(async () => await gov.agreements.terminate(a.id, { by: 'olivia', reason: 'x' }), 'GOV_AGREEMENT_ALREADY_ENDED', /expired/);
});

test('the store survives reopening from a file (WAL) with every agreement intact', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gov-'));
  try {
    const path = join(dir, 'governance.db');
    const now = () => new Date('2026-03-01T00:00:00Z');
    const gov = GovernanceStore.open(path, { now });
    await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
    const a = (await gov.agreements.create(dpa(), { knownDatasets: DATASETS })).agreement;
    await gov.close();
    const again = GovernanceStore.open(path, { now });
    assert.deepEqual(await again.agreements.get(a.id), a);
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a fault half-way through a termination leaves nothing half-applied: the agreement is still active and its grants intact', async () => {
  const { DatabaseSync } = await import('node:sqlite');
  const dir = mkdtempSync(join(tmpdir(), 'gov-'));
  try {
    const path = join(dir, 'governance.db');
    const gov = GovernanceStore.open(path, { now: () => new Date('2026-03-01T00:00:00Z') });
    await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
    const a = (await gov.agreements.create(dpa(), { knownDatasets: DATASETS })).agreement;
    const g = (await gov.grants.create({ grantee: { kind: 'principal', id: 'rhea', org: 'northwind-research' }, dataset: 'patients', purpose: 'research', agreementId: a.id, until: '2026-06-01', by: 'olivia' })).grant;
    // A real fault injected from outside: revoking grants (after the agreement row changed) fails.
    const other = new DatabaseSync(path);
    other.exec(`CREATE TRIGGER fault BEFORE UPDATE OF revoked_at ON gov_grants BEGIN SELECT RAISE(ABORT, 'simulated disk fault'); END`);
    await assert.rejects(async () => await gov.agreements.terminate(a.id, { by: 'olivia', reason: 'breach' }), /simulated disk fault/);
    assert.equal((await gov.agreements.get(a.id))!.status, 'active');
    assert.equal((await gov.agreements.get(a.id))!.termination, null);
    assert.equal((await gov.grants.get(g.id))!.revoked, null);
    other.exec('DROP TRIGGER fault');
    other.close();
    const end = await gov.agreements.terminate(a.id, { by: 'olivia', reason: 'breach' });
    assert.deepEqual(end.revokedGrants.map((x) => x.id), [g.id]);
    await gov.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
