/**
 * Jobs end to end on the demo: a partner signs and submits a bundle, the data owner approves
 * its code hash, the job runs in the sandbox reading through the governed query path as its
 * own principal, and its outputs are held for the airlock. Then the attacks: an unknown or
 * forged signature, a changed byte after approval, self-approval, reads the job principal may
 * not make, a job that blows its limits, a partner reading real-run logs, mock data that
 * would leak a real value.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addJobPrincipals, bundleOf, DEPARTMENT_STAYS, DEPARTMENT_STAYS_CODE, JOB_PRINCIPAL, partnerKey, wasmDepartmentStays, type PartnerKey } from '../src/jobs/testing.ts';
import { signBundle } from '../src/jobs/bundle.ts';
import { runOnMock } from '../src/jobs/offline-mock.ts';
import { GatehouseError } from '../src/errors.ts';
import type { RequestMeta } from '../src/pipeline/gatehouse.ts';
import { demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';

let fx: Fixture;
let key: PartnerKey;
const as = (k: string): RequestMeta => ({ credential: k, source: '127.0.0.1', channel: 'test' });
const rhea = as(KEYS.rhea);
const olivia = as(KEYS.olivia);

async function entries(action: string) {
  const out = [];
  for await (const e of fx.log.scan({})) if (e.leaf.entry.action === action) out.push(e.leaf.entry);
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

async function approved(bundle = bundleOf(key)) {
  const s = await fx.gh.submitJob(rhea, bundle);
  await fx.gh.approveJob(olivia, { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL });
  return s;
}

before(async () => {
  fx = await demoFixture({ patients: 500, edit: (ws) => addJobPrincipals(ws, undefined, undefined, { rowCap: 2000 }) });
  key = partnerKey();
  await fx.gh.addJobSigner(olivia, { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem });
});
after(async () => { await fx.close(); });

describe('a job from submission to held outputs', () => {
  test('runs an approved bundle, reading through the governed path as its own principal, and holds its outputs for the airlock', async () => {
    const s = await approved();
    assert.match(s.codeHash, /^[0-9a-f]{64}$/);
    const progress: string[] = [];
    const r = await fx.gh.runJob(rhea, { jobId: s.jobId, params: { min_count: 1 } }, (p) => { progress.push(p.phase); });
    assert.equal(r.codeHash, s.codeHash);
    assert.deepEqual(r.outputs.map((o) => o.name), ['stays_by_department']);
    assert.ok(r.outputs[0]!.rows > 0);
    assert.ok(!('value' in r) && !JSON.stringify(r).includes('total_days":'), 'the run answer carries no output values');
    assert.ok(progress.includes('input') && progress.includes('sandbox'), 'progress was reported while the job ran');
    const reads = (await entries('query')).filter((e) => e.channel === 'job');
    assert.ok(reads.length >= 1);
    assert.ok(fx.log.pseudonymsOf(JOB_PRINCIPAL).includes(reads.at(-1)!.principal!), 'the input was decided and audited as the job principal');
    assert.equal(reads.at(-1)!.decision, 'allow');
    const runs = await entries('job.run');
    assert.equal(runs.at(-1)!.resultDigest, r.outputsSha256);
    const st = await fx.gh.jobStatus(rhea, s.jobId) as { job: { status: string; code?: string }; runs: { status: string }[] };
    assert.equal(st.job.status, 'completed');
    assert.equal(st.job.code, undefined, 'the partner status view does not echo code back');
  });

  test('a WebAssembly bundle goes the same way: approved by hash, governed reads, outputs held', async () => {
    const s = await approved(signBundle({ ...DEPARTMENT_STAYS, version: '1.1.0', runtime: 'wasm' }, wasmDepartmentStays(), key.keyId, key.privateKey));
    const r = await fx.gh.runJob(olivia, { jobId: s.jobId });
    assert.ok(r.rowsRead > 0, 'the module read its input through the bridge');
    assert.deepEqual(r.outputs, [{ name: 'stays_by_department', kind: 'table', rows: 0 }]);
  });

  test('the run-scoped key of the job principal is revoked when the run ends', async () => {
    const s = await approved(bundleOf(key, { ...DEPARTMENT_STAYS, version: '1.0.1' }));
    await fx.gh.runJob(olivia, { jobId: s.jobId, params: { min_count: 1 } });
    const keys = await fx.gh.adminListKeys(olivia, JOB_PRINCIPAL) as { keys: { revokedAt?: string | null; revoked?: boolean }[] };
    assert.ok(keys.keys.length >= 1);
    assert.ok(keys.keys.every((k) => Boolean(k.revokedAt ?? k.revoked)), JSON.stringify(keys.keys));
  });
});

describe('approval by code hash', () => {
  test('an unapproved job does not run, and the refusal is audited', async () => {
    const s = await fx.gh.submitJob(rhea, bundleOf(key, { ...DEPARTMENT_STAYS, version: '2.0.0' }));
    await code(fx.gh.runJob(olivia, { jobId: s.jobId }), 'POLICY_DENIED', 'JOB_NOT_APPROVED');
    const last = (await entries('job.run')).at(-1)!;
    assert.equal(last.decision, 'deny');
  });

  test('a changed byte is a new code hash that needs its own approval', async () => {
    const s = await approved(bundleOf(key, { ...DEPARTMENT_STAYS, version: '3.0.0' }));
    const changed = signBundle({ ...DEPARTMENT_STAYS, version: '3.0.0' }, DEPARTMENT_STAYS_CODE.replace('>= params.min_count', '>= 0'), key.keyId, key.privateKey);
    const s2 = await fx.gh.submitJob(rhea, changed);
    assert.notEqual(s2.codeHash, s.codeHash);
    await code(fx.gh.runJob(olivia, { jobId: s2.jobId }), 'POLICY_DENIED', 'JOB_NOT_APPROVED');
  });

  test('the owner must approve the hash the job has, and nobody approves their own job', async () => {
    const s = await fx.gh.submitJob(rhea, bundleOf(key, { ...DEPARTMENT_STAYS, version: '4.0.0' }));
    await code(fx.gh.approveJob(olivia, { jobId: s.jobId, codeHash: '0'.repeat(64), datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL }), 'CONFLICT', 'JOB_HASH_MISMATCH');
    await code(fx.gh.approveJob(rhea, { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL }), 'POLICY_DENIED');
    const own = await fx.gh.submitJob(olivia, bundleOf(key, { ...DEPARTMENT_STAYS, version: '4.0.1' })).catch((e: unknown) => e);
    assert.ok(own instanceof GatehouseError, 'a bundle signed by another organisation\'s key is refused');
  });
});

describe('bundle signatures', () => {
  test('a bundle changed after signing, or signed by an unregistered key, is refused', async () => {
    const b = bundleOf(key, { ...DEPARTMENT_STAYS, version: '5.0.0' });
    await code(fx.gh.submitJob(rhea, { ...b, code: `${b.code}\n// one more line` }), 'POLICY_DENIED', 'JOB_BAD_SIGNATURE');
    await code(fx.gh.submitJob(rhea, { ...b, manifest: { ...b.manifest, limits: { cpuMs: 60_000 } } }), 'POLICY_DENIED', 'JOB_BAD_SIGNATURE');
    const stranger = partnerKey('stranger');
    await code(fx.gh.submitJob(rhea, bundleOf(stranger)), 'POLICY_DENIED', 'JOB_UNKNOWN_SIGNER');
  });

  test('a malformed manifest is refused with a clear error', async () => {
    await code(fx.gh.submitJob(rhea, { manifest: { name: 'x' }, code: 'export function run() {}', signer: key.keyId, signature: 'AA' }), 'REQUEST_INVALID');
  });
});

describe('governed reads and limits', () => {
  test('a job reads masked values, and at most the row cap of its principal\'s obligations', async () => {
    const m = { ...DEPARTMENT_STAYS, version: '5.5.0', datasets: ['encounters', 'patients'], inputs: { stays: { dataset: 'patients', sql: 'SELECT ssn, name FROM patients' }, all: { dataset: 'encounters', sql: 'SELECT encounter_id FROM encounters' } } };
    const peek = 'export function run(i, p, job) { let k = 0; for (const r of i.stays) { if (k++ < 5) job.log(r.ssn + "|" + r.name); } job.log("encounters " + i.all.toArray().length); return { stays_by_department: [] }; }';
    const s = await fx.gh.submitJob(rhea, signBundle(m, peek, key.keyId, key.privateKey));
    await fx.gh.approveJob(olivia, { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters', 'patients'], purpose: 'research', principal: JOB_PRINCIPAL });
    const r = await fx.gh.runJob(olivia, { jobId: s.jobId });
    const { logs } = await fx.gh.jobLogs(olivia, r.runId);
    const people = logs.filter((l) => l.includes('|'));
    assert.equal(people.length, 5);
    for (const l of people) {
      const [ssn, name] = l.split('|');
      assert.match(ssn!, /^\*+\d{4}$/, `the SSN arrives through its last4 mask: ${ssn}`);
      assert.doesNotMatch(name!, /^[A-Z][a-z]+ [A-Z][a-z]+$/, `the name arrives redacted: ${name}`);
    }
    const total = await fx.query('ada', 'SELECT count(*) FROM encounters', 'operations');
    assert.ok(Number(total.rows[0]![0]) > 2000, 'the table is larger than the cap');
    assert.ok(logs.includes('encounters 2000'), `the input stopped at the row cap: ${logs.at(-1)}`);
  });

  test('a job whose input reaches beyond its principal\'s policy fails and keeps nothing', async () => {
    const m = { ...DEPARTMENT_STAYS, version: '6.0.0', datasets: ['encounters', 'claims'], inputs: { stays: { dataset: 'claims', sql: 'SELECT payer, amount_paid FROM claims' } } };
    const s = await fx.gh.submitJob(rhea, bundleOf(key, m));
    await fx.gh.approveJob(olivia, { jobId: s.jobId, codeHash: s.codeHash, datasets: ['encounters', 'claims'], purpose: 'research', principal: JOB_PRINCIPAL });
    await code(fx.gh.runJob(olivia, { jobId: s.jobId }), 'JOB_FAILED', 'JOB_INPUT_REFUSED');
    const denied = (await entries('query')).filter((e) => e.channel === 'job' && e.decision === 'deny');
    assert.ok(denied.some((e) => fx.log.pseudonymsOf(JOB_PRINCIPAL).includes(e.principal!)), 'the refused read is audited as the job principal');
  });

  test('a job that exhausts its CPU budget fails with a clear error and holds no outputs', async () => {
    const spin = 'export function run() { for (;;) {} }';
    const s = await approved(signBundle({ ...DEPARTMENT_STAYS, version: '7.0.0', limits: { cpuMs: 200 } }, spin, key.keyId, key.privateKey));
    const e = await code(fx.gh.runJob(olivia, { jobId: s.jobId }), 'JOB_LIMIT_EXCEEDED', 'JOB_LIMIT_CPU');
    assert.match(e.message, /nothing was released/);
    const st = await fx.gh.jobStatus(olivia, s.jobId) as { runs: { id: string; status: string; outputsSha256: string | null }[] };
    assert.equal(st.runs.at(-1)!.status, 'failed');
    assert.equal(st.runs.at(-1)!.outputsSha256, null);
    await code(fx.gh.airlockSubmit(olivia, { runId: st.runs.at(-1)!.id }), 'CONFLICT', 'AIRLOCK_NO_OUTPUTS');
  });

  test('outputs that differ from the manifest fail the run', async () => {
    const s = await approved(signBundle({ ...DEPARTMENT_STAYS, version: '8.0.0' }, 'export function run(i) { return { stays_by_department: i.stays.toArray() }; }', key.keyId, key.privateKey));
    await code(fx.gh.runJob(olivia, { jobId: s.jobId }), 'JOB_FAILED', 'JOB_OUTPUT_MISMATCH');
  });

  test('only data owners read the logs of a real run', async () => {
    const logging = 'export function run(i, p, job) { for (const r of i.stays) job.log(r.department); return { stays_by_department: [] }; }';
    const s = await approved(signBundle({ ...DEPARTMENT_STAYS, version: '9.0.0' }, logging, key.keyId, key.privateKey));
    const r = await fx.gh.runJob(olivia, { jobId: s.jobId });
    await code(fx.gh.jobLogs(rhea, r.runId), 'POLICY_DENIED');
    const logs = await fx.gh.jobLogs(olivia, r.runId);
    assert.ok(logs.logs.length > 0);
  });
});

describe('mock data', () => {
  test('a partner develops against mock rows of the same columns that hold no real value', async () => {
    const real = await fx.query('ada', 'SELECT DISTINCT department FROM encounters', 'research');
    const realDepartments = new Set(real.rows.map((r) => String(r[0])));
    const m = await fx.gh.mockJob(rhea, { manifest: DEPARTMENT_STAYS, code: DEPARTMENT_STAYS_CODE, params: { min_count: 1 }, rows: 300 });
    assert.equal(m.ok, true);
    if (!m.ok) return;
    assert.equal(m.shapeError, null);
    const out = (m.output as { stays_by_department: { department: string; encounters: number }[] }).stays_by_department;
    assert.equal(out.reduce((a, r) => a + r.encounters, 0), 300);
    for (const r of out) {
      assert.match(r.department, /^department_\d$/);
      assert.ok(!realDepartments.has(r.department), 'a mock category is never a real value');
    }
    assert.deepEqual(Object.keys(m.inputs.stays![0]!).sort(), ['department', 'length_of_stay_days']);
    const again = await fx.gh.mockJob(rhea, { manifest: DEPARTMENT_STAYS, code: DEPARTMENT_STAYS_CODE, params: { min_count: 1 }, rows: 300 });
    assert.deepEqual(again.ok && again.output, m.output, 'the same seed gives the same mock');
  });

  test('a data owner publishes mock data from the catalog declaration, and a partner runs the job on it offline', async () => {
    await code(fx.gh.publishMock(rhea, { datasets: ['encounters'] }), 'POLICY_DENIED');
    const mock = await fx.gh.publishMock(olivia, { datasets: ['encounters'], rows: 400 });
    const real = await fx.query('ada', 'SELECT DISTINCT diagnosis_code FROM encounters', 'research');
    const realCodes = new Set(real.rows.map((r) => String(r[0])));
    const enc = mock.datasets.encounters!;
    assert.equal(enc.rows.length, 400);
    assert.ok(enc.rows.every((r) => !realCodes.has(String(r.diagnosis_code))), 'no real diagnosis code in the mock');
    assert.ok(enc.rows.every((r) => typeof r.cost === 'number' && (r.cost as number) >= 0 && (r.cost as number) <= 40_000), 'numbers follow the declared bounds');
    const r = await runOnMock(JSON.parse(JSON.stringify(DEPARTMENT_STAYS)), DEPARTMENT_STAYS_CODE, JSON.parse(JSON.stringify(mock)), { min_count: 1 });
    assert.equal(r.ok, true);
    if (r.ok) assert.equal(r.shapeError, null);
  });
});

