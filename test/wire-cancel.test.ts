/**
 * Query cancellation on the wire front, as an attacker and as psql would try it: a
 * CancelRequest on a new connection with the session's BackendKeyData (PostgreSQL protocol,
 * "Canceling Requests in Progress"), with a wrong key, and a session statement_timeout.
 * The workspace's own timeout is 3 s and the slow query needs far longer, so a query that
 * stops sooner was stopped by the cancel or by the session timeout, not by the engine's limit.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import { sqlFingerprint } from '../src/kernel/digest.ts';
import { startWireServer, type WireServer } from '../src/wire/server.ts';
import { demoFixture, KEYS, PURPOSE, type Fixture } from './helpers/workspace.ts';
import { fields, login, query, sendCancel, settled, type Session } from './support/wire-raw.ts';

class RecordingSink implements AuditSink {
  readonly entries: AuditRecord[] = [];
  async append(r: AuditRecord) { this.entries.push(r); return { auditId: String(this.entries.length - 1) }; }
  async close() {}
}

const WORKSPACE_TIMEOUT_MS = 3000;
/** Billions of rows: only a timeout or a cancel ends it. */
const SLOW = 'SELECT count(*) AS n FROM encounters a, encounters b, encounters c, encounters d';
const GRACE_MS = 400;

let fx: Fixture;
let wire: WireServer;
let password: string;
const audit = new RecordingSink();

before(async () => {
  fx = await demoFixture({
    patients: 300, audit,
    // These tests need a query that runs until it is stopped: a cross join this workspace admits
    // (defaults.maxJoinRows raised; the default refuses it before it runs).
    edit: (ws) => { const f = join(ws, 'gatehouse.yaml'); writeFileSync(f, readFileSync(f, 'utf8').replace('statementTimeoutMs: 20000', `statementTimeoutMs: ${WORKSPACE_TIMEOUT_MS}\n  maxJoinRows: 1000000000000000`)); },
  });
  wire = await startWireServer({ gatehouse: fx.gh, host: '127.0.0.1', port: 0, cancelGraceMs: GRACE_MS });
  password = (await fx.gh.issueConnectionPassword({ credential: KEYS.ada, source: '127.0.0.1', channel: 'test' })).password;
});
after(async () => {
  await wire.close();
  // A query the path did not stop still holds an engine connection until the workspace timeout.
  await new Promise((r) => setTimeout(r, WORKSPACE_TIMEOUT_MS));
  await fx.close();
});

const ada = (): Promise<Session> => login(wire.port, 'ada', password, { purpose: PURPOSE.ada });
/** A slow query told apart from every other by its column name, and its QUERY_TIMEOUT audit entries. */
const slow = (tag: string): string => SLOW.replace('AS n', `AS n_${tag}`);
const timedOut = (sql: string): AuditRecord[] => audit.entries.filter((e) => e.action === 'query' && e.sqlFingerprint === sqlFingerprint(sql) && e.errorCode === 'QUERY_TIMEOUT');

