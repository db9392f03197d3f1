/**
 * Automatic deposits into partner workspaces (issue 23): a job output the airlock releases, a
 * clean-room result the compute node delivers to a receiving member and a trained model
 * released to a partner each land in that partner organisation's workspace, inheriting the
 * lineage of their sources, and nowhere else; another partner cannot read them; at expiry they
 * are crypto-shredded with a certificate. The node's clock is injected and moved forward.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addJobPrincipals, admitJobPrincipal, bundleOf, DEPARTMENT_STAYS, JOB_KEY, JOB_PRINCIPAL, NADIA_KEY, OSCAR_KEY, partnerKey, type PartnerKey } from '../src/jobs/testing.ts';
import { apiKeyDigest } from '../src/identity/digest.ts';
import { depositRoomResult, registerRoomResultDeposits } from '../src/cleanroom/result-deposits.ts';
import type { Collaboration } from '../src/cleanroom/model.ts';
import type { NodeHttp } from '../src/node/http.ts';
import { codeOf, demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';

type Fx = Fixture<NodeHttp>;
const DAY = 86_400_000;
const FLO_KEY = 'test-key-flo-0123456789abcdef0';
const HANA_KEY = 'test-key-hana-0123456789abcdef';
const meta = (credential: string) => ({ credential, source: '127.0.0.1', channel: 'test' });
const rhea = meta(KEYS.rhea), olivia = meta(KEYS.olivia), ivan = meta(KEYS.ivan), oscar = meta(OSCAR_KEY), flo = meta(FLO_KEY), hana = meta(HANA_KEY);

interface Item { id: string; item: string; name: string; expiresAt: string | null; expiresInDays: number | null; basis: string; agreement: string | null; classification: string | null; source: string | null; datasets: string[]; destroyedAt: string | null }

/**
 * A federated-learning operator on the owner's node (flo), an engineer of a partner with no
 * agreement (hana, Harbor Labs).
 */
