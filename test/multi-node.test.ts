/**
 * Several Gatehouse nodes behind a load balancer, sharing one PostgreSQL for their state
 * (issue 7): one audit log that both append to and that verifies as a whole, and one
 * privacy budget that requests spread over both nodes can never overspend.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type PgCluster } from './support/postgres.ts';
import { verifyExport } from '../src/audit/verify.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import { KEYS } from './helpers/workspace.ts';
import { PassThrough } from 'node:stream';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { LocalKeyring } from '../src/keys/keyring.ts';
import { DEMO_PASSPHRASE } from '../src/audit/keys.ts';

type Node = GatehouseNode & { readonly gh: GatehouseNode['gatehouse']; readonly log: GatehouseNode['audit'] };

describe('two nodes sharing PostgreSQL state', () => {
  let pg: PgCluster;
  let dir: string;
  const nodes: Node[] = [];

  before(async () => {
    pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'gh-multinode-'));
    await createTestDemoWorkspace(join(dir, 'ws'), { patients: 400, keys: KEYS });
    // The budget test fires its whole burst at once: admit it all, so only the budget decides.
    const yaml = join(dir, 'ws', 'gatehouse.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('defaults:\n', 'defaults:\n  concurrency: { total: 200, perPrincipal: 200, perOrganisation: 200, queuePerPrincipal: 200 }\n'));
    // Every node is given the same keyring file (and passphrase), like any deployment secret.
    for (const name of ['a', 'b']) mkdirSync(join(dir, `state-${name}`), { recursive: true });
    (await LocalKeyring.create(join(dir, 'state-a', 'keyring.json'), DEMO_PASSPHRASE)).close();
    copyFileSync(join(dir, 'state-a', 'keyring.json'), join(dir, 'state-b', 'keyring.json'));
    for (const name of ['a', 'b']) {
      // Both nodes sign with the same log keys (shared, like any secret of the deployment): <auditDir>/keys.
      const node = await startNode({
        workspaceDir: join(dir, 'ws'), auditDir: join(dir, 'audit'), engineOptions: { poolSize: 2 }, demo: true,
        state: { kind: 'postgres', url: pg.superuserUrl, maxConnections: 4, dir: join(dir, `state-${name}`) },
      });
      nodes.push(Object.assign(node, { gh: node.gatehouse, log: node.audit }));
    }
  });

  after(async () => {
    for (const n of nodes) await n.close();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('spends one organisation budget across both nodes and never overspends it', async () => {
    // research-dp: ε = 1 per query against (ε = 10, δ = 1e-6) a month per organisation, composed
    // tightly (privacy-loss distributions). A burst far larger than the budget, split over both
    // nodes at once: the shared ledger must admit queries only while their composition fits.
    const sql = 'SELECT department, count(*) AS n FROM encounters GROUP BY department';
    const first = await nodes[0]!.gh.estimate({ credential: KEYS.rhea, sql, purpose: 'research', source: '127.0.0.1', channel: 'test' });
    // zCDP accounting alone would admit this many; tight composition admits at least as many.
    const zcdpCount = Math.floor(first.privacy!.budget!.capRho / first.privacy!.rho + 1e-9);
    assert.ok(zcdpCount > 1);
    const burst = zcdpCount * 2;
    const ask = (i: number): Promise<string> => nodes[i % 2]!.gh.query({ credential: KEYS.rhea, sql, purpose: 'research', source: '127.0.0.1', channel: `node-${i % 2 ? 'b' : 'a'}` })
      .then(() => 'ok', (e: { code?: string }) => e.code ?? 'error');
    const outcomes = await Promise.all(Array.from({ length: burst }, (_, i) => ask(i)));
    // On a loaded machine the shared ledger may give up on its row lock (BUDGET_STORE_BUSY, 503,
    // nothing charged): the caller retries those, as a client told to retry would, so that in
    // the end the budget alone decides every query of the burst.
    for (let i = 0; i < burst; i++) {
      for (let tries = 0; outcomes[i] === 'UNAVAILABLE' && tries < 20; tries++) outcomes[i] = await ask(i);
    }
    const ok = outcomes.filter((o) => o === 'ok').length;
    assert.ok(ok >= zcdpCount && ok < burst, `admitted ${ok} of ${burst} (zCDP alone: ${zcdpCount})`);
    assert.equal(outcomes.filter((o) => o === 'BUDGET_EXHAUSTED').length, burst - ok, outcomes.join(','));
    for (const n of nodes) {
      const est = await n.gh.estimate({ credential: KEYS.rhea, sql, purpose: 'research', source: '127.0.0.1', channel: 'test' });
      assert.equal(est.privacy?.affordable, false, 'both nodes see the same exhausted budget');
      const b = est.privacy!.budget!;
      assert.ok(b.spentEpsilon <= b.epsilon + 1e-9, `spent ε ${b.spentEpsilon} never exceeds the cap ${b.epsilon}`);
    }
  });

  it('writes one audit log that both nodes append to and that verifies as a whole', async () => {
    await nodes[0]!.gh.query({ credential: KEYS.ivan, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', source: '127.0.0.1', channel: 'node-a' });
    await nodes[1]!.gh.query({ credential: KEYS.ivan, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing', source: '127.0.0.1', channel: 'node-b' });
    for (const n of nodes) {
      const hits = await n.log.search({ action: 'query', limit: 10_000 });
      const channels = new Set(hits.map((h) => h.entry.channel));
      assert.ok(channels.has('node-a') && channels.has('node-b'), `node sees entries of both nodes: ${[...channels].join(',')}`);
      assert.ok(hits.length >= 10);
    }
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await nodes[1]!.log.export(out);
    out.end();
    const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l !== '');
    const report = await verifyExport(lines, { verifiers: nodes[0]!.log.verifiers() });
    assert.equal(report.ok, true, JSON.stringify(report.problems.slice(0, 3)));
    assert.equal(report.complete, true);
  });

  it('shares identity: a session signed in on one node works on the other, and logout on one refuses on the other', async () => {
    const [a, b] = [nodes[0]!.gh, nodes[1]!.gh];
    await a.createUser({ credential: null, source: 'cli', channel: 'cli', admin: 'test' }, 'ada', 'correct horse battery staple 9');
    const login = await b.login({ credential: null, source: '127.0.0.1', channel: 'http' }, { principal: 'ada', password: 'correct horse battery staple 9' }) as { accessToken: string };
    const meta = { credential: login.accessToken, source: '127.0.0.1', channel: 'http' };
    const q = { ...meta, sql: 'SELECT count(*) AS n FROM patients', purpose: 'operations' };
    assert.equal((await a.query(q)).rows.length, 1, 'a token from node b works on node a');
    await a.logout(meta);
    await assert.rejects(b.query(q), (e: { code?: string }) => e.code === 'AUTH_INVALID', 'logout on a refuses the next request on b');
  });

  it('shares governance: ending an agreement on one node denies the partner on the other and shreds what it saved there', async () => {
    const [a, b] = [nodes[0]!.gh, nodes[1]!.gh];
    await a.setupDemoGovernance();
    const meta = { credential: KEYS.ivan, source: '127.0.0.1', channel: 'http' };
    const q = { ...meta, sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing' };
    const saved = await b.query({ ...q, save: true });
    const id = saved.governance.resultId!;
    assert.ok(await a.getResult(meta, id), 'a result saved on b is readable on a');
    const olivia = { credential: KEYS.olivia, source: '127.0.0.1', channel: 'http' };
    const { agreements } = await a.governanceOp(olivia, 'agreement.list', { partner: 'keystone-mutual' }) as { agreements: { id: string }[] };
    await a.governanceOp(olivia, 'agreement.terminate', { id: agreements[0]!.id, reason: 'contract ended' });
    await assert.rejects(b.query(q), (e: { code?: string; reasons?: string[] }) => e.code === 'POLICY_DENIED' && !!e.reasons?.some((r) => r.startsWith('GOV_AGREEMENT_TERMINATED')));
    await assert.rejects(b.getResult(meta, id), (e: { code?: string }) => e.code === 'NOT_FOUND', 'the result saved on b was shredded by the termination on a');
  });
});