describe('CancelRequest on the wire front', () => {
  it('gives every session its own random process id and secret key', async () => {
    const a = await ada();
    const b = await ada();
    try {
      assert.notEqual(a.pid, b.pid);
      assert.notEqual(a.pid, process.pid, 'the process id is not the server process id');
      assert.equal(a.secret.length, 4);
      assert.notDeepEqual(a.secret, b.secret);
    } finally { a.raw.end(); b.raw.end(); }
  });

  it('cancels the running query: no answer on the cancel connection, 57014 on the session, which stays usable', async () => {
    const s = await ada();
    try {
      const t0 = Date.now();
      s.raw.sock.write(query(SLOW));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await sendCancel(wire.port, s.pid, s.secret), 0, 'nothing is answered on the cancel connection');
      const answer = await s.raw.until('Z', 5000);
      const elapsed = Date.now() - t0;
      const e = answer.find((m) => m.type === 'E');
      assert.ok(e, `an ErrorResponse, got ${answer.map((m) => m.type).join('')}`);
      assert.equal(fields(e.body).C, '57014');
      assert.equal(fields(e.body).M, 'canceling statement due to user request');
      assert.equal(fields(e.body).S, 'ERROR', 'not FATAL: the session goes on');
      assert.ok(elapsed < WORKSPACE_TIMEOUT_MS, `answered after ${elapsed} ms, before the workspace timeout`);
      s.raw.sock.write(query('SELECT count(*) AS n FROM patients'));
      const next = await s.raw.until('Z');
      assert.deepEqual(next.map((m) => m.type), ['T', 'D', 'C', 'Z'], 'the same connection answers the next query');
    } finally { s.raw.end(); }
  });

  it("cancels psql's query on Ctrl-C (libpq PQcancel) and psql reports 57014", async () => {
    const child = spawn('/usr/bin/psql', ['-X', '-A', '-t', '-v', 'VERBOSITY=verbose', '-h', '127.0.0.1', '-p', String(wire.port), '-U', 'ada', '-d', 'gatehouse', '-c', slow('psql')], {
      env: { ...process.env, PGPASSWORD: password, PGOPTIONS: `-c gatehouse.purpose=${PURPOSE.ada}`, PGCONNECT_TIMEOUT: '5' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 700));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.ok(Date.now() - t0 < WORKSPACE_TIMEOUT_MS, 'psql returned before the workspace timeout');
    assert.notEqual(code, 0);
    assert.match(stderr, /57014.*canceling statement due to user request/s);
  });

  it('does nothing for a cancel with a wrong secret key or an unknown process id, and audits each', async () => {
    const s = await ada();
    try {
      s.raw.sock.write(query(SLOW));
      await new Promise((r) => setTimeout(r, 200));
      const n = audit.entries.length;
      const wrong = Buffer.from(s.secret);
      wrong[3] = wrong[3]! ^ 0x01;
      assert.equal(await sendCancel(wire.port, s.pid, wrong), 0);
      assert.equal(await sendCancel(wire.port, s.pid ^ 0x40000000, s.secret), 0);
      await assert.rejects(s.raw.next(GRACE_MS + 400), /no answer/, 'the query is still running');
      await settled(() => audit.entries.length);
      const cancels = audit.entries.slice(n).filter((e) => e.action === 'pgwire.cancel');
      assert.equal(cancels.length, 2);
      assert.ok(cancels.every((e) => e.decision === 'deny' && e.errorCode === 'AUTH_INVALID' && e.principal === null));
      await sendCancel(wire.port, s.pid, s.secret);
      const e = (await s.raw.until('Z')).find((m) => m.type === 'E');
      assert.equal(fields(e!.body).C, '57014', 'the right key cancels it');
    } finally { s.raw.end(); }
  });

  it('stops a query at the session statement_timeout and keeps the session', async () => {
    const s = await ada();
    try {
      s.raw.sock.write(query('SET statement_timeout = 200'));
      assert.equal((await s.raw.until('Z')).find((m) => m.type === 'E'), undefined);
      const t0 = Date.now();
      s.raw.sock.write(query(SLOW));
      const answer = await s.raw.until('Z', 5000);
      const elapsed = Date.now() - t0;
      const e = answer.find((m) => m.type === 'E');
      assert.equal(fields(e!.body).C, '57014');
      assert.match(fields(e!.body).M, /statement timeout \(statement_timeout is 200 ms\)/);
      assert.ok(elapsed >= 200 && elapsed < 200 + GRACE_MS + 1000, `answered after ${elapsed} ms`);
      s.raw.sock.write(query('RESET statement_timeout'));
      await s.raw.until('Z');
      s.raw.sock.write(query('SELECT count(*) AS n FROM claims'));
      assert.deepEqual((await s.raw.until('Z')).map((m) => m.type), ['T', 'D', 'C', 'Z']);
    } finally { s.raw.end(); }
  });
});

describe('a cancelled query stops in the engine', () => {

  it('ends the query in the engine right after a CancelRequest: its audit entry says QUERY_TIMEOUT', async () => {
    const s = await ada();
    try {
      const sql = slow('cancelled');
      s.raw.sock.write(query(sql));
      await new Promise((r) => setTimeout(r, 300));
      await sendCancel(wire.port, s.pid, s.secret);
      const t = Date.now();
      await s.raw.until('Z', 5000);
      while (timedOut(sql).length === 0 && Date.now() - t < 1500) await new Promise((r) => setTimeout(r, 25));
      assert.equal(timedOut(sql).length, 1, `the query's entry says QUERY_TIMEOUT within 1.5 s of the cancel (workspace timeout ${WORKSPACE_TIMEOUT_MS} ms)`);
    } finally { s.raw.end(); }
  });

  it('ends the query in the engine at the session statement_timeout', async () => {
    const s = await ada();
    try {
      s.raw.sock.write(query('SET statement_timeout = 200'));
      await s.raw.until('Z');
      const sql = slow('timed_out');
      const t = Date.now();
      s.raw.sock.write(query(sql));
      await s.raw.until('Z', 5000);
      while (timedOut(sql).length === 0 && Date.now() - t < 1500) await new Promise((r) => setTimeout(r, 25));
      assert.equal(timedOut(sql).length, 1, 'the engine stopped at 200 ms, not at the workspace timeout');
    } finally { s.raw.end(); }
  });
});
