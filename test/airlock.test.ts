/**
 * The airlock on the demo: a job's held outputs go through draft → submitted → automatic
 * checks → in review → approved → released, each transition its own audit entry. Attacks:
 * illegal transitions, self-review (requester and job author), one reviewer counted twice,
 * outputs that fail disclosure control or DLP, and outputs changed after submission.
 * Also the attestation operations: each refusal leaves a denied audit entry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { compactDecrypt } from 'jose';
import { addJobPrincipals, admitJobPrincipal, bundleOf, DEPARTMENT_STAYS, JOB_KEY, JOB_PRINCIPAL, NADIA_KEY, OSCAR_KEY, partnerKey, type PartnerKey } from '../src/jobs/testing.ts';
import { signBundle, type Manifest } from '../src/jobs/bundle.ts';
import { SampleTee } from '../src/attestation/sample.ts';
import { jobBinding } from '../src/attestation/binding.ts';
import { decryptFileTo } from '../src/keys/blob.ts';
import { GatehouseError } from '../src/errors.ts';
import type { RequestMeta } from '../src/pipeline/gatehouse.ts';
import { demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';

let fx: Fixture;
let key: PartnerKey;
let version = 0;
let sealed: { format: string };
const as = (k: string): RequestMeta => ({ credential: k, source: '127.0.0.1', channel: 'test' });
const rhea = as(KEYS.rhea);
const olivia = as(KEYS.olivia);
const oscar = as(OSCAR_KEY);
const MEASUREMENT = '5a'.repeat(48);
const tee = new SampleTee({ measurement: MEASUREMENT });

async function actions(prefix: string) {
  const out = [];
  for await (const e of fx.log.scan({})) if (e.leaf.entry.action.startsWith(prefix)) out.push(e.leaf.entry);
  return out;
}

async function code(p: Promise<unknown>, expected: string, detail?: string): Promise<GatehouseError> {
  try { await p; } catch (err) {
    assert.ok(err instanceof GatehouseError, String(err));
    assert.equal(err.code, expected, err.message);
    if (detail) assert.equal(err.detail, detail);
    return err;
  }
  assert.fail(`expected ${expected}`);
}

/** Submits, approves and runs a job; returns its run id. */
async function runOf(code?: string, manifest: Partial<Manifest> = {}) {
  const m = { ...DEPARTMENT_STAYS, ...manifest, version: `10.${version++}.0` };
  const s = await fx.gh.submitJob(rhea, code ? signBundle(m, code, key.keyId, key.privateKey) : bundleOf(key, m));
  await fx.gh.approveJob(olivia, { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL, measurements: [MEASUREMENT] });
  const r = await fx.gh.runJob(olivia, { jobId: s.jobId, params: { min_count: 10 } });
  return { ...r, jobId: s.jobId };
}

before(async () => {
  // The demo's governance records Northwind's agreement, under which a release goes into its workspace.
  fx = await demoFixture({ patients: 500, governance: true, edit: (ws) => addJobPrincipals(ws, OSCAR_KEY, NADIA_KEY, { jobKey: JOB_KEY }) });
  await admitJobPrincipal(fx.gh, KEYS.olivia, new Date());
  // A test node, said explicitly: the demo workspace alone does not admit the sample TEE.
  fx.gh.configureJobs({ allowSample: true, samplePlatformKey: tee.platformKey });
  // Key release hands out a dataset's own data key: store encounters encrypted (a key in the vault).
  sealed = await fx.gh.ingestDataset({ credential: null, source: '127.0.0.1', channel: 'cli' }, { dataset: 'encounters', source: join(fx.wsDir, 'data', 'encounters.parquet'), target: join(fx.dir, 'sealed', 'encounters.ghd') });
  key = partnerKey();
  await fx.gh.addJobSigner(olivia, { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem });
});
after(async () => { await fx.close(); });

