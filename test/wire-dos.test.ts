/**
 * Denial of service at the wire front, bounded in time and memory so it runs in CI: a flood
 * of connections that never authenticate (issue 12: 110 of them locked everyone out), a
 * slow start-up trickled byte by byte, and a shutdown with a session mid-query, one idle
 * and one never authenticated. Limits are configured small; every wait is bounded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import { Admission, sourceOf } from '../src/wire/admission.ts';
import { startWireServer, type WireServer } from '../src/wire/server.ts';
import { demoFixture, KEYS, PURPOSE, type Fixture } from './helpers/workspace.ts';
import { fields, login, query, Raw, settled, startup } from './support/wire-raw.ts';

class RecordingSink implements AuditSink {
  readonly entries: AuditRecord[] = [];
  async append(r: AuditRecord) { this.entries.push(r); return { auditId: String(this.entries.length - 1) }; }
  async close() {}
}

const WORKSPACE_TIMEOUT_MS = 3000;
let fx: Fixture;
let password: string;
const audit = new RecordingSink();

before(async () => {
  fx = await demoFixture({
    patients: 300, audit,
    // These tests need a query that runs until it is stopped: a cross join this workspace admits
    // (defaults.maxJoinRows raised; the default refuses it before it runs).
    edit: (ws) => { const f = join(ws, 'gatehouse.yaml'); writeFileSync(f, readFileSync(f, 'utf8').replace('statementTimeoutMs: 20000', `statementTimeoutMs: ${WORKSPACE_TIMEOUT_MS}\n  maxJoinRows: 1000000000000000`)); },
  });
  password = (await fx.gh.issueConnectionPassword({ credential: KEYS.ivan, source: '127.0.0.1', channel: 'test' })).password;
});
after(async () => {
  // No wait for the cross join of the shutdown test: the wire server's close() cancels it (it
  // interrupts the engine as a CancelRequest does), and the engine's close() would end a
  // statement still running anyway (it fails; the process does not wait for it).
  await fx.close();
});

/** Reads the FATAL a refused connection gets, then expects the close. */
async function refusal(r: Raw): Promise<Record<string, string>> {
  const m = await r.next(3000);
  assert.equal(m?.type, 'E', 'an ErrorResponse before the close');
  assert.ok(await r.closedWithin(2000), 'then the connection is closed');
  return fields(m!.body);
}

describe('connections that never authenticate', () => {
  let wire: WireServer;
  before(async () => {
    wire = await startWireServer({ gatehouse: fx.gh, host: '127.0.0.1', port: 0, authTimeoutMs: 1500, maxUnauthenticatedPerAddress: 4, maxUnauthenticated: 8, maxConnections: 20 });
  });
  after(async () => { await wire.close(); });

  it('cannot lock others out: excess from one address gets 53300, another address still signs in and queries', async () => {
    const n = audit.entries.length;
    const held = await Promise.all(Array.from({ length: 4 }, () => Raw.open(wire.port, '127.0.0.1')));
    const excess = await Promise.all(Array.from({ length: 6 }, () => Raw.open(wire.port, '127.0.0.1')));
    for (const r of excess) {
      const e = await refusal(r);
      assert.equal(e.C, '53300');
      assert.equal(e.S, 'FATAL');
      assert.match(e.M, /too many connections from this address/);
    }
    assert.ok(held.every((r) => !r.closed), 'the first four wait for their deadline');
    const other = await login(wire.port, 'ivan', password, { purpose: PURPOSE.ivan, from: '127.0.0.2' });
    other.raw.sock.write(query('SELECT count(*) AS n FROM claims'));
    assert.deepEqual((await other.raw.until('Z')).map((m) => m.type), ['T', 'D', 'C', 'Z']);
    other.raw.end();
    await settled(() => audit.entries.length);
    const refused = audit.entries.slice(n).filter((e) => e.action === 'pgwire.connect');
    assert.equal(refused.length, 6, 'each refused connection is audited once');
    assert.ok(refused.every((e) => e.decision === 'deny' && e.errorCode === 'RATE_LIMITED' && e.source.endsWith('127.0.0.1')));
    for (const r of held) r.end();
  });

  it('caps waiting connections in all, across addresses', async () => {
    const a = await Promise.all(Array.from({ length: 4 }, () => Raw.open(wire.port, '127.0.0.3')));
    const b = await Promise.all(Array.from({ length: 4 }, () => Raw.open(wire.port, '127.0.0.4')));
    await new Promise((r) => setTimeout(r, 100));
    const c = await Raw.open(wire.port, '127.0.0.5');
    const e = await refusal(c);
    assert.equal(e.C, '53300');
    assert.match(e.M, /too many connections are waiting to authenticate \(at most 8\)/);
    for (const r of [...a, ...b]) r.end();
    await new Promise((r) => setTimeout(r, 100));
    const after = await login(wire.port, 'ivan', password, { purpose: PURPOSE.ivan, from: '127.0.0.5' });
    after.raw.end();
  });

  it('ends a connection at the authentication deadline, trickled start-up or silent, audits it, and frees its slot', async () => {
    const n = audit.entries.length;
    const silent = await Raw.open(wire.port, '127.0.0.6');
    const trickle = await Raw.open(wire.port, '127.0.0.6');
    const packet = startup({ user: 'ivan', database: 'gatehouse' });
    let i = 0;
    const drip = setInterval(() => { if (i < packet.length - 1 && !trickle.closed) trickle.sock.write(packet.subarray(i, ++i)); }, 50);
    const full = await Promise.all(Array.from({ length: 2 }, () => Raw.open(wire.port, '127.0.0.6')));
    const t0 = Date.now();
    try {
      for (const r of [silent, trickle]) {
        const e = await refusal(r);
        assert.equal(e.C, '08006');
        assert.match(e.M, /authentication was not completed within 1500 ms/);
      }
      const waited = Date.now() - t0;
      assert.ok(waited < 2500, `ended after ${waited} ms`);
    } finally { clearInterval(drip); }
    const again = await login(wire.port, 'ivan', password, { purpose: PURPOSE.ivan, from: '127.0.0.6' });
    again.raw.end();
    for (const r of full) r.end();
    await settled(() => audit.entries.length, 200);
    const timeouts = audit.entries.slice(n).filter((e) => e.action === 'pgwire.auth' && /not completed within/.test(e.reasons[0] ?? ''));
    assert.ok(timeouts.length >= 2, 'each connection ended at the deadline is audited');
    assert.ok(timeouts.every((e) => e.decision === 'deny' && e.errorCode === 'AUTH_REQUIRED'));
  });
});

