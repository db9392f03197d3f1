/**
 * A PostgreSQL outage never kills a Gatehouse node. A node on PostgreSQL state runs as a child
 * process serving HTTP (test/support/pg-node.ts) under a steady load of queries; PostgreSQL is
 * killed mid-load (`pg_ctl stop -m immediate`). The process must stay up and answer 503 with a
 * clear code (UNAVAILABLE or, since the audit log itself is in PostgreSQL, AUDIT_UNAVAILABLE)
 * and report itself not ready; once PostgreSQL is started again, requests must succeed within
 * seconds without restarting the node.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { KEYS } from './helpers/workspace.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

const SQL = 'SELECT count(*) AS n FROM claims';

interface Answer { status: number; code: string | null; message: string | null }

/** Polls `condition` every 50 ms; fails with `what` after `timeoutMs`. */
async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`${what} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe('a PostgreSQL outage under load', { timeout: 180_000 }, () => {
  let cluster: PgCluster;
  let dir: string;
  let child: ChildProcess;
  let port = 0;
  let stderr = '';
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  async function query(): Promise<Answer> {
    const r = await fetch(`http://127.0.0.1:${port}/v1/query`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.ivan}` },
      body: JSON.stringify({ sql: SQL, purpose: 'claims-processing' }), signal: AbortSignal.timeout(20_000),
    });
    const body = await r.json() as { error?: { code?: string; message?: string } };
    return { status: r.status, code: body.error?.code ?? null, message: body.error?.message ?? null };
  }

  async function health(): Promise<{ ready: boolean; reason: string | null }> {
    // The readiness route: 200 when ready, 503 with each part's reason when not.
    const r = await fetch(`http://127.0.0.1:${port}/v1/ready`, { signal: AbortSignal.timeout(5000) });
    const body = await r.json() as { ready: boolean; parts: Record<string, { ready: boolean; reason: string | null }> };
    assert.equal(r.status, body.ready ? 200 : 503);
    return { ready: body.ready, reason: body.parts.state!.reason };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-outage-'));
    // The cluster and the workspace are independent: made side by side.
    [cluster] = await Promise.all([startPostgres(), createTestDemoWorkspace(join(dir, 'ws'), { patients: 300, keys: KEYS })]);
    child = spawn(process.execPath, [new URL('./support/pg-node.ts', import.meta.url).pathname], {
      env: { ...process.env, GH_STATE_URL: cluster.superuserUrl, GH_WORKSPACE: join(dir, 'ws'), GH_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (code, signal) => { exited = { code, signal }; });
    port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the node did not start within 90 s: ${stderr}`)), 90_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{"port"'));
        if (line) { clearTimeout(timer); resolve((JSON.parse(line) as { port: number }).port); }
      });
      child.on('exit', () => { clearTimeout(timer); reject(new Error(`the node exited while starting: ${stderr}`)); });
    });
  });

  after(async () => {
    if (child && exited === null) {
      child.kill('SIGTERM');
      // The 10 s guard is cancelled once the child exits: a pending timer would keep this
      // file's process alive until it fired.
      const guard = new AbortController();
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000, undefined, { signal: guard.signal }).catch(() => undefined)]);
      guard.abort();
      if (exited === null) child.kill('SIGKILL');
    }
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the node alive, answers 503 while PostgreSQL is down, and serves again once it is back', async () => {
    const first = await query();
    assert.equal(first.status, 200, JSON.stringify(first));
    assert.deepEqual(await health(), { ready: true, reason: null });

    // Steady load: four clients in a loop, recording every answer, while PostgreSQL dies.
    let loading = true;
    const answers: Answer[] = [];
    const clients = Array.from({ length: 4 }, async () => {
      while (loading && exited === null) {
        answers.push(await query().catch((e: Error) => ({ status: 0, code: 'FETCH_FAILED', message: e.message })));
      }
    });
    // The load is running once the clients have had answers; PostgreSQL then dies under it,
    // and the load goes on until four requests have had a 503 (or the node died: asserted below).
    await until(() => exited !== null || answers.length >= 8, 10_000, 'the load did not get going');
    const beforeCrash = answers.length;
    await cluster.crash();
    await until(() => exited !== null || answers.slice(beforeCrash).filter((a) => a.status === 503).length >= 4, 10_000, 'no 503s while PostgreSQL is down');
    loading = false;
    await Promise.all(clients);

    assert.equal(exited, null, `the node process died when PostgreSQL went away: ${stderr.slice(-2000)}`);
    assert.ok(beforeCrash > 0, 'the load ran before the crash');
    const during = answers.slice(beforeCrash);
    for (const a of answers) {
      assert.ok(a.status === 200 || a.status === 503, `every answer is a success or a 503, not ${JSON.stringify(a)}`);
    }
    assert.ok(during.some((a) => a.status === 503), 'requests during the outage fail closed with 503');

    const down = await query();
    assert.equal(down.status, 503, JSON.stringify(down));
    assert.ok(down.code === 'UNAVAILABLE' || down.code === 'AUDIT_UNAVAILABLE', JSON.stringify(down));
    assert.ok(down.message && down.message.length > 10, 'the 503 says what is wrong');
    assert.doesNotMatch(down.message!, new RegExp(cluster.superuserPassword), 'no password in the message');
    const h = await health();
    assert.equal(h.ready, false);
    assert.match(h.reason ?? '', /PostgreSQL/);
    assert.equal(exited, null, 'still alive after answering during the outage');

    await cluster.restart();
    const back = Date.now();
    let last: Answer | null = null;
    while (Date.now() - back < 15_000) {
      last = await query();
      if (last.status === 200) break;
      await sleep(200);
    }
    assert.equal(last?.status, 200, `requests succeed again after PostgreSQL is back: ${JSON.stringify(last)} ${stderr.slice(-2000)}`);
    assert.ok(Date.now() - back < 10_000, `recovered within 10 s (took ${Date.now() - back} ms)`);
    // Readiness is cached for 1 s (src/sql/pg-health.ts): it turns ready once the cache expires.
    await until(async () => (await health()).ready, 5_000, 'readiness did not come back');
    assert.deepEqual(await health(), { ready: true, reason: null });
    assert.equal(exited, null);
  });
});