describe('the airlock', () => {
  test('releases outputs only after automatic checks and two distinct reviewers, auditing every transition', async () => {
    const run = await runOf();
    const before = (await actions('airlock.')).length;
    const sub = await fx.gh.airlockSubmit(rhea, { runId: run.runId });
    assert.equal(sub.state, 'in_review', JSON.stringify(sub.checks.findings));
    assert.equal(sub.outputsSha256, run.outputsSha256);
    await code(fx.gh.airlockRelease(rhea, { id: sub.id }), 'CONFLICT', 'AIRLOCK_ILLEGAL_TRANSITION');
    assert.equal((await fx.gh.airlockReview(olivia, { id: sub.id, decision: 'approve', reason: 'counts above threshold' })).state, 'in_review');
    await code(fx.gh.airlockReview(olivia, { id: sub.id, decision: 'approve', reason: 'again' }), 'CONFLICT', 'AIRLOCK_SAME_REVIEWER');
    assert.equal((await fx.gh.airlockReview(oscar, { id: sub.id, decision: 'approve', reason: 'checked' })).state, 'approved');
    const rel = await fx.gh.airlockRelease(rhea, { id: sub.id });
    assert.equal(rel.state, 'released');
    assert.equal(rel.outputs[0]!.name, 'stays_by_department');
    assert.ok(rel.outputs[0]!.rows.length > 0);
    await code(fx.gh.airlockRelease(rhea, { id: sub.id }), 'CONFLICT', 'AIRLOCK_ILLEGAL_TRANSITION');
    await code(fx.gh.airlockReview(oscar, { id: sub.id, decision: 'reject', reason: 'late' }), 'CONFLICT');
    const trail = (await actions('airlock.')).slice(before);
    assert.deepEqual(trail.map((e) => `${e.action}:${e.decision}`), [
      'airlock.submit:allow', 'airlock.release:deny', 'airlock.review:allow', 'airlock.review:deny', 'airlock.review:allow', 'airlock.release:allow', 'airlock.release:deny', 'airlock.review:deny',
    ]);
    assert.ok(trail.filter((e) => e.decision === 'allow').every((e) => e.resultDigest === run.outputsSha256), 'each transition names the pinned outputs');
  });

  test('nobody reviews their own request or outputs of their own job', async () => {
    const run = await runOf();
    const sub = await fx.gh.airlockSubmit(olivia, { runId: run.runId });
    await code(fx.gh.airlockReview(olivia, { id: sub.id, decision: 'approve', reason: 'mine' }), 'POLICY_DENIED', 'AIRLOCK_SELF_REVIEW');
    // rhea wrote the job: even as a reviewer she could not review it (and she is not one).
    await code(fx.gh.airlockReview(rhea, { id: sub.id, decision: 'approve', reason: 'mine' }), 'POLICY_DENIED');
  });

  test('one rejection ends the request', async () => {
    const run = await runOf();
    const sub = await fx.gh.airlockSubmit(rhea, { runId: run.runId });
    assert.equal((await fx.gh.airlockReview(oscar, { id: sub.id, decision: 'reject', reason: 'not what was approved' })).state, 'rejected');
    await code(fx.gh.airlockReview(olivia, { id: sub.id, decision: 'approve', reason: 'x' }), 'CONFLICT', 'AIRLOCK_ILLEGAL_TRANSITION');
  });

  test('outputs with small counts are blocked by the automatic checks before anyone reviews them', async () => {
    const small = 'export function run(i) { return { stays_by_department: [{ department: "A", encounters: 3, total_days: 12 }, { department: "B", encounters: 40, total_days: 200 }] }; }';
    const run = await runOf(small);
    const sub = await fx.gh.airlockSubmit(rhea, { runId: run.runId });
    assert.equal(sub.state, 'blocked');
    assert.ok(sub.checks.findings.some((f) => f.check === 'small-count' && f.detail.startsWith('row 0')));
    assert.ok(!JSON.stringify(sub.checks.findings).includes('"A"'), 'findings name rows and columns, not values');
    await code(fx.gh.airlockReview(oscar, { id: sub.id, decision: 'approve', reason: 'x' }), 'CONFLICT');
  });

  test('outputs carrying personal data are blocked by DLP', async () => {
    const leak = 'export function run(i) { return { stays_by_department: [{ department: "contact jane.doe@example.com", encounters: 40, total_days: 200 }] }; }';
    const run = await runOf(leak);
    const sub = await fx.gh.airlockSubmit(rhea, { runId: run.runId });
    assert.equal(sub.state, 'blocked');
    assert.ok(sub.checks.findings.some((f) => f.check === 'dlp'));
  });

  test('outputs changed after submission are never released', async () => {
    const run = await runOf();
    const sub = await fx.gh.airlockSubmit(rhea, { runId: run.runId });
    await fx.gh.airlockReview(olivia, { id: sub.id, decision: 'approve', reason: 'ok' });
    await fx.gh.airlockReview(oscar, { id: sub.id, decision: 'approve', reason: 'ok' });
    const db = new DatabaseSync(join(fx.wsDir, 'state', 'code-to-data.sqlite'));
    const forged = JSON.stringify([{ name: 'stays_by_department', kind: 'table', columns: ['department', 'encounters', 'total_days'], rows: [['all', 1, 1]], value: null }]);
    db.prepare('UPDATE airlock_requests SET outputs = ? WHERE id = ?').run(forged, sub.id);
    db.close();
    await code(fx.gh.airlockRelease(rhea, { id: sub.id }), 'CONFLICT', 'AIRLOCK_OUTPUT_CHANGED');
    const list = await fx.gh.airlockList(olivia);
    assert.equal(list.requests.find((r) => r.id === sub.id)!.state, 'blocked');
  });
});

