/**
 * Code to data on two nodes sharing one PostgreSQL state, end to end through the façade: a
 * job submitted at one node is approved at the other, run at the first, its outputs submitted
 * to the airlock at the second, reviewed once at each and released at the first; a key-broker
 * challenge handed out by one node is redeemed at the other, with the dataset key the first
 * node's ingest created, and the same evidence replayed at the first node is refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactDecrypt } from 'jose';
import { jobBinding } from '../src/attestation/binding.ts';
import { SampleTee } from '../src/attestation/sample.ts';
import { DEMO_PASSPHRASE } from '../src/audit/keys.ts';
import { createDemoWorkspace } from '../src/demo/workspace.ts';
import { GatehouseError } from '../src/errors.ts';
import { addJobPrincipals, admitJobPrincipal, bundleOf, DEPARTMENT_STAYS, JOB_KEY, JOB_PRINCIPAL, NADIA_KEY, OSCAR_KEY, partnerKey } from '../src/jobs/testing.ts';
import { decryptFileTo } from '../src/keys/blob.ts';
import { LocalKeyring } from '../src/keys/keyring.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import type { RequestMeta } from '../src/pipeline/gatehouse.ts';
import { KEYS } from './helpers/workspace.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

const MEASUREMENT = '4e'.repeat(48);
const tee = new SampleTee({ measurement: MEASUREMENT });
const as = (k: string): RequestMeta => ({ credential: k, source: '127.0.0.1', channel: 'test' });
let pg: PgCluster;
let dir: string;
const nodes: GatehouseNode[] = [];

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'gh-jobs-cluster-'));
  const ws = join(dir, 'ws');
  await createDemoWorkspace(ws, { patients: 300, keys: KEYS });
  addJobPrincipals(ws, OSCAR_KEY, NADIA_KEY, { jobKey: JOB_KEY });
  // One keyring for the deployment (every node holds the same copy), as in production.
  for (const name of ['a', 'b']) mkdirSync(join(dir, `state-${name}`), { recursive: true });
  (await LocalKeyring.create(join(dir, 'state-a', 'keyring.json'), DEMO_PASSPHRASE)).close();
  copyFileSync(join(dir, 'state-a', 'keyring.json'), join(dir, 'state-b', 'keyring.json'));
  for (const name of ['a', 'b']) {
    nodes.push(await startNode({
      workspaceDir: ws, auditDir: join(dir, 'audit'), engineOptions: { poolSize: 1 }, demo: true,
      state: { kind: 'postgres', url: pg.superuserUrl, maxConnections: 4, dir: join(dir, `state-${name}`) },
      attestation: { allowSample: true, samplePlatformKey: tee.platformKey },
      // The first node seeds the demo's governance in the shared state: Northwind's agreement, under which a release goes into its workspace.
      ...(name === 'a' ? { setup: { demoGovernance: true } } : {}),
    }));
  }
  await admitJobPrincipal(nodes[0]!.gatehouse, KEYS.olivia, new Date());
});
after(async () => {
  for (const n of nodes) await n.close();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a job, its airlock request and a key release move across two nodes sharing PostgreSQL state', async () => {
  const [a, b] = [nodes[0]!.gatehouse, nodes[1]!.gatehouse];
  const key = partnerKey();
  await a.addJobSigner(as(KEYS.olivia), { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem });
  await assert.rejects(b.addJobSigner(as(KEYS.olivia), { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem }), (e: GatehouseError) => e.code === 'CONFLICT');
  const s = await b.submitJob(as(KEYS.rhea), bundleOf(key, DEPARTMENT_STAYS));
  await a.approveJob(as(KEYS.olivia), { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL, measurements: [MEASUREMENT] });
  const run = await b.runJob(as(KEYS.olivia), { jobId: s.jobId, params: { min_count: 10 } });
  const status = await a.jobStatus(as(KEYS.olivia), s.jobId) as { job: { status: string }; runs: { id: string; outputsSha256: string }[] };
  assert.equal(status.job.status, 'completed');
  assert.deepEqual(status.runs.map((r) => [r.id, r.outputsSha256]), [[run.runId, run.outputsSha256]]);

  const sub = await a.airlockSubmit(as(KEYS.rhea), { runId: run.runId });
  assert.equal(sub.state, 'in_review', JSON.stringify(sub.checks.findings));
  await b.airlockReview(as(KEYS.olivia), { id: sub.id, decision: 'approve', reason: 'counts at or above the threshold' });
  assert.equal((await a.airlockReview(as(OSCAR_KEY), { id: sub.id, decision: 'approve', reason: 'checked against the manifest' })).state, 'approved');
  const released = await b.airlockRelease(as(KEYS.rhea), { id: sub.id });
  assert.equal(released.outputsSha256, run.outputsSha256);

  // The dataset key lives in the shared vault: ingested at A, released at B on A's challenge.
  const sealed = join(dir, 'encounters.ghd');
  await a.ingestDataset({ credential: null, source: '127.0.0.1', channel: 'cli' }, { dataset: 'encounters', source: join(dir, 'ws', 'data', 'encounters.parquet'), target: sealed });
  const enclave = generateKeyPairSync('x25519');
  const ch = await a.attestChallenge(as(KEYS.olivia), { jobId: s.jobId, format: 'sample' });
  const evidence = Buffer.from(tee.attest({
    nonce: new Uint8Array(Buffer.from(ch.nonce, 'base64url')), publicKey: new Uint8Array(enclave.publicKey.export({ format: 'der', type: 'spki' })),
    userData: jobBinding(s.jobId, s.codeHash), issuedAt: new Date(),
  })).toString('base64');
  const ok = await b.attestRelease(as(KEYS.olivia), { challengeId: ch.challengeId, jobId: s.jobId, dataset: 'encounters', evidence });
  const { plaintext } = await compactDecrypt(ok.jwe, enclave.privateKey);
  assert.ok((await decryptFileTo(sealed, join(dir, 'plain.duckdb'), Buffer.from(plaintext))).bytes > 0, 'the released key opens the dataset');
  await assert.rejects(a.attestRelease(as(KEYS.olivia), { challengeId: ch.challengeId, jobId: s.jobId, dataset: 'encounters', evidence }),
    (e: GatehouseError) => e.code === 'ATTESTATION_REFUSED' && e.detail === 'ATTESTATION_REPLAYED');
});