function addPrincipals(wsDir: string): void {
  const file = join(wsDir, 'gatehouse.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^principals:\n/m, `principals:
  flo:
    displayName: Flo (federated-learning operator)
    groups: [fl-operators]
    attributes: { org: st-avery, region: us-east }
    apiKeySha256: [${apiKeyDigest(FLO_KEY)}]
  hana:
    displayName: Hana (Harbor Labs engineer)
    groups: [partner-engineers]
    attributes: { org: harbor-labs, region: us-east }
    apiKeySha256: [${apiKeyDigest(HANA_KEY)}]
`));
}

describe('automatic deposits into partner workspaces', () => {
  let fx: Fx;
  let key: PartnerKey;
  let version = 0;
  let clock = Math.floor(Date.now() / 1000) * 1000 + 60_000;
  const t0 = clock;
  const placed: string[] = [];

  const op = (m: { credential: string }, name: string, args: unknown) => fx.gh.governanceOp({ ...m, source: '127.0.0.1', channel: 'test' }, name, args);
  const list = async (m: { credential: string }, args: Record<string, unknown> = {}) => (await op(m, 'workspace.list', args) as { items: Item[] }).items;
  const northwindAgreement = async () => (await op(olivia, 'agreement.list', { partner: 'northwind-research' }) as { agreements: { id: string }[] }).agreements[0]!.id;

  /** Submits, approves and runs a job signed with `signer`, and takes it through two reviews. */
  async function approvedRelease(signer: PartnerKey, author = rhea) {
    const s = await fx.gh.submitJob(author, bundleOf(signer, { ...DEPARTMENT_STAYS, version: `20.${version++}.0` }));
    await fx.gh.approveJob(olivia, { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL, measurements: [] });
    const run = await fx.gh.runJob(olivia, { jobId: s.jobId, params: { min_count: 10 } });
    const sub = await fx.gh.airlockSubmit(author, { runId: run.runId });
    assert.equal(sub.state, 'in_review', JSON.stringify(sub.checks.findings));
    await fx.gh.airlockReview(olivia, { id: sub.id, decision: 'approve', reason: 'counts above threshold' });
    await fx.gh.airlockReview(oscar, { id: sub.id, decision: 'approve', reason: 'checked' });
    return { runId: run.runId, id: sub.id };
  }

  before(async () => {
    fx = await demoFixture({ patients: 300, http: true, governance: true, now: () => new Date(clock), edit: (ws) => { addJobPrincipals(ws, OSCAR_KEY, NADIA_KEY, { jobKey: JOB_KEY }); addPrincipals(ws); } }) as Fx;
    key = partnerKey();
    await fx.gh.addJobSigner(olivia, { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem });
    await admitJobPrincipal(fx.gh, KEYS.olivia, new Date(clock));
    await op(olivia, 'vendor.register', { name: 'harbor-labs', displayName: 'Harbor Labs' });
  });
  after(async () => { await fx?.close(); });

  test('a job output released by the airlock lands in the partner\'s workspace with its lineage, and the job store keeps only its hash', async () => {
    const { runId, id } = await approvedRelease(key);
    const rel = await fx.gh.airlockRelease(rhea, { id });
    assert.equal(rel.state, 'released');
    assert.deepEqual(rel.workspace.map((w) => [w.output, w.org]), [['stays_by_department', 'northwind-research']]);
    const [item] = (await list(rhea)).filter((i) => i.id === rel.workspace[0]!.item);
    assert.ok(item, 'the partner sees the released output in its workspace');
    assert.equal(item.item, 'job-output');
    assert.equal(item.source, `airlock:${id}`);
    assert.deepEqual(item.datasets, ['encounters']);
    assert.equal(item.agreement, await northwindAgreement());
    assert.equal(item.classification, 'regulated', 'encounters holds regulated columns: the strictest source classification is inherited');
    assert.equal(item.expiresAt, new Date(t0 + 90 * DAY).toISOString(), 'the agreement\'s 90-day result retention');
    const got = await op(rhea, 'workspace.get', { id: item.id }) as { content: { columns: string[]; rows: unknown[][] } };
    assert.deepEqual(got.content, { columns: rel.outputs[0]!.columns, rows: rel.outputs[0]!.rows });
    placed.push(item.id);

    // No copy outside the workspace: the run and the request keep the SHA-256 only.
    const db = new DatabaseSync(join(fx.wsDir, 'state', 'code-to-data.sqlite'), { readOnly: true });
    try {
      const runRow = db.prepare('SELECT outputs, outputs_sha256 FROM job_runs WHERE id = ?').get(runId) as { outputs: string | null; outputs_sha256: string };
      const reqRow = db.prepare('SELECT outputs, outputs_sha256 FROM airlock_requests WHERE id = ?').get(id) as { outputs: string; outputs_sha256: string };
      assert.equal(runRow.outputs, null);
      assert.equal(reqRow.outputs, '');
      assert.equal(runRow.outputs_sha256, rel.outputsSha256);
      assert.equal(reqRow.outputs_sha256, rel.outputsSha256);
    } finally { db.close(); }
    assert.equal(await codeOf(fx.gh.airlockSubmit(rhea, { runId })), 'CONFLICT', 'a released run cannot be submitted for a second release');
    const [entry] = (await fx.log.search({ action: 'airlock.release' })).filter((e) => e.entry.decision === 'allow').slice(-1);
    assert.ok(entry!.entry.reasons.some((r) => r.includes(item.id) && r.includes('northwind-research')), JSON.stringify(entry!.entry.reasons));
  });

  test('an output whose partner has no agreement covering the data is not released, and nothing is stored for it', async () => {
    const stranger = partnerKey('harbor-2026');
    await fx.gh.addJobSigner(olivia, { keyId: stranger.keyId, org: 'harbor-labs', publicKeyPem: stranger.publicKeyPem });
    const { runId, id } = await approvedRelease(stranger, hana);
    assert.equal(await codeOf(fx.gh.airlockRelease(hana, { id })), 'CONFLICT');
    assert.equal((await list(olivia, { org: 'harbor-labs', destroyed: true })).length, 0);
    assert.equal((await fx.gh.airlockList(olivia)).requests.find((r) => r.id === id)!.state, 'approved', 'still approved: nothing was released');
    const db = new DatabaseSync(join(fx.wsDir, 'state', 'code-to-data.sqlite'), { readOnly: true });
    try { assert.notEqual((db.prepare('SELECT outputs FROM job_runs WHERE id = ?').get(runId) as { outputs: string | null }).outputs, null); } finally { db.close(); }
  });

  test('a clean-room result delivered to a receiving member lands in that member organisation\'s workspace; without an agreement nothing is delivered', async () => {
    const node = { nodeId: 'st-avery' };
    registerRoomResultDeposits(node, (d) => fx.gh.depositRoomResult(node.nodeId, d));
    const member = (nodeId: string, abilities: ('query' | 'receive' | 'approve')[]) => ({ nodeId, publicKey: 'ed25519:test', abilities, status: 'active' as const });
    const room = (receivers: string[]): Collaboration => ({
      id: 'readmissions', name: 'Readmissions', purpose: 'research', creator: 'st-avery', computeNode: 'st-avery', templates: [], status: 'active', version: 3,
      members: [member('st-avery', ['query', 'receive', 'approve']), ...receivers.map((r) => member(r, ['query', 'receive']))],
      contributions: [{ table: 'enc', owner: 'st-avery', dataset: 'encounters', columns: [], rule: { kind: 'aggregation' } as never }],
    });
    const outcome = { queryId: '6f1c2a9e-0000-4000-8000-000000000001', columns: [{ name: 'department', type: 'VARCHAR' }, { name: 'n', type: 'BIGINT' }], rows: [['cardiology', 40], ['oncology', 25]], resultDigest: 'sha256:00' };
    // Zenith has no agreement: the delivery fails, and Northwind's deposit, placed first, is shredded again.
    await assert.rejects(depositRoomResult(node, room(['northwind-research', 'zenith-labs']), 'northwind-research', ['enc'], outcome), (e: Error & { code?: string }) => e.code === 'CONFLICT');
    assert.ok(!(await list(rhea)).some((i) => i.item === 'room-result'));
    const withdrawn = (await list(rhea, { destroyed: true })).filter((i) => i.item === 'room-result');
    assert.equal(withdrawn.length, 1);
    assert.notEqual(withdrawn[0]!.destroyedAt, null);

    await depositRoomResult(node, room(['northwind-research']), 'northwind-research', ['enc'], outcome);
    const [item] = (await list(rhea)).filter((i) => i.item === 'room-result');
    assert.ok(item);
    assert.equal(item.source, `cleanroom:readmissions/${outcome.queryId}`);
    assert.equal(item.classification, 'regulated');
    assert.equal(item.agreement, await northwindAgreement());
    const got = await op(rhea, 'workspace.get', { id: item.id }) as { content: { rows: unknown[][]; resultDigest: string } };
    assert.deepEqual(got.content.rows, outcome.rows);
    assert.equal(got.content.resultDigest, outcome.resultDigest);
    placed.push(item.id);
    const entries = await fx.log.search({ action: 'cleanroom.deposit' });
    assert.equal(entries.length, 2, 'the refused delivery and the placed one, one entry each');
    assert.notEqual(entries[0]!.entry.decision, 'allow');
    assert.equal(entries[1]!.entry.decision, 'allow');
    assert.ok(entries[1]!.entry.reasons.some((r) => r.includes(item.id) && r.includes('northwind-research')), JSON.stringify(entries[1]!.entry.reasons));
  });

  test('a trained model goes only to the partner of the agreement it was trained under', async () => {
    const agreement = await northwindAgreement();
    const { value: model } = await fx.gh.flStoreModel(flo, { job: 'readmit-fl', agreement, content: Buffer.from(JSON.stringify({ format: 'gatehouse-fl-model/1', weights: [0.4, -1.2] })) });
    assert.equal(await codeOf(op(olivia, 'workspace.release-model', { model: model.artefactId, org: 'keystone-mutual' })), 'CONFLICT');
    assert.equal(await codeOf(op(rhea, 'workspace.release-model', { model: model.artefactId, org: 'northwind-research' })), 'POLICY_DENIED');
    const { item } = await op(olivia, 'workspace.release-model', { model: model.artefactId, org: 'northwind-research' }) as { item: Item };
    assert.equal(item.item, 'model');
    assert.equal(item.agreement, agreement);
    assert.equal(item.source, `fl:readmit-fl/${model.artefactId}`);
    assert.equal(item.expiresAt, new Date(t0 + 90 * DAY).toISOString());
    assert.deepEqual((await op(rhea, 'workspace.get', { id: item.id }) as { content: { weights: number[] } }).content.weights, [0.4, -1.2]);
    assert.equal((await list(ivan)).filter((i) => i.item === 'model').length, 0);
    placed.push(item.id);
  });

  test('another partner can neither read nor find a deposit, over the op and over HTTP', async () => {
    for (const id of placed) {
      const foreign = await codeOf(op(ivan, 'workspace.get', { id }));
      assert.equal(foreign, 'NOT_FOUND');
      assert.equal(foreign, await codeOf(op(ivan, 'workspace.get', { id: 'art_AAAAAAAAAAAAAAAAAAAAAA' })));
      const r = await fx.http.app.inject({ url: `/v1/governance/workspace/item?id=${id}`, headers: { authorization: `Bearer ${KEYS.ivan}` } });
      assert.equal(r.statusCode, 404);
      assert.doesNotMatch(r.body, /cardiology|weights|department/);
    }
    assert.equal(await codeOf(op(ivan, 'workspace.list', { org: 'northwind-research' })), 'POLICY_DENIED');
    const mine = (await list(ivan)).map((i) => i.id);
    assert.ok(placed.every((id) => !mine.includes(id)));
  });

  test('the partner lists what expires within a horizon, over HTTP', async () => {
    const within = async (days: number) => {
      const r = await fx.http.app.inject({ url: `/v1/governance/workspace?withinDays=${days}`, headers: { authorization: `Bearer ${KEYS.rhea}` } });
      assert.equal(r.statusCode, 200, r.body);
      return (r.json() as { items: Item[] }).items.map((i) => i.id);
    };
    assert.deepEqual(await within(30), []);
    const soon = await within(90);
    assert.ok(placed.every((id) => soon.includes(id)), JSON.stringify(soon));
  });

  test('past its date a deposit is unreadable, then crypto-shredded under a certificate that is its own audit entry', async () => {
    clock = t0 + 91 * DAY;
    assert.equal(await codeOf(op(rhea, 'workspace.get', { id: placed[0]! })), 'NOT_FOUND');
    const before = (await fx.log.search({ action: 'governance.destruction' })).length;
    const r = await op(olivia, 'workspace.expire', { org: 'northwind-research' }) as { destroyed: string[]; certificates: { certificateId: string; digest: string }[] };
    assert.ok(placed.every((id) => r.destroyed.includes(id)), JSON.stringify(r));
    assert.equal(r.certificates.length, 1);
    const logged = (await fx.log.search({ action: 'governance.destruction' })).slice(before);
    assert.equal(logged.length, 1, 'the certificate is its own audit entry');
    const cert = JSON.parse(logged[0]!.entry.reasons[1]!) as { certificateId: string; digest: string; artefacts: { id: string; wrappedKeyDigest: string }[] };
    assert.equal(cert.certificateId, r.certificates[0]!.certificateId);
    assert.equal(cert.digest, r.certificates[0]!.digest);
    assert.ok(placed.every((id) => cert.artefacts.some((a) => a.id === id && /^[0-9a-f]{64}$/.test(a.wrappedKeyDigest))));
    // The data keys are destroyed and the ciphertext deleted: nothing is left to read.
    for (const id of placed) {
      assert.ok(!existsSync(join(fx.wsDir, 'state', 'artefacts', 'blobs', `${id}.ghb`)));
      await assert.rejects(op(rhea, 'workspace.get', { id }), /crypto-shredded/);
    }
  });
});