describe('key release through the node', () => {
  test('an attested, approved job receives its dataset key; a replay, a debug enclave and a wrong nonce are refused and audited', async () => {
    const run = await runOf();
    const job = await fx.gh.jobStatus(olivia, run.jobId) as { job: { codeHash: string } };
    const enclave = generateKeyPairSync('x25519');
    const spki = new Uint8Array(enclave.publicKey.export({ format: 'der', type: 'spki' }));
    const evidence = (debug: boolean, nonce: string) => Buffer.from(tee.attest({ nonce: new Uint8Array(Buffer.from(nonce, 'base64url')), publicKey: spki, userData: jobBinding(run.jobId, job.job.codeHash), issuedAt: new Date(), debug })).toString('base64');

    const ch = await fx.gh.attestChallenge(olivia, { jobId: run.jobId, format: 'sample' });
    const ev = evidence(false, ch.nonce);
    const ok = await fx.gh.attestRelease(olivia, { challengeId: ch.challengeId, jobId: run.jobId, dataset: 'encounters', evidence: ev });
    const { plaintext } = await compactDecrypt(ok.jwe, enclave.privateKey);
    assert.equal(plaintext.length, 32);
    // It is the dataset's real key: it opens the file the vault's key sealed (a wrong key fails the AES-GCM tag).
    assert.equal(sealed.format, 'sealed-duckdb');
    const opened = await decryptFileTo(join(fx.dir, 'sealed', 'encounters.ghd'), join(fx.dir, 'sealed', 'plain.duckdb'), Buffer.from(plaintext));
    assert.ok(opened.bytes > 0);
    await assert.rejects(decryptFileTo(join(fx.dir, 'sealed', 'encounters.ghd'), join(fx.dir, 'sealed', 'wrong.duckdb'), Buffer.alloc(32, 1)));

    await code(fx.gh.attestRelease(olivia, { challengeId: ch.challengeId, jobId: run.jobId, dataset: 'encounters', evidence: ev }), 'ATTESTATION_REFUSED', 'ATTESTATION_REPLAYED');
    const ch2 = await fx.gh.attestChallenge(olivia, { jobId: run.jobId, format: 'sample' });
    await code(fx.gh.attestRelease(olivia, { challengeId: ch2.challengeId, jobId: run.jobId, dataset: 'encounters', evidence: evidence(true, ch2.nonce) }), 'ATTESTATION_REFUSED');
    const ch3 = await fx.gh.attestChallenge(olivia, { jobId: run.jobId, format: 'sample' });
    await code(fx.gh.attestRelease(olivia, { challengeId: ch3.challengeId, jobId: run.jobId, dataset: 'encounters', evidence: evidence(false, ch2.nonce) }), 'ATTESTATION_REFUSED', 'ATTESTATION_WRONG_NONCE');

    const releases = (await actions('attest.release')).slice(-4);
    assert.deepEqual(releases.map((e) => e.decision), ['allow', 'deny', 'deny', 'deny']);
    assert.deepEqual(releases.slice(1).map((e) => e.errorCode), ['ATTESTATION_REFUSED', 'ATTESTATION_REFUSED', 'ATTESTATION_REFUSED']);
    assert.equal(releases[1]!.reasons[0], 'ATTESTATION_REPLAYED');
    assert.equal(releases[2]!.reasons[0], 'ATTESTATION_DEBUG_MODE');
    assert.ok(releases[2]!.reasons.some((r) => /debug mode/.test(r)), JSON.stringify(releases[2]!.reasons));
    assert.equal(releases[3]!.reasons[0], 'ATTESTATION_WRONG_NONCE');
    assert.ok(!JSON.stringify(releases).includes(ch.nonce), 'no nonce or key material in the audit log');
  });
});
