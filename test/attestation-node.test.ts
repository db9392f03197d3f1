/**
 * Test mode is a node setting, never inferred. A node started on the demo workspace, with
 * the sample TEE's platform key known to it, an approved job, an approved measurement, a
 * dataset with a real data key and correctly bound evidence still refuses the sample TEE
 * unless its config says `attestation: { allowSample: true }`: an attacker who can produce
 * software evidence (the demo's platform key is published) gets no key from a production node.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobBinding } from '../src/attestation/binding.ts';
import { demoSampleTee } from '../src/attestation/sample.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { GatehouseError } from '../src/errors.ts';
import { addJobPrincipals, bundleOf, DEPARTMENT_STAYS, JOB_PRINCIPAL, partnerKey } from '../src/jobs/testing.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import type { RequestMeta } from '../src/pipeline/gatehouse.ts';
import { KEYS } from './helpers/workspace.ts';

const MEASUREMENT = '3d'.repeat(48);
const as = (k: string): RequestMeta => ({ credential: k, source: '127.0.0.1', channel: 'test' });
const tee = demoSampleTee(MEASUREMENT);
let dir: string;
let node: GatehouseNode;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-attest-node-'));
  const ws = join(dir, 'ws');
  await createTestDemoWorkspace(ws, { patients: 200, keys: KEYS });
  addJobPrincipals(ws);
  // A demo workspace and the demo's own platform key: everything but the explicit setting.
  node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true, attestation: { allowSample: false, samplePlatformKey: tee.platformKey } });
  await node.gatehouse.ingestDataset({ credential: null, source: '127.0.0.1', channel: 'cli' }, { dataset: 'encounters', source: join(ws, 'data', 'encounters.parquet'), target: join(dir, 'encounters.ghd') });
});
after(async () => {
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a production node refuses sample TEE evidence even from a demo workspace, and audits the refusal', async () => {
  const gh = node.gatehouse;
  const key = partnerKey();
  await gh.addJobSigner(as(KEYS.olivia), { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem });
  const s = await gh.submitJob(as(KEYS.rhea), bundleOf(key, DEPARTMENT_STAYS));
  await gh.approveJob(as(KEYS.olivia), { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL, measurements: [MEASUREMENT] });
  const enclave = generateKeyPairSync('x25519');
  const ch = await gh.attestChallenge(as(KEYS.olivia), { jobId: s.jobId, format: 'sample' });
  const evidence = Buffer.from(tee.attest({
    nonce: new Uint8Array(Buffer.from(ch.nonce, 'base64url')), publicKey: new Uint8Array(enclave.publicKey.export({ format: 'der', type: 'spki' })),
    userData: jobBinding(s.jobId, s.codeHash), issuedAt: new Date(),
  })).toString('base64');
  await assert.rejects(gh.attestRelease(as(KEYS.olivia), { challengeId: ch.challengeId, jobId: s.jobId, dataset: 'encounters', evidence }), (err: unknown) => {
    assert.ok(err instanceof GatehouseError, String(err));
    assert.equal(err.code, 'ATTESTATION_REFUSED');
    assert.equal(err.detail, 'ATTESTATION_SAMPLE_IN_PRODUCTION');
    return true;
  });
  const denied: unknown[] = [];
  for await (const e of node.audit.scan({})) if (e.leaf.entry.action === 'attest.release') denied.push([e.leaf.entry.decision, e.leaf.entry.reasons[0]]);
  assert.deepEqual(denied, [['deny', 'ATTESTATION_SAMPLE_IN_PRODUCTION']]);
});