describe('admission accounting', () => {
  it('counts an IPv6 /64 as one source and IPv4-mapped addresses as IPv4', () => {
    assert.equal(sourceOf('2001:db8:1:2:aaaa::1'), sourceOf('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    assert.notEqual(sourceOf('2001:db8:1:2::1'), sourceOf('2001:db8:1:3::1'));
    assert.equal(sourceOf('::ffff:10.0.0.1'), '10.0.0.1');
  });

  it('moves an authenticated connection out of the waiting count into a session, and refuses a session over the limit', () => {
    const a = new Admission({ maxSessions: 1, maxUnauthenticated: 2, maxUnauthenticatedPerAddress: 2 });
    const t1 = a.admit('10.0.0.1');
    const t2 = a.admit('10.0.0.1');
    assert.ok(typeof t1 !== 'string' && typeof t2 !== 'string');
    assert.equal(typeof a.admit('10.0.0.2'), 'string', 'the global cap');
    assert.equal(t1.authenticated(), null);
    assert.equal(a.waiting, 1);
    assert.equal(a.sessions, 1);
    assert.match(t2.authenticated() ?? '', /too many sessions/);
    t1.release(); t1.release(); t2.release();
    assert.equal(a.waiting + a.sessions, 0, 'released once each, whatever the order');
  });
});

describe('shutdown', () => {
  it('closes within its deadline with a session mid-query, one idle and one never authenticated', async () => {
    const wire = await startWireServer({ gatehouse: fx.gh, host: '127.0.0.1', port: 0, closeTimeoutMs: 600, cancelGraceMs: 200 });
    const busy = await login(wire.port, 'ivan', password, { purpose: PURPOSE.ivan });
    const idle = await login(wire.port, 'ivan', password, { purpose: PURPOSE.ivan });
    const stranger = await Raw.open(wire.port);
    stranger.sock.write(startup({ user: 'ivan', database: 'gatehouse' })); // then never answers the SCRAM challenge
    assert.equal((await stranger.next())?.type, 'R');
    busy.raw.sock.write(query('SELECT count(*) AS n FROM claims a, claims b, claims c, patients d'));
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await wire.close();
    const took = Date.now() - t0;
    assert.ok(took < 1500, `close() took ${took} ms with a 600 ms deadline`);
    const idleEnd = await idle.raw.until('E', 1000);
    assert.equal(fields(idleEnd.at(-1)!.body).C, '57P01', 'the idle session is told why');
    for (const r of [busy.raw, idle.raw, stranger]) assert.ok(await r.closedWithin(500), 'every socket is closed');
    await assert.rejects(Raw.open(wire.port), 'the port no longer accepts');
  });

  it('lets a request that finishes within the deadline answer, then ends the session', async () => {
    const wire = await startWireServer({ gatehouse: fx.gh, host: '127.0.0.1', port: 0, closeTimeoutMs: 5000 });
    const s = await login(wire.port, 'ivan', password, { purpose: PURPOSE.ivan });
    s.raw.sock.write(query('SELECT count(*) AS n FROM claims a, claims b, claims c, claims d WHERE d.amount_paid < 1000')); // about a second
    await new Promise((r) => setTimeout(r, 150));
    const closing = wire.close();
    const answer = await s.raw.until('E', 5000);
    await closing;
    assert.deepEqual(answer.map((m) => m.type), ['T', 'D', 'C', 'Z', 'E'], 'the result, then FATAL');
    assert.equal(fields(answer.at(-1)!.body).C, '57P01');
  });
});
