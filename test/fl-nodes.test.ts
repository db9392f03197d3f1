/**
 * Scenario 2 step 3: three banks, each its own Gatehouse node (a real process on loopback
 * ports, mutual TLS with pinned keys), train a fraud model with secure aggregation and the
 * distributed discrete Gaussian. Each bank reads its features through its own policy and
 * audit log; a column its policy does not release cannot be trained on; a node that did not
 * join releases nothing; budgets stop training; terminating the agreement shreds the model.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { BANK_KEYS, createBanks, type BankNode } from '../src/fl/node/scenario.ts';
import { FRAUD_FEATURES } from '../src/fl/models/synthetic.ts';

const PROCESS = new URL('../src/node/fl-process.ts', import.meta.url).pathname;
interface Running { readonly child: ChildProcess; readonly http: number }

function startProcess(wsDir: string): Promise<Running> {
  const child = spawn(process.execPath, [PROCESS, wsDir, '--demo'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const info = JSON.parse(line) as { http?: number; error?: { message: string } };
      if (info.error) reject(new Error(info.error.message)); else resolve({ child, http: info.http! });
    });
    child.once('exit', (code) => reject(new Error(`node exited with ${code}`)));
  });
}

let dir: string;
let banks: BankNode[];
let nodes: Running[];
let agreement: string;

async function call(i: number, who: 'operator' | 'admin' | 'auditor', method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://127.0.0.1:${nodes[i]!.http}${path}`, {
    method, headers: { authorization: `Bearer ${BANK_KEYS[banks[i]!.nodeId]![who]}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, body: await r.json() };
}
const entries = async (i: number) => ((await call(i, 'auditor', 'GET', '/v1/audit/entries?limit=5000')).body.entries as { entry: { action: string; decision: string; purpose: string | null; reasons: string[]; datasets: string[]; errorCode: string | null; obligations: string[] } }[]).map((e) => e.entry);
const join3 = async (job: string, budget: { epsilon: number; delta: number } | null, who = [0, 1, 2]) => {
  for (const i of who) assert.equal((await call(i, 'operator', 'POST', '/v1/fl/participations', { job, coordinator: 'bank-a', dataset: 'transactions', label: 'is_fraud', ...(budget ? { budget } : {}) })).status, 200);
};
async function finished(job: string, coordinator = 0): Promise<any> {
  for (;;) {
    const s = await call(coordinator, 'operator', 'GET', `/v1/fl/jobs/${job}`);
    assert.equal(s.status, 200);
    if (s.body.state !== 'running') return s.body;
    await new Promise((r) => setTimeout(r, 200));
  }
}
const config = (over: Record<string, unknown> = {}) => ({ features: [...FRAUD_FEATURES], rounds: 3, batchSize: 100_000, learningRate: 0.5, aggregation: { mode: 'secagg', degree: 2, threshold: 2 }, ...over });

describe('federated learning across three bank nodes', { timeout: 120_000 }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-fl-'));
    banks = await createBanks(dir, { rows: 300 });
    nodes = await Promise.all(banks.map((b) => startProcess(b.wsDir)));
    assert.equal((await call(0, 'admin', 'POST', '/v1/governance/vendors', { name: 'fraud-consortium' })).status, 200);
    const a = await call(0, 'admin', 'POST', '/v1/governance/agreements', { kind: 'DPA', title: 'Fraud model consortium', partner: 'fraud-consortium', effectiveFrom: '2026-01-01T00:00:00Z', endsOn: null, datasets: ['transactions'], purposes: ['model-training'] });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    agreement = a.body.agreement.id;
  });
  after(async () => {
    // Wait for the nodes to exit before their workspaces go, so none outlives the file.
    const running = (nodes ?? []).filter((n) => n.child.exitCode === null && n.child.signalCode === null);
    const exited = running.map((n) => new Promise((r) => n.child.once('exit', r)));
    for (const n of running) n.child.kill('SIGTERM');
    await Promise.all(exited);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('three banks train with secure aggregation and DP; each round is audited on every node and the model is stored with its card', async () => {
    await join3('fraud-2026', { epsilon: 50, delta: 1e-6 });
    const started = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-2026', participants: ['bank-a', 'bank-b', 'bank-c'], agreement, config: config({ rounds: 2, clip: 1, dp: { noiseMultiplier: 0.5, delta: 1e-6 } }) });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const s = await finished('fraud-2026');
    assert.equal(s.state, 'finished', JSON.stringify(s.error));
    assert.equal(s.rounds.length, 2);
    for (const r of s.rounds) {
      assert.deepEqual(r.participants, ['bank-a', 'bank-b', 'bank-c']);
      assert.ok(r.accuracy > 0 && r.accuracy <= 1);
    }
    assert.ok(s.rounds[1].epsilon > s.rounds[0].epsilon && s.rounds[0].epsilon > 0);
    const model = await call(0, 'operator', 'GET', '/v1/fl/jobs/fraud-2026/model');
    assert.equal(model.status, 200);
    assert.deepEqual(model.body.features, [...FRAUD_FEATURES]);
    assert.equal(model.body.weights.length, FRAUD_FEATURES.length + 1);
    assert.equal(model.body.card.rounds, 2);
    assert.deepEqual(model.body.card.participants, ['bank-a', 'bank-b', 'bank-c']);
    assert.equal(model.body.card.dp.epsilon, s.rounds[1].epsilon);
    for (let i = 0; i < 3; i++) {
      const log = await entries(i);
      const releases = log.filter((e) => e.action === 'fl.release' && e.decision === 'allow' && e.reasons.some((r) => r.includes('federated job fraud-2026')));
      assert.equal(releases.length, 4, `${banks[i]!.nodeId}: a train and an eval release per round`);
      assert.ok(releases.some((e) => e.reasons.some((r) => r.startsWith('dp-budget charge='))), 'the DP charge is in the release entry');
      const reads = log.filter((e) => e.action === 'query' && e.purpose === 'model-training' && e.decision === 'allow');
      assert.ok(reads.length >= 2, `${banks[i]!.nodeId}: the features were read through its own governed path`);
    }
    const coordinator = await entries(0);
    assert.equal(coordinator.filter((e) => e.action === 'fl.round' && e.decision === 'allow').length, 2);
    assert.equal(coordinator.filter((e) => e.action === 'fl.model' && e.decision === 'allow').length, 1);
  });

  test('a job that asks for a column the banks\' policy does not release trains on nothing and releases nothing', async () => {
    await join3('fraud-accounts', null);
    const r = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-accounts', participants: ['bank-a', 'bank-b', 'bank-c'], agreement, config: config({ features: ['account_no', 'amount_z'] }) });
    assert.equal(r.status, 202);
    const s = await finished('fraud-accounts');
    assert.equal(s.state, 'failed');
    assert.equal(s.error.detail, 'FL_TOO_FEW_PARTICIPANTS');
    for (let i = 0; i < 3; i++) {
      const log = await entries(i);
      assert.equal(log.filter((e) => e.action === 'fl.release' && e.reasons.some((x) => x.includes('fraud-accounts'))).length, 0);
      assert.ok(log.some((e) => e.action === 'query' && e.purpose === 'model-training' && e.decision !== 'allow'), 'the refused read is audited');
    }
  });

  test('a node that did not join a job, or joined it under another coordinator, releases nothing for it', async () => {
    await join3('fraud-partial', null, [0, 1]);
    const r = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-partial', participants: ['bank-a', 'bank-b', 'bank-c'], agreement, config: config({ rounds: 1 }) });
    assert.equal(r.status, 202);
    const s = await finished('fraud-partial');
    assert.equal(s.state, 'finished');
    assert.deepEqual(s.rounds[0].participants, ['bank-a', 'bank-b']);
    assert.deepEqual(s.rounds[0].dropouts, ['bank-c']);
    assert.equal((await entries(2)).filter((e) => e.action === 'fl.release' && e.reasons.some((x) => x.includes('fraud-partial'))).length, 0);
    // bank-b coordinating a job every bank joined under bank-a: every participant refuses it.
    const hijack = await call(1, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-partial', participants: ['bank-a', 'bank-b', 'bank-c'], agreement, config: config({ rounds: 1 }) });
    assert.equal(hijack.status, 202);
    const h = await finished('fraud-partial', 1);
    assert.equal(h.state, 'failed');
    assert.equal(h.error.detail, 'FL_TOO_FEW_PARTICIPANTS');
    for (let i = 0; i < 3; i++) assert.equal((await entries(i)).filter((e) => e.action === 'fl.release' && e.reasons.some((x) => x.includes('fraud-partial') && x.includes('coordinator bank-b'))).length, 0);
  });

  test('a bank whose budget runs out refuses its release and training stops with a clear error', async () => {
    await join3('fraud-budget', { epsilon: 50, delta: 1e-6 }, [0, 1]);
    // bank-c's data owner grants this collaboration almost nothing (and it has spent on fraud-2026 already).
    await join3('fraud-budget', { epsilon: 0.01, delta: 1e-6 }, [2]);
    const r = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-budget', participants: ['bank-a', 'bank-b', 'bank-c'], agreement, config: config({ clip: 1, rounds: 5, dp: { noiseMultiplier: 0.5, delta: 1e-6 } }) });
    assert.equal(r.status, 202);
    const s = await finished('fraud-budget');
    assert.equal(s.state, 'failed');
    assert.equal(s.error.detail, 'FL_BUDGET_EXHAUSTED');
    assert.match(s.error.message, /node bank-c has no privacy budget left/);
    assert.equal(s.rounds.length, 1, 'training stopped after the round in which the budget ran out');
    assert.deepEqual(s.rounds[0].participants, ['bank-a', 'bank-b']);
    assert.ok(s.model, 'the model of the completed round is kept');
    const denied = (await entries(2)).filter((e) => e.action === 'fl.release' && e.errorCode === 'BUDGET_EXHAUSTED');
    assert.equal(denied.length, 1);
  });

  test('with secure aggregation off, only banks whose operator chose to trust the coordinator send updates, and a robust rule aggregates them', async () => {
    for (const i of [0, 1]) assert.equal((await call(i, 'operator', 'POST', '/v1/fl/participations', { job: 'fraud-robust', coordinator: 'bank-a', dataset: 'transactions', label: 'is_fraud', trustCoordinator: true })).status, 200);
    await join3('fraud-robust', null, [2]);
    const r = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-robust', participants: ['bank-a', 'bank-b', 'bank-c'], agreement, config: config({ rounds: 2, aggregation: { mode: 'robust', rule: 'median', byzantine: 0 } }) });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const s = await finished('fraud-robust');
    assert.equal(s.state, 'finished', JSON.stringify(s.error));
    assert.deepEqual(s.rounds[0].participants, ['bank-a', 'bank-b']);
    assert.deepEqual(s.rounds[0].dropouts, ['bank-c']);
    for (const i of [0, 1]) {
      const plain = (await entries(i)).filter((e) => e.action === 'fl.release' && e.reasons.some((x) => x.includes('fraud-robust')));
      assert.equal(plain.length, 4);
      assert.ok(plain.every((e) => e.obligations.includes('plain-to-trusted-coordinator')));
    }
    assert.equal((await entries(2)).filter((e) => e.action === 'fl.release' && e.reasons.some((x) => x.includes('fraud-robust'))).length, 0, 'bank-c never agreed to send updates in the clear');
  });

  test('with CKKS, participants encrypt under the designated key authority\'s signed key and only that node decrypts, verified sums only', async () => {
    assert.equal((await call(2, 'operator', 'POST', '/v1/fl/participations', { job: 'fraud-ckks', coordinator: 'bank-a', keyAuthority: true })).status, 200);
    await join3('fraud-ckks', null, [0, 1]);
    const selfKa = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-ckks', participants: ['bank-a', 'bank-b'], agreement, config: config({ aggregation: { mode: 'ckks', keyAuthority: 'bank-a' } }) });
    assert.equal(selfKa.status, 400, 'the coordinator may not be its own key authority');
    const undesignated = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-ckks', participants: ['bank-a', 'bank-c'], agreement, config: config({ rounds: 1, aggregation: { mode: 'ckks', keyAuthority: 'bank-b' } }) });
    assert.equal(undesignated.status, 202);
    const u = await finished('fraud-ckks');
    assert.equal(u.state, 'failed');
    assert.equal(u.error.code, 'POLICY_DENIED', 'bank-b was never designated key authority');
    const r = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-ckks', participants: ['bank-a', 'bank-b'], agreement, config: config({ rounds: 2, aggregation: { mode: 'ckks', keyAuthority: 'bank-c' } }) });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const s = await finished('fraud-ckks');
    assert.equal(s.state, 'finished', JSON.stringify(s.error));
    assert.deepEqual(s.rounds[1].participants, ['bank-a', 'bank-b']);
    assert.ok(s.rounds[1].accuracy > 0.5);
    for (const i of [0, 1]) {
      const rel = (await entries(i)).filter((e) => e.action === 'fl.release' && e.decision === 'allow' && e.reasons.some((x) => x.includes('fraud-ckks')));
      assert.equal(rel.length, 4);
      assert.ok(rel.every((e) => e.obligations.includes('ckks-to-key-authority')));
    }
    const decrypts = (await entries(2)).filter((e) => e.action === 'fl.decrypt' && e.decision === 'allow');
    assert.equal(decrypts.length, 4, 'one audited decryption per session on the key authority');
  });

  test('only fl-operators join or start jobs, and malformed requests are refused by the route schemas', async () => {
    const byAuditor = await call(1, 'auditor', 'POST', '/v1/fl/participations', { job: 'fraud-2026', coordinator: 'bank-a', dataset: 'transactions', label: 'is_fraud' });
    assert.equal(byAuditor.status, 403);
    assert.equal(byAuditor.body.error.code, 'POLICY_DENIED');
    assert.equal((await call(0, 'auditor', 'POST', '/v1/fl/jobs', { job: 'fraud-x', participants: ['bank-a', 'bank-b'], agreement, config: config() })).status, 403);
    const bad = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-x', participants: ['bank-a'], agreement, config: config({ features: ['DROP TABLE'] }) });
    assert.equal(bad.status, 400);
    const weak = await call(0, 'operator', 'POST', '/v1/fl/jobs', { job: 'fraud-weak', participants: ['bank-a', 'bank-b', 'bank-c'], agreement, config: config({ aggregation: { mode: 'secagg', degree: 2, threshold: 1 } }) });
    assert.equal(weak.status, 400);
    assert.equal((await call(0, 'operator', 'GET', '/v1/fl/jobs/no-such-job')).status, 404);
    assert.equal((await call(1, 'operator', 'GET', '/v1/fl/jobs/fraud-2026')).status, 404, 'a job is visible only on its coordinator, to who started it');
  });

  test('terminating the agreement crypto-shreds the trained model', async () => {
    const t = await call(0, 'admin', 'POST', '/v1/governance/agreements/terminate', { id: agreement, reason: 'consortium dissolved' });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.ok(t.body.destroyed.length >= 1);
    const model = await call(0, 'operator', 'GET', '/v1/fl/jobs/fraud-2026/model');
    assert.equal(model.status, 410);
    assert.equal(model.body.error.code, 'GONE');
  });
});
