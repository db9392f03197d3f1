/**
 * Erasure reaches the ways in that read through the pipeline (issue 23): a code-to-data
 * job's input (src/jobs reads through the façade as the job's principal) and a clean-room
 * member's contribution (src/cleanroom/member-data.ts reads through the member's own
 * pipeline), and a federated-learning participant's training read. Before the erasure the
 * subject's rows are read on each; from the next request (or training round) on they are
 * not, and nothing else changes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addJobPrincipals, bundleOf, JOB_PRINCIPAL, partnerKey } from '../src/jobs/testing.ts';
import { pipelineMemberData } from '../src/cleanroom/member-data.ts';
import { demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import type { PeerPin } from '../src/federation/index.ts';
import { FlParticipantRole } from '../src/fl/node/participant.ts';
import type { JobSpec } from '../src/fl/node/job.ts';
import { BANK_KEYS, createBanks, type BankNode } from '../src/fl/node/scenario.ts';
import { FRAUD_FEATURES } from '../src/fl/models/synthetic.ts';
import { DEFAULTS, modelOf } from '../src/fl/training/config.ts';

const as = (k: string) => ({ credential: k, source: '127.0.0.1', channel: 'test' });

describe('erasure on the job and clean-room paths', () => {
  let fx: Fixture;
  let subject: string;
  let subjectEncounters: number;
  let jobId: string;
  const runJob = async () => (await fx.gh.runJob(as(KEYS.olivia), { jobId, params: { min_count: 1 } })).rowsRead;
  const contribution = () => pipelineMemberData(fx.gh, KEYS.ada).read('encounters', ['patient_id', 'department'], 'operations', { collaborationId: 'collab-test', requestId: 'req-test' });

  before(async () => {
    fx = await demoFixture({ patients: 200, edit: (ws) => addJobPrincipals(ws) });
    const key = partnerKey();
    await fx.gh.addJobSigner(as(KEYS.olivia), { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem });
    const s = await fx.gh.submitJob(as(KEYS.rhea), bundleOf(key));
    await fx.gh.approveJob(as(KEYS.olivia), { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL });
    jobId = s.jobId;
    const top = await fx.query('ada', 'SELECT patient_id, count(*) AS n FROM encounters GROUP BY patient_id ORDER BY n DESC, patient_id LIMIT 1');
    subject = String(top.rows[0]![0]);
    subjectEncounters = Number(top.rows[0]![1]);
    assert.ok(subjectEncounters > 0);
  });
  after(async () => { await fx?.close(); });

  test('a job\'s input and a clean-room contribution lose exactly the subject\'s rows from the next request on', async () => {
    const jobBefore = await runJob();
    const roomBefore = await contribution();
    const idx = roomBefore.columns.indexOf('patient_id');
    assert.equal(roomBefore.rows.filter((r) => String(r[idx]) === subject).length, subjectEncounters, 'the subject is there before');

    await fx.gh.recordErasure(as(KEYS.olivia), { unit: 'patient_id', value: subject });

    assert.equal(await runJob(), jobBefore - subjectEncounters, 'the job read every row but the subject\'s');
    const roomAfter = await contribution();
    assert.equal(roomAfter.rows.filter((r) => String(r[idx]) === subject).length, 0);
    assert.equal(roomAfter.rows.length, roomBefore.rows.length - subjectEncounters);
    const reads = [];
    for await (const e of fx.log.scan({})) if (e.leaf.entry.channel === 'job' && e.leaf.entry.action === 'query') reads.push(e.leaf.entry);
    assert.ok(reads.at(-1)!.obligations.includes('erasure:encounters'), 'the job\'s read is audited with the erasure applied');
  });
});

/**
 * The federated-learning read (src/fl/node/participant.ts) is a governed query on the
 * participant's own node, re-run at every training round. A bank's customer who asks to be
 * erased between two rounds is out of the very next round's training data, and the read's
 * audit entry says so. The coordinator here is the attacker's seat in test/fl-participant.test.ts:
 * it calls the participant's node handler as a pinned peer would.
 */
describe('erasure on the federated-learning read', () => {
  let dir: string;
  let node: GatehouseNode;
  let role: FlParticipantRole;
  let banks: BankNode[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-erasure-fl-'));
    banks = await createBanks(dir, { rows: 200 });
    const bank = banks[0]!;
    node = await startNode({ workspaceDir: bank.wsDir, auditDir: join(bank.wsDir, 'audit'), demo: true, engineOptions: { poolSize: 1 } });
    const pins = new Map(banks.map((b) => [b.nodeId, createPublicKey(b.identity.privateKey)]));
    role = new FlParticipantRole(node.gatehouse, bank.nodeId, bank.identity.privateKey, () => pins);
    role.join({ job: 'job-erasure', coordinator: 'bank-c', dataset: 'transactions', label: 'is_fraud', credential: BANK_KEYS['bank-a']!.operator, budgetSubject: 'org:x', holdout: 0.25, requireDp: false });
  });
  after(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a customer erased between two rounds is not read by the next round', async () => {
    const coordinator: PeerPin = { nodeId: 'bank-c', region: 'us-east', jurisdiction: 'US', url: 'https://127.0.0.1:1', publicKey: banks[2]!.identity.publicKey, key: createPublicKey(banks[2]!.identity.privateKey) };
    const spec: JobSpec = {
      job: 'job-erasure', coordinator: 'bank-c', participants: ['bank-a', 'bank-b'], agreement: 'agr-x',
      config: { ...DEFAULTS, features: [...FRAUD_FEATURES], rounds: 5, batchSize: 100_000, aggregation: { mode: 'secagg', degree: 1, threshold: 2 } },
    };
    const begin = (round: number) => role.handlers()['fl-begin']!({ operation: 'fl-begin', peer: coordinator, requestId: `r${round}`, body: { spec, phase: 'train', round, session: `erasure-${round}-${randomUUID()}`, weights: [...modelOf(spec.config).init(1)] } });
    const trainingReads = async () => {
      const out = [];
      for await (const e of node.audit.scan({})) if (e.leaf.entry.action === 'query' && e.leaf.entry.purpose === 'model-training') out.push(e.leaf.entry);
      return out;
    };

    await begin(1);
    const [first] = await trainingReads();
    assert.equal(first!.rowsReturned, 200, 'round 1 reads every transaction');
    assert.ok(!first!.obligations.some((o) => o.startsWith('erasure:')));

    // Account 0000003 of bank-a (account numbers are the bank's index then the row number).
    await node.gatehouse.recordErasure({ credential: BANK_KEYS['bank-a']!.admin, source: '127.0.0.1', channel: 'test' }, { unit: 'account_no', value: '3' });
    await begin(2);
    const reads = await trainingReads();
    assert.equal(reads.length, 2);
    assert.equal(reads[1]!.rowsReturned, 199, 'round 2 reads every transaction but the erased customer\'s');
    assert.ok(reads[1]!.obligations.includes('erasure:transactions'), 'the read is audited with the erasure applied');
  });
});
