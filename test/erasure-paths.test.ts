/**
 * Erasure reaches the ways in that read through the pipeline (issue 23): a code-to-data
 * job's input (src/jobs reads through the façade as the job's principal) and a clean-room
 * member's contribution (src/cleanroom/member-data.ts reads through the member's own
 * pipeline). Before the erasure the subject's rows are read on both; from the next request
 * on they are not, and nothing else changes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addJobPrincipals, bundleOf, JOB_PRINCIPAL, partnerKey } from '../src/jobs/testing.ts';
import { pipelineMemberData } from '../src/cleanroom/member-data.ts';
import { demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';

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
