import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GovernanceStore } from './store.ts';
import { GovernanceError } from './types.ts';
import type { RetentionCandidate } from './retention.ts';

async function setup() {
  const clock = { t: new Date('2026-06-01T00:00:00Z') };
  const gov = GovernanceStore.open(':memory:', { now: () => clock.t });
  return { gov, clock };
}

const result = (subject: string, createdAt: string, labels: RetentionCandidate['labels'] = {}): RetentionCandidate => ({ subject, kind: 'result', createdAt, labels });

test('results past their retention are planned for destruction; younger ones are kept with their due date', async () => {
  const { gov, clock } = await setup();
  await gov.retention.setRule({ kind: 'result', scope: '*', days: 30, by: 'olivia' });
  await gov.retention.setRule({ kind: 'result', scope: 'patients', days: 7, by: 'olivia' });
  const plan = await gov.retention.plan(clock.t, [
    result('res_old', '2026-04-01T00:00:00Z', { dataset: 'claims' }),
    result('res_new', '2026-05-20T00:00:00Z', { dataset: 'claims' }),
    result('res_pat', '2026-05-20T00:00:00Z', { dataset: 'patients' }),
    { subject: 'exp_1', kind: 'export', createdAt: '2020-01-01', labels: {} },
  ]);
  assert.deepEqual(plan.destroy.map((d) => [d.subject, d.dueAt]), [['res_old', '2026-05-01T00:00:00.000Z'], ['res_pat', '2026-05-27T00:00:00.000Z']]);
  assert.deepEqual(plan.keep, [
    { subject: 'res_new', kind: 'result', dueAt: '2026-06-19T00:00:00.000Z' },
    { subject: 'exp_1', kind: 'export', dueAt: null },
  ]);
  assert.deepEqual(plan.held, []);
});

test('an agreement clause keeps derived results no longer than it says', async () => {
  const { gov } = await setup();
  await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
  const a = (await gov.agreements.create({ kind: 'DPA', title: 'DPA', parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-01-01', endsOn: null, datasets: ['patients'], purposes: ['research'], clauses: { resultRetentionDays: 10 }, by: 'olivia' }, { knownDatasets: new Set(['patients']) })).agreement;
  await gov.retention.setRule({ kind: 'result', scope: '*', days: 365, by: 'olivia' });
  const plan = await gov.retention.plan(new Date('2026-06-01T00:00:00Z'), [result('res_1', '2026-05-20T00:00:00Z', { dataset: 'patients', agreement: a.id })]);
  assert.equal(plan.destroy.length, 1);
  assert.match(plan.destroy[0]!.because, new RegExp(`agreement ${a.id} keeps results 10 day`));
});

test('retention under a legal hold is held and the hold is named; releasing it makes the artefact destroyable', async () => {
  const { gov, clock } = await setup();
  await gov.retention.setRule({ kind: 'result', scope: '*', days: 1, by: 'olivia' });
  const { hold } = await gov.retention.placeHold({ subject: { kind: 'principal', id: 'rhea' }, reason: 'subpoena 44', placedBy: 'counsel' });
  const candidates = [result('res_a', '2026-01-01', { principal: 'rhea', dataset: 'patients' }), result('res_b', '2026-01-01', { principal: 'ivan' })];
  const plan = await gov.retention.plan(clock.t, candidates);
  assert.deepEqual(plan.held.map((h) => [h.subject, h.holds.map((x) => x.id)]), [['res_a', [hold.id]]]);
  assert.deepEqual(plan.destroy.map((d) => d.subject), ['res_b']);
  clock.t = new Date('2026-06-02T00:00:00Z');
  await gov.retention.releaseHold(hold.id, 'counsel');
  assert.deepEqual((await gov.retention.plan(clock.t, candidates)).destroy.map((d) => d.subject), ['res_a', 'res_b']);
  await assert.rejects(async () => await gov.retention.releaseHold(hold.id, 'counsel'), (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_HOLD_ALREADY_RELEASED');
});

test('an explicit destruction request for something under hold is refused with the hold named, by dataset, agreement or artefact', async () => {
  const { gov } = await setup();
  const onDataset = (await gov.retention.placeHold({ subject: { kind: 'dataset', id: 'patients' }, reason: 'litigation', placedBy: 'counsel' })).hold;
  const onArtefact = (await gov.retention.placeHold({ subject: { kind: 'artefact', id: 'exp_9' }, reason: 'regulator review', placedBy: 'counsel' })).hold;
  const onAgreement = (await gov.retention.placeHold({ subject: { kind: 'agreement', id: 'agr_x' }, reason: 'dispute', placedBy: 'counsel' })).hold;
  const cases: [RetentionCandidate, string][] = [
    [result('res_1', '2026-01-01', { dataset: 'patients' }), onDataset.id],
    [{ subject: 'patients', kind: 'dataset', createdAt: '2025-01-01', labels: {} }, onDataset.id],
    [{ subject: 'exp_9', kind: 'export', createdAt: '2026-01-01', labels: {} }, onArtefact.id],
    [result('res_2', '2026-01-01', { agreement: 'agr_x' }), onAgreement.id],
  ];
  for (const [candidate, holdId] of cases) {
    let caught: unknown;
    try {
      await gov.retention.authorizeDestruction(candidate, { by: 'olivia', reason: 'cleanup' });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof GovernanceError && caught.detail === 'GOV_LEGAL_HOLD', String(caught));
    assert.ok(caught.message.includes(holdId) && caught.message.includes('nothing was destroyed'));
    assert.match(caught.hint, new RegExp(`gatehouse retention release ${holdId}`));
    assert.equal(caught.event?.outcome, 'refused');
  }
  const ok = await gov.retention.authorizeDestruction(result('res_3', '2026-01-01', { dataset: 'claims' }), { by: 'olivia', reason: 'retention' });
  assert.equal(ok.event.outcome, 'approved');
});

test('malformed retention input is refused: unknown kinds, negative days, bad dates, unknown labels', async () => {
  const { gov } = await setup();
  const bad = (fn: () => unknown, msg: RegExp) => assert.rejects(async () => fn(), (e: unknown) => e instanceof GovernanceError && e.detail === 'GOV_INVALID' && msg.test(e.message));
  await bad(async () => await gov.retention.setRule({ kind: 'backup' as never, scope: '*', days: 1, by: 'o' }), /kind must be one of dataset, grant, result, export/);
  await bad(async () => await gov.retention.setRule({ kind: 'result', scope: '*', days: -1, by: 'o' }), /days/);
  await bad(async () => await gov.retention.placeHold({ subject: { kind: 'planet' as never, id: 'x' }, reason: 'r', placedBy: 'o' }), /subject.kind/);
  await bad(async () => await gov.retention.placeHold({ subject: { kind: 'dataset', id: 'patients' }, reason: ' ', placedBy: 'o' }), /reason/);
  await bad(async () => await gov.retention.plan(new Date(), [result('r', 'yesterday')]), /createdAt/);
  await bad(async () => await gov.retention.plan(new Date(), [{ subject: 'r', kind: 'result', createdAt: '2026-01-01', labels: { tenant: 'x' } as never }]), /labels.tenant/);
  assert.deepEqual(await gov.retention.rules(), []);
  assert.deepEqual(await gov.retention.activeHolds(), []);
});
