/**
 * Two Gatehouse nodes (two GovernanceRuntimes, each with its own pool and key cache, the same
 * keyring file) on one PostgreSQL database: what one node decides, the other enforces at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { governanceOp, type OpContext } from '../src/governance/service.ts';
import { GovernanceRuntime } from '../src/kernel/governance-runtime.ts';
import { LocalKeyring } from '../src/keys/keyring.ts';
import { openPostgresState, type PostgresState } from '../src/state/postgres.ts';
import type { DatasetDef, PrincipalDef, Workspace } from '../src/model/types.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
let dir: string;
const nodes: { state: PostgresState; rt: GovernanceRuntime }[] = [];
let A: GovernanceRuntime;
let B: GovernanceRuntime;

const rhea = { id: 'rhea', groups: [], attributes: { org: 'northwind-research' } } as unknown as PrincipalDef;
const olivia = { id: 'olivia', groups: ['admins'], attributes: { org: 'st-avery' } } as unknown as PrincipalDef;
const patients = { name: 'patients', classification: 'confidential', purposes: ['research'], owner: 'st-avery', columns: [] } as unknown as DatasetDef;
const isOwner = (): boolean => true;

before(async () => {
  cluster = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'gh-two-nodes-'));
  // One keyring, copied to each node's state directory (as docs/state-postgres.md says).
  const passphrase = 'two-node test passphrase';
  process.env.GATEHOUSE_KEY_PASSPHRASE = passphrase;
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  (await LocalKeyring.openOrCreate(join(dir, 'a', 'keyring.json'), passphrase)).close();
  copyFileSync(join(dir, 'a', 'keyring.json'), join(dir, 'b', 'keyring.json'));
  for (const n of ['a', 'b']) {
    const state = await openPostgresState({ url: cluster.superuserUrl, schema: 'two_nodes', maxConnections: 4 });
    nodes.push({ state, rt: new GovernanceRuntime(join(dir, n), { demo: false, postgres: state }) });
  }
  [A, B] = [nodes[0]!.rt, nodes[1]!.rt];
  await A.store.vendors.register({ name: 'northwind-research', by: 'olivia' });
});

after(async () => {
  for (const n of nodes) { await n.rt.close(); await n.state.close(); }
  delete process.env.GATEHOUSE_KEY_PASSPHRASE;
  if (dir) rmSync(dir, { recursive: true, force: true });
  await cluster?.stop();
});

async function agreement(datasets = ['patients']): Promise<string> {
  const kinds = ['DPA', 'NDA', 'MSA', 'SLA'] as const;
  const kind = kinds[(await A.store.agreements.list()).length % 4]!;
  return (await A.store.agreements.create({ kind, title: 't', parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-01-01', endsOn: null, datasets, purposes: ['research'], clauses: { termination: { destruction: 'required', withinDays: 0 } }, by: 'olivia' }, { knownDatasets: ['patients', 'claims', 'encounters', 'labs'] })).agreement.id;
}

function ctxOf(rt: GovernanceRuntime): OpContext {
  return {
    caller: olivia, isAdmin: true, workspace: { name: 'two-nodes', datasets: new Map([['patients', patients]]) } as unknown as Workspace,
    store: rt.store, vault: () => rt.vault(), now: new Date(), audit: null, isOwner,
    budgetUse: async () => [], sample: async () => new Map(),
  };
}

test('an access request approved on node A grants on node B at once, and a double approval from both nodes grants once', async () => {
  const agr = await agreement(['patients']);
  const { request } = await B.store.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 30, justification: 'cohort study' });
  assert.equal((await B.store.evaluate({ principal: rhea, dataset: patients, purpose: 'research' })).denials[0]?.code, 'GOV_GRANT_MISSING');
  const approved = await A.store.grants.approve(request.id, { approverId: 'olivia', isOwner });
  const onB = await B.store.evaluate({ principal: rhea, dataset: patients, purpose: 'research' });
  assert.deepEqual({ allowed: onB.allowed, grant: onB.context.grantId, agreement: onB.context.agreementId }, { allowed: true, grant: approved.grant.id, agreement: agr });

  // Twenty requests, each approved from both nodes at the same moment: exactly one grant each.
  const reqs = [];
  for (let i = 0; i < 20; i++) reqs.push((await A.store.grants.request({ principalId: `p${i}`, org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 5, justification: 'x' })).request.id);
  const outcomes = await Promise.all(reqs.flatMap((id) => [A, B].map(async (n) => {
    try { return (await n.store.grants.approve(id, { approverId: 'olivia', isOwner })).grant.id; } catch (e) { return (e as { detail: string }).detail; }
  })));
  assert.equal(outcomes.filter((o) => o.startsWith('grt_')).length, 20, outcomes.join(' '));
  assert.equal(outcomes.filter((o) => o === 'GOV_ALREADY_DECIDED').length, 20, outcomes.join(' '));
  const grants = await B.store.grants.list({ all: true });
  assert.equal(grants.filter((g) => g.grantee.kind === 'principal' && /^p\d+$/.test(g.grantee.id)).length, 20);
});

test('an agreement terminated on node A denies the next evaluation on node B and destroys the result node B saved', async () => {
  const agr = await agreement(['claims']);
  const claims = { ...patients, name: 'claims' } as DatasetDef;
  await A.store.grants.create({ grantee: { kind: 'org', org: 'northwind-research' }, dataset: 'claims', purpose: 'research', agreementId: agr, until: '2027-01-01', by: 'olivia' });
  assert.equal((await B.store.evaluate({ principal: rhea, dataset: claims, purpose: 'research' })).allowed, true);
  const vb = await B.vault();
  const saved = await vb.artefacts.put({ kind: 'result', owner: 'rhea', labels: { agreement: agr, org: 'northwind-research', dataset: 'claims', datasets: 'claims', purpose: 'research' }, retainUntil: null, content: Buffer.from('{"rows":[[42]]}'), mediaType: 'application/json' });
  assert.equal((await (await A.vault()).artefacts.get(saved.id)).content.toString(), '{"rows":[[42]]}', 'saved on B, readable on A');
  await vb.dataKeys.unwrap(saved.keyId); // B has the key cached

  const r = await governanceOp('agreement.terminate')!.run(ctxOf(A), { id: agr, reason: 'breach of the DPA' });
  const result = r.result as { destroyed: string[] };
  assert.deepEqual(result.destroyed, [saved.id]);
  assert.equal(r.certificates?.length, 1);

  const next = await B.store.evaluate({ principal: rhea, dataset: claims, purpose: 'research' });
  assert.deepEqual(next.denials.map((d) => d.code), ['GOV_AGREEMENT_TERMINATED']);
  await assert.rejects(vb.artefacts.get(saved.id), { detail: 'ARTEFACT_DESTROYED' });
  await assert.rejects(vb.dataKeys.unwrap(saved.keyId), { detail: 'DATA_KEY_DESTROYED' });
  assert.equal((await vb.dataKeys.destruction(saved.keyId))?.reason, `agreement ${agr} terminated: breach of the DPA`);
});

test('the gate on PostgreSQL with 100 agreements on file evaluates in well under a few milliseconds', async (t) => {
  const datasets = Array.from({ length: 100 }, (_, i) => `ds${i}`);
  for (let i = 0; i < 100; i++) {
    await A.store.agreements.create({ kind: 'DPA', title: `a${i}`, parties: { ours: 'st-avery', partner: 'northwind-research' }, effectiveFrom: '2026-01-01', endsOn: null, datasets: [datasets[i]!], purposes: ['research'], by: 'olivia' }, { knownDatasets: datasets });
  }
  const ds = { ...patients, name: 'ds50' } as DatasetDef;
  const agr = (await A.store.agreements.list()).find((a) => a.datasets.includes('ds50'))!.id;
  await A.store.grants.create({ grantee: { kind: 'org', org: 'northwind-research' }, dataset: 'ds50', purpose: 'research', agreementId: agr, until: '2027-01-01', by: 'olivia' });
  for (let i = 0; i < 50; i++) assert.equal((await B.store.evaluate({ principal: rhea, dataset: ds, purpose: 'research' })).allowed, true);
  const n = 500;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await B.store.evaluate({ principal: rhea, dataset: ds, purpose: 'research' });
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  t.diagnostic(`gate on PostgreSQL, 100+ agreements: ${us.toFixed(0)} µs per evaluation (sequential, one node)`);
  assert.ok(us < 5000, `${us} µs per evaluation`);
});
