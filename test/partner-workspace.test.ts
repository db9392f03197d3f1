/**
 * Expiring partner workspaces (issue 23): each partner organisation sees its own saved
 * results, job outputs, room results and models and when each expires; no partner can list
 * or read another's; content past its date (result retention, agreement end, termination)
 * is crypto-shredded with a destruction certificate in the audit log. The node's clock is
 * injected: the test moves it forward instead of waiting.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { demoFixture, KEYS, codeOf, type Fixture } from './helpers/workspace.ts';
import type { NodeHttp } from '../src/node/http.ts';

type Fx = Fixture<NodeHttp>;
const DAY = 86_400_000;
const meta = (who: keyof typeof KEYS) => ({ credential: KEYS[who], source: '127.0.0.1', channel: 'test' });

interface Item { id: string; item: string; expiresAt: string | null; basis: string; destroyedAt: string | null; agreement: string | null; expiresInDays: number | null }
interface Listing { org: string; expiresAt: string | null; items: Item[] }

describe('expiring partner workspaces', () => {
  let fx: Fx;
  // The demo's governance is seeded at the machine's time; the node's clock starts a minute later.
  let clock = Math.floor(Date.now() / 1000) * 1000 + 60_000;
  const t0 = clock;
  let rheaResult: string;
  let ivanResult: string;
  let northwindJob: string;
  let keystoneModel: string;
  let harborRoom: string;

  const op = (who: keyof typeof KEYS, name: string, args: unknown) => fx.gh.governanceOp(meta(who), name, args);
  const list = async (who: keyof typeof KEYS, args: Record<string, unknown> = {}) => await op(who, 'workspace.list', args) as Listing;
  const deposit = (org: string, item: string, name: string, datasets: string[], content: unknown) =>
    op('olivia', 'workspace.deposit', { org, item, name, datasets, content: JSON.stringify(content) }) as Promise<{ item: Item }>;

  before(async () => {
    fx = await demoFixture({ patients: 200, http: true, governance: true, now: () => new Date(clock) }) as Fx;
    rheaResult = (await fx.gh.query({ ...meta('rhea'), sql: 'SELECT department, count(*) AS n FROM encounters GROUP BY department', purpose: 'research', save: true })).governance.resultId!;
    ivanResult = (await fx.gh.query({ ...meta('ivan'), sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', save: true })).governance.resultId!;
    northwindJob = (await deposit('northwind-research', 'job-output', 'readmission-model-eval', ['encounters'], { auc: 0.81 })).item.id;
    keystoneModel = (await deposit('keystone-mutual', 'model', 'fraud-score-v2', ['claims'], { weights: [0.1, 0.2] })).item.id;
  });

  after(async () => { await fx?.close(); });

  test('a partner lists only its own organisation\'s items, each with when it expires and why', async () => {
    const ws = await list('rhea');
    assert.equal(ws.org, 'northwind-research');
    assert.deepEqual(ws.items.map((i) => i.id).sort(), [northwindJob, rheaResult].sort());
    // The demo's agreement ends 335 days after it was seeded; its result-retention clause is 90 days.
    for (const i of ws.items) {
      assert.equal(i.expiresAt, new Date(t0 + 90 * DAY).toISOString());
      assert.equal(i.basis, 'the result-retention clause');
      assert.equal(i.expiresInDays, 90);
    }
    assert.ok(Math.abs(Date.parse(ws.expiresAt!) - (t0 + 335 * DAY)) < 5 * 60_000, ws.expiresAt!);
    const other = await list('ivan');
    assert.deepEqual(other.items.map((i) => i.id).sort(), [ivanResult, keystoneModel].sort());
  });

  test('a partner can neither list nor read another partner\'s workspace, and cannot tell its items exist', async () => {
    assert.equal(await codeOf(list('rhea', { org: 'keystone-mutual' })), 'POLICY_DENIED');
    const foreign = await codeOf(op('rhea', 'workspace.get', { id: keystoneModel }));
    const madeUp = await codeOf(op('rhea', 'workspace.get', { id: 'art_AAAAAAAAAAAAAAAAAAAAAA' }));
    assert.equal(foreign, 'NOT_FOUND');
    assert.equal(foreign, madeUp);
    assert.equal(await codeOf(op('ivan', 'workspace.get', { id: rheaResult })), 'NOT_FOUND');
    // Over HTTP, the same: the route is the op.
    const r = await fx.http.app.inject({ url: `/v1/governance/workspace/item?id=${northwindJob}`, headers: { authorization: `Bearer ${KEYS.ivan}` } });
    assert.equal(r.statusCode, 404);
    assert.doesNotMatch(r.body, /auc/);
    const own = await fx.http.app.inject({ url: `/v1/governance/workspace/item?id=${northwindJob}`, headers: { authorization: `Bearer ${KEYS.rhea}` } });
    assert.equal(own.statusCode, 200, own.body);
    assert.deepEqual(own.json().content, { auc: 0.81 });
  });

  test('a deposit is for administrators, under an agreement in force that covers the data; a refused one stores nothing', async () => {
    const before = (await list('olivia', { org: 'nobody-ltd', destroyed: true })).items.length;
    const code = await codeOf(op('olivia', 'workspace.deposit', { org: 'nobody-ltd', item: 'model', name: 'm1', datasets: ['claims'], content: '{}' }));
    assert.equal(code, 'CONFLICT');
    assert.equal((await list('olivia', { org: 'nobody-ltd', destroyed: true })).items.length, before);
    assert.equal(await codeOf(op('rhea', 'workspace.deposit', { org: 'northwind-research', item: 'model', name: 'm1', datasets: ['claims'], content: '{}' })), 'POLICY_DENIED');
  });

  test('an item without a retention clause expires with its agreement\'s end', async () => {
    await op('olivia', 'vendor.register', { name: 'harbor-labs', displayName: 'Harbor Labs' });
    const { agreement } = await op('olivia', 'agreement.create', {
      kind: 'NDA', title: 'Pilot', partner: 'harbor-labs', effectiveFrom: new Date(clock - DAY).toISOString(), endsOn: new Date(clock + 10 * DAY).toISOString(),
      datasets: ['claims'], purposes: ['research'],
    }) as { agreement: { id: string; endsOn: string } };
    const { item } = await deposit('harbor-labs', 'room-result', 'overlap-count', ['claims'], { overlap: 42 });
    harborRoom = item.id;
    assert.equal(item.agreement, agreement.id);
    assert.equal(item.expiresAt, agreement.endsOn);
    assert.match(item.basis, /ends/);
  });

  test('content past its date is unreadable at once and crypto-shredded by the scheduler with a certificate', async () => {
    clock = t0 + 31 * DAY; // past keystone's 30-day result retention, before northwind's 90
    const ivan = await list('ivan');
    assert.ok(ivan.items.every((i) => i.expiresInDays === 0), JSON.stringify(ivan.items));
    const early = await codeOf(op('ivan', 'workspace.get', { id: keystoneModel }));
    assert.equal(early, 'NOT_FOUND');
    const dry = await op('olivia', 'workspace.expire', { dryRun: true }) as { due: { item: string }[] };
    assert.ok(dry.due.some((d) => d.item === keystoneModel));

    const before = (await fx.log.search({ action: 'governance.destruction' })).length;
    const round = await fx.gh.runScheduledGovernance() as { workspaces: { destroyed: string[] }; retention: { destroyed: string[] } };
    const destroyed = [...round.retention.destroyed as string[], ...round.workspaces.destroyed];
    assert.ok(destroyed.includes(keystoneModel) && destroyed.includes(ivanResult), JSON.stringify(round));
    assert.ok(!destroyed.includes(northwindJob) && !destroyed.includes(rheaResult));
    // Harbor's pilot agreement ended on day 10: its room result went with it (closed out with the agreement).
    assert.ok(JSON.stringify(round).includes(harborRoom), JSON.stringify(round));
    assert.equal((await list('olivia', { org: 'harbor-labs' })).items.length, 0);
    const certs = await fx.log.search({ action: 'governance.destruction' });
    assert.ok(certs.length > before);
    const shredded = certs.slice(before).flatMap((c) => (JSON.parse(c.entry.reasons[1]!) as { artefacts: { id: string }[] }).artefacts.map((a) => a.id));
    assert.ok(shredded.includes(keystoneModel));

    const after = await list('ivan', { destroyed: true });
    assert.ok(after.items.every((i) => i.destroyedAt !== null));
    assert.equal((await list('ivan')).items.length, 0);
    assert.equal((await list('rhea')).items.length, 2, 'the other partner\'s workspace is untouched');
  });

  test('terminating an agreement crypto-shreds every derivative in the partner\'s workspace: saved results and job outputs', async () => {
    type Flows = { derivations: { from: string; to: string; item: string; count: number }[] };
    const derivedFor = async () => (await op('olivia', 'flows.map', {}) as Flows).derivations.filter((d) => d.to === 'partner:northwind-research');
    // The data-flow map shows what was derived from which dataset for the partner.
    assert.deepEqual((await derivedFor()).map((d) => [d.from, d.item, d.count]), [['dataset:encounters', 'job-output', 1], ['dataset:encounters', 'result', 1]]);
    const [agreement] = (await op('olivia', 'agreement.list', { partner: 'northwind-research' }) as { agreements: { id: string }[] }).agreements;
    const t = await op('olivia', 'agreement.terminate', { id: agreement!.id, reason: 'study cancelled' }) as { destroyed: string[]; certificates: { certificateId: string }[] };
    assert.deepEqual([...t.destroyed].sort(), [northwindJob, rheaResult].sort());
    assert.equal(t.certificates.length, 1);
    const ws = await list('rhea', { destroyed: true });
    assert.ok(ws.items.every((i) => i.destroyedAt !== null));
    assert.equal(await codeOf(op('rhea', 'workspace.get', { id: northwindJob })), 'NOT_FOUND');
    assert.deepEqual(await derivedFor(), [], 'nothing derived is kept any more');
  });

  test('an item under legal hold is kept past its date and reported; released, it is shredded', async () => {
    clock = t0 + 42 * DAY;
    const { item } = await deposit('keystone-mutual', 'model', 'fraud-score-v3', ['claims'], { weights: [0.3] });
    const { hold } = await op('olivia', 'retention.hold', { kind: 'artefact', subject: item.id, reason: 'litigation LIT-9' }) as { hold: { id: string } };
    clock = t0 + 80 * DAY; // past its 30-day retention
    const held = await op('olivia', 'workspace.expire', { org: 'keystone-mutual' }) as { destroyed: string[]; held: { artefact: string }[] };
    assert.deepEqual(held.destroyed, []);
    assert.deepEqual(held.held.map((h) => h.artefact), [item.id]);
    assert.equal((await list('ivan')).items.length, 1, 'still there, though unreadable');
    assert.equal(await codeOf(op('ivan', 'workspace.get', { id: item.id })), 'NOT_FOUND');
    await op('olivia', 'retention.release', { id: hold.id });
    const released = await op('olivia', 'workspace.expire', { org: 'keystone-mutual' }) as { destroyed: string[] };
    assert.deepEqual(released.destroyed, [item.id]);
  });

  test('the CLI and HTTP route show the partner its workspace', async () => {
    const r = await fx.http.app.inject({ url: '/v1/governance/workspace', headers: { authorization: `Bearer ${KEYS.rhea}` } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().org, 'northwind-research');
  });
});
