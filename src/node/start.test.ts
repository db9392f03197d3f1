/**
 * The composition root: parts open in dependency order and close in reverse, a start-up
 * step that fails closes what was already open (no port, log lock or engine left behind),
 * and a configuration that breaks a security rule is refused before anything is opened.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTransparencyLog } from '../audit/index.ts';
import { createTestDemoWorkspace } from '../../test/helpers/demo-data.ts';
import { startNode } from './start.ts';

const KEY = 'node-start-test-key-ada-0123456789';
let dir: string;
let ws: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-node-'));
  ws = join(dir, 'ws');
  await createTestDemoWorkspace(ws, { patients: 200, keys: { ada: KEY } });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Listens on `port` (0: any free one); resolves with the server, or rejects when the port is taken. */
async function bind(port: number): Promise<import('node:net').Server> {
  const s = createServer();
  s.listen(port, '127.0.0.1');
  await Promise.race([once(s, 'listening'), once(s, 'error').then(([e]) => { throw e; })]);
  return s;
}
const closeServer = (s: import('node:net').Server): Promise<void> => new Promise((done) => s.close(() => done()));

describe('startNode', () => {
  it('serves HTTP and the wire front on free ports and closes every part in reverse order of opening', async () => {
    const events: string[] = [];
    const node = await startNode({
      workspaceDir: ws, auditDir: join(dir, 'audit-order'), demo: true,
      http: { port: 0 }, wire: { port: 0 }, scheduler: { intervalMs: 3_600_000, firstRunMs: 3_600_000 }, reloadOnChange: true,
      trace: (e) => events.push(e),
    });
    try {
      assert.ok(node.http.port > 0 && node.wire.port > 0 && node.http.port !== node.wire.port);
      const health = await fetch(`${node.http.url}/v1/health`);
      assert.equal(health.status, 200);
      assert.equal((await health.json() as { policyVersion: string }).policyVersion, node.gatehouse.policyVersion);
      const r = await node.http.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${KEY}` }, payload: { sql: 'SELECT count(*) AS n FROM patients', purpose: 'operations' } });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(node.audit.size, 1, 'the query went through the node\'s audit log');
    } finally {
      await node.close();
    }
    const opened = events.filter((e) => e.startsWith('opened ')).map((e) => e.slice(7));
    const closed = events.filter((e) => e.startsWith('closed ')).map((e) => e.slice(7));
    assert.deepEqual(opened, ['state', 'pipeline', 'requests in flight', 'http', 'wire', 'scheduler', 'reload watch']);
    assert.deepEqual(closed, [...opened].reverse());
    await node.close(); // idempotent
    assert.equal(events.filter((e) => e.startsWith('closed ')).length, opened.length);
  });

  it('when a later step fails, closes what it had opened: the HTTP port, the pipeline and the log lock', async () => {
    const blocker = await bind(0);
    const taken = (blocker.address() as AddressInfo).port;
    const probe = await bind(0);
    const httpPort = (probe.address() as AddressInfo).port;
    await closeServer(probe);
    const auditDir = join(dir, 'audit-fail');
    const events: string[] = [];
    try {
      await assert.rejects(startNode({ workspaceDir: ws, auditDir, demo: true, http: { port: httpPort }, wire: { port: taken }, trace: (e) => events.push(e) }), /EADDRINUSE/);
      assert.deepEqual(events, ['opened state', 'opened pipeline', 'opened requests in flight', 'opened http', 'closed http', 'closed requests in flight', 'closed pipeline', 'closed state']);
      await closeServer(await bind(httpPort)); // rejects with EADDRINUSE if the HTTP listener leaked
      const log = openTransparencyLog(auditDir, { demo: true }); // throws "already open in this process" if the lock leaked
      await log.close();
    } finally {
      await closeServer(blocker);
    }
  });

  it('when the workspace cannot be opened, closes the audit log it opened first', async () => {
    const auditDir = join(dir, 'audit-badws');
    const events: string[] = [];
    await assert.rejects(startNode({ workspaceDir: join(dir, 'no-such-workspace'), auditDir, demo: true, trace: (e) => events.push(e) }));
    assert.deepEqual(events, ['opened state', 'closed state']);
    const log = openTransparencyLog(auditDir, { demo: true });
    await log.close();
  });

  it('refuses plain HTTP off loopback before opening anything', async () => {
    const auditDir = join(dir, 'audit-refused');
    await assert.rejects(startNode({ workspaceDir: ws, auditDir, demo: true, http: { host: '0.0.0.0', port: 0 } }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'REQUEST_INVALID');
      assert.match(err.message, /plain HTTP is allowed only on loopback/);
      return true;
    });
    assert.equal(existsSync(auditDir), false, 'no audit log was created');
  });

  it('runs scheduled governance rounds one at a time, reports the compliance report, and runs none once closed', async () => {
    const lines: string[] = [];
    const reportsDir = join(dir, 'reports');
    const node = await startNode({
      workspaceDir: ws, auditDir: join(dir, 'audit-scheduler'), demo: true,
      scheduler: { intervalMs: 3_600_000, firstRunMs: 3_600_000, reportsDir }, notify: (l) => lines.push(l),
    });
    const { scheduler } = node;
    assert.ok(scheduler, 'a scheduler was started');
    try {
      const first = scheduler.runNow();
      assert.equal(scheduler.runNow(), first, 'a second tick joins the round in progress');
      await first;
      assert.equal(lines.filter((l) => l.startsWith('compliance report written: ')).length, 1, lines.join('\n'));
      assert.ok(readdirSync(reportsDir).some((f) => /^compliance-\d{4}-\d{2}-\d{2}\.html$/.test(f)));
    } finally {
      await node.close();
    }
    const before = lines.length;
    await scheduler.runNow();
    assert.equal(lines.length, before, 'no round after close');
  });

  it('reloads the workspace when a policy file changes, and keeps the version in force when the change is invalid', async () => {
    const copy = join(dir, 'ws-reload');
    cpSync(ws, copy, { recursive: true });
    const lines: string[] = [];
    let seen: (line: string) => void = () => {};
    const node = await startNode({ workspaceDir: copy, auditDir: join(dir, 'audit-reload'), demo: true, reloadOnChange: true, notify: (l) => { lines.push(l); seen(l); } });
    const next = (): Promise<string> => new Promise((done) => { seen = done; });
    try {
      const v0 = node.gatehouse.policyVersion;
      const policy = join(copy, 'policies', readdirSync(join(copy, 'policies')).find((f) => f.endsWith('.cedar'))!);
      let reloaded = next();
      appendFileSync(policy, '\n// a comment changes the policy version\n');
      assert.match(await reloaded, /^workspace reloaded: policy version sha256:/);
      const v1 = node.gatehouse.policyVersion;
      assert.notEqual(v1, v0);
      reloaded = next();
      appendFileSync(policy, '\npermit (principal, action, resource) when { this is not cedar };\n');
      assert.match(await reloaded, /^workspace change ignored/);
      assert.equal(node.gatehouse.policyVersion, v1, 'the valid version stays in force');
    } finally {
      await node.close();
    }
  });

  it('after the drain deadline cuts a connection, waits for its request to leave the pipeline, so its audit entry is written', async () => {
    const slow = join(dir, 'ws-slow');
    cpSync(ws, slow, { recursive: true });
    const yaml = join(slow, 'gatehouse.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/statementTimeoutMs: \d+/, 'statementTimeoutMs: 1500'));
    const lines: string[] = [];
    const node = await startNode({ workspaceDir: slow, auditDir: join(dir, 'audit-cut'), demo: true, http: { port: 0 }, notify: (l) => lines.push(l) });
    // A self-join far too large to finish: it runs until the 1.5 s statement timeout stops it.
    const sql = 'SELECT count(*) AS n FROM encounters a JOIN encounters b ON a.department = b.department JOIN encounters c ON c.department = a.department JOIN encounters d ON d.department = a.department';
    const client = fetch(`${node.http.url}/v1/query`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql, purpose: 'operations' }) })
      .then((r) => `answered ${r.status}`, () => 'connection cut');
    await once(node.http.app.server, 'request');
    await node.close({ drainMs: 1 });
    assert.equal(await client, 'connection cut', 'the client was not kept waiting past the deadline');
    assert.ok(lines.some((l) => /^waiting for 1 request\(s\) still inside the pipeline/.test(l)), lines.join('\n'));
    const log = openTransparencyLog(join(dir, 'audit-cut'), { demo: true });
    try {
      assert.equal(log.size, 1, 'the cut request still left its audit entry');
      const entry = log.leaf(0).entry;
      assert.deepEqual([entry.action, entry.errorCode], ['query', 'QUERY_TIMEOUT']);
    } finally {
      await log.close();
    }
  });

  it('drains on close: a request in flight finishes before the pipeline closes', async () => {
    const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit-drain'), demo: true, http: { port: 0 } });
    const inFlight = fetch(`${node.http.url}/v1/query`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: 'SELECT region, count(*) AS n FROM claims GROUP BY region', purpose: 'operations' }) });
    // The request is in flight once the server has it; closing starts then.
    await once(node.http.app.server, 'request');
    const closed = node.close({ drainMs: 20_000 });
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.ok(((await res.json()) as { rows: unknown[] }).rows.length > 0);
    await closed;
    assert.equal(node.audit.size, 1);
  });

  it('starts the residency node of a workspace with a region section, hands it to the faces, and closes it before the pipeline', async () => {
    const { createScenario, SCENARIO_KEYS } = await import('../residency/scenario.ts');
    const scenario = join(dir, 'residency');
    const { eu } = await createScenario(scenario);
    const events: string[] = [];
    const node = await startNode({ workspaceDir: eu.wsDir, auditDir: join(scenario, 'audit'), demo: true, http: { port: 0 }, federation: { listen: { port: 0 } }, trace: (e) => events.push(e) });
    try {
      assert.ok(node.residency && node.residency.port > 0, 'the node-to-node listener is up');
      assert.equal(node.residency.identity.region, 'eu-west');
      // /v1/query is planned by the residency node: a dataset held in two regions is split, and the
      // unreachable us-east partition fails the whole answer instead of passing off the EU part.
      const r = await node.http.app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${SCENARIO_KEYS.ursula}` }, payload: { sql: 'SELECT condition, count(*) AS n FROM patients GROUP BY condition', purpose: 'research' } });
      assert.equal(r.statusCode, 503, r.body);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'REGION_UNREACHABLE');
    } finally {
      await node.close();
    }
    const closed = events.filter((e) => e.startsWith('closed ')).map((e) => e.slice(7));
    assert.ok(closed.indexOf('residency') >= 0 && closed.indexOf('residency') < closed.indexOf('pipeline'), closed.join(', '));
    assert.ok(closed.indexOf('http') < closed.indexOf('residency'), 'the faces close first');
    const plain = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit-plain'), demo: true });
    try {
      assert.equal(plain.residency, null, 'a workspace without region: is not federated');
    } finally {
      await plain.close();
    }
  });

  it('refuses to start when the node-to-node port is taken, naming it, and leaves nothing open', async () => {
    const { createScenario } = await import('../residency/scenario.ts');
    const scenario = join(dir, 'residency-taken');
    const { eu } = await createScenario(scenario);
    const blocker = await bind(0);
    const taken = (blocker.address() as AddressInfo).port;
    const events: string[] = [];
    try {
      await assert.rejects(startNode({ workspaceDir: eu.wsDir, auditDir: join(scenario, 'audit'), demo: true, federation: { listen: { port: taken } }, trace: (e) => events.push(e) }), (e: Error) => {
        assert.match(e.message, new RegExp(`cannot serve the node-to-node listener on 127\\.0\\.0\\.1:${taken}: the port is already in use`));
        return true;
      });
    } finally {
      await closeServer(blocker);
    }
    const opened = events.filter((e) => e.startsWith('opened ')).map((e) => e.slice(7));
    const closed = events.filter((e) => e.startsWith('closed ')).map((e) => e.slice(7));
    assert.deepEqual(closed, [...opened].reverse(), 'what was opened is closed');
  });
});
