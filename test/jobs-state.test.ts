/**
 * The code-to-data stores (jobs, the airlock, the key broker's challenges) on both state
 * backends, each as two "nodes": two drivers on one SQLite file, and two PostgreSQL states on
 * one schema. What one node writes, the other reads; what must happen once happens once
 * across both: a challenge is redeemed by one node only, a replayed evidence is seen by the
 * other node, two reviewers racing on two nodes both count, and a compare-and-set move
 * applies once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactDecrypt } from 'jose';
import { AirlockStore } from '../src/airlock/store.ts';
import { jobBinding } from '../src/attestation/binding.ts';
import { SqlChallengeStore } from '../src/attestation/challenge-store.ts';
import { KeyBroker } from '../src/attestation/key-broker.ts';
import { SampleTee, SampleVerifier } from '../src/attestation/sample.ts';
import { GatehouseError } from '../src/errors.ts';
import { JobStore } from '../src/jobs/store.ts';
import type { CodeBundle } from '../src/jobs/bundle.ts';
import type { SqlDriver } from '../src/sql/driver.ts';
import { SqliteDriver, sqliteDialect } from '../src/sql/sqlite.ts';
import { jobTables } from '../src/sql/tables/jobs.ts';
import { openPostgresState } from '../src/state/backend.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

const MEASUREMENT = '7c'.repeat(48);
const CODE_HASH = 'ab'.repeat(32);
const DATA_KEY = new Uint8Array(32).fill(9);
const BUNDLE = { manifest: { name: 'stays', version: '1.0.0', purpose: 'research', datasets: ['encounters'], inputs: {}, parameters: {}, outputs: {} }, code: 'export function run() { return {}; }', signer: 'k1', signature: 'x' } as unknown as CodeBundle;

interface Pair { a: SqlDriver; b: SqlDriver; close(): Promise<void> }

async function contract(open: () => Promise<Pair>): Promise<void> {
  const nodes = await open();
  try {
    const jobsA = new JobStore(nodes.a), jobsB = new JobStore(nodes.b);
    // Jobs, signers, approvals, runs: written on one node, read on the other.
    assert.equal(await jobsA.addSigner('k1', 'northwind', 'PEM', 'olivia', '2026-12-01T00:00:00.000Z'), true);
    assert.equal(await jobsB.addSigner('k1', 'other-org', 'PEM2', 'ada', '2026-12-01T00:00:01.000Z'), false, 'a key id is registered once, cluster-wide');
    assert.deepEqual(await jobsB.signer('k1'), { org: 'northwind', pem: 'PEM' });
    await jobsA.addJob({ id: 'job_1', codeHash: CODE_HASH, bundle: BUNDLE, submitter: 'rhea', submittedAt: '2026-12-01T00:00:02.000Z' });
    assert.equal((await jobsB.job('job_1'))?.bundle.manifest.name, 'stays');
    await jobsB.approve({ codeHash: CODE_HASH, dataset: 'encounters', purpose: 'research', principal: 'jobs', approver: 'olivia', approvedAt: '2026-12-01T00:00:03.000Z', measurements: [] });
    await jobsA.approve({ codeHash: CODE_HASH, dataset: 'encounters', purpose: 'research', principal: 'jobs', approver: 'oscar', approvedAt: '2026-12-01T00:00:04.000Z', measurements: [MEASUREMENT] });
    assert.deepEqual((await jobsB.approvals(CODE_HASH)).map((x) => [x.approver, x.measurements]), [['oscar', [MEASUREMENT]]], 'a re-approval replaces the earlier one');
    assert.deepEqual(await jobsB.approvedHashes('encounters'), [CODE_HASH]);
    assert.deepEqual(await jobsB.approvedMeasurements('encounters'), [MEASUREMENT]);
    await jobsA.startRun('run_1', 'job_1', '2026-12-01T00:00:05.000Z');
    await jobsB.endRun('run_1', { status: 'completed', error: null, limit: null, logs: ['ok'], outputs: '[]', outputsSha256: 'f'.repeat(64), cpuMs: 1.5, rowsRead: 10 }, '2026-12-01T00:00:06.000Z');
    const run = await jobsA.run('run_1');
    assert.deepEqual([run?.status, run?.logs, run?.cpuMs, run?.rowsRead], ['completed', ['ok'], 1.5, 10]);
    assert.equal((await jobsB.runs('job_1')).length, 1);

    // The airlock: one compare-and-set move wins; two reviewers on two nodes at once both count.
    const airA = new AirlockStore(nodes.a), airB = new AirlockStore(nodes.b);
    await airA.create({ id: 'air_1', jobId: 'job_1', runId: 'run_1', requester: 'rhea', author: 'rhea', outputs: '[]', outputsSha256: 'f'.repeat(64), createdAt: '2026-12-01T00:00:07.000Z' });
    const moves = await Promise.all([airA.move('air_1', 'draft', 'submitted', 't'), airB.move('air_1', 'draft', 'submitted', 't')]);
    assert.deepEqual(moves.sort(), [false, true]);
    assert.equal(await airB.move('air_1', 'submitted', 'in_review', 't', '{"passed":true}'), true);
    const review = (store: AirlockStore, reviewer: string) => store.transaction('air_1', async (tx) => {
      await tx.addReview({ requestId: 'air_1', reviewer, decision: 'approve', reason: 'ok', at: `2026-12-01T00:00:0${reviewer.length}.000Z` });
      const n = (await tx.reviews('air_1')).length;
      if (n >= 2) assert.equal(await tx.move('air_1', 'in_review', 'approved', 't'), true);
      return n;
    });
    assert.deepEqual((await Promise.all([review(airA, 'olivia'), review(airB, 'oscar')])).sort(), [1, 2], 'the second review sees the first, whichever node it ran on');
    assert.equal((await airA.get('air_1'))?.state, 'approved');
    await assert.rejects(review(airB, 'olivia'), 'one review per reviewer');
    assert.equal((await airA.reviews('air_1')).length, 2, 'a refused review changes nothing');

    // The key broker on two nodes: challenge at A, release at B, replay at A and B refused.
    const tee = new SampleTee({ measurement: MEASUREMENT });
    const now = new Date();
    const broker = (sql: SqlDriver, jobs: JobStore) => new KeyBroker({
      verifiers: [new SampleVerifier(tee.platformKey)], mode: 'test', now: () => now, challenges: new SqlChallengeStore(sql),
      approvedMeasurements: (d) => jobs.approvedMeasurements(d), approvedCodeHashes: (d) => jobs.approvedHashes(d), dataKey: async () => DATA_KEY,
    });
    const brokerA = broker(nodes.a, jobsA), brokerB = broker(nodes.b, jobsB);
    const enclave = generateKeyPairSync('x25519');
    const spki = new Uint8Array(enclave.publicKey.export({ format: 'der', type: 'spki' }));
    const evidence = (nonce: string) => tee.attest({ nonce: new Uint8Array(Buffer.from(nonce, 'base64url')), publicKey: spki, userData: jobBinding('job_1', CODE_HASH), issuedAt: now });
    const ch = await brokerA.challenge('job_1', 'sample');
    const ev = evidence(ch.nonce);
    const release = (b: KeyBroker, challengeId: string, e: Uint8Array) => b.release({ challengeId, jobId: 'job_1', codeHash: CODE_HASH, dataset: 'encounters', evidence: e });
    const both = await Promise.allSettled([release(brokerB, ch.challengeId, ev), release(brokerA, ch.challengeId, ev)]);
    assert.equal(both.filter((r) => r.status === 'fulfilled').length, 1, 'a challenge is redeemed once across the cluster');
    const won = both.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ jwe: string }>;
    assert.deepEqual((await compactDecrypt(won.value.jwe, enclave.privateKey)).plaintext, DATA_KEY);
    const lost = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((lost.reason as GatehouseError).detail, 'ATTESTATION_REPLAYED');
    // The same evidence under a fresh challenge from the other node: its nonce is wrong, and its digest is known.
    const ch2 = await brokerB.challenge('job_1', 'sample');
    await assert.rejects(release(brokerA, ch2.challengeId, ev), (e: GatehouseError) => e.detail === 'ATTESTATION_WRONG_NONCE');
    const store = new SqlChallengeStore(nodes.b);
    assert.equal(await store.firstSeen('d'.repeat(64), now.getTime(), 0), true);
    assert.equal(await new SqlChallengeStore(nodes.a).firstSeen('d'.repeat(64), now.getTime(), 0), false, 'a digest seen on one node is a replay on the other');
    assert.equal(await store.take(ch2.challengeId), null, 'the refused release consumed its challenge too');
  } finally {
    await nodes.close();
  }
}

describe('code-to-data state', () => {
  let dir: string;
  let cluster: PgCluster | null = null;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'gh-jobs-state-')); });
  after(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('two nodes on one embedded SQLite file share jobs, the airlock and broker challenges', async () => {
    await contract(async () => {
      const file = join(dir, 'code-to-data.sqlite');
      const open = () => SqliteDriver.openSync(file, { busyTimeoutMs: 5000, schema: jobTables(sqliteDialect()) });
      const a = open(), b = open();
      return { a, b, close: async () => { await a.close(); await b.close(); } };
    });
  });

  test('two nodes on one PostgreSQL state share jobs, the airlock and broker challenges', async () => {
    cluster = await startPostgres();
    const url = cluster.superuserUrl;
    await contract(async () => {
      const a = await openPostgresState({ url, schema: 'jobs_contract' });
      const b = await openPostgresState({ url, schema: 'jobs_contract' });
      return { a: a.driver, b: b.driver, close: async () => { await a.close(); await b.close(); } };
    });
  });
});
