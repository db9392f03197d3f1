/**
 * Invariant 8 at the wire front: every request leaves exactly one audit entry, and the entry
 * says what the client was told. Each case sends one malformed or refused request the way an
 * attacker would — oversized, truncated, garbage, a NUL in a Bind parameter, an unknown SHOW,
 * a dangerous SET, several statements, COPY, an authentication that never finishes, a wrong
 * password, a cancel with a wrong key, one connection too many — and counts the entries it
 * left. Before authentication the whole connection is the request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import { outcomeOf, type ErrorCode } from '../src/errors.ts';
import { startWireServer, type WireServer } from '../src/wire/server.ts';
import { demoFixture, KEYS, PURPOSE, type Fixture } from './helpers/workspace.ts';
import { fields, login, msg, query, Raw, sendCancel, settled, settledAfter, startup, type Message } from './support/wire-raw.ts';

class RecordingSink implements AuditSink {
  readonly entries: AuditRecord[] = [];
  async append(r: AuditRecord) { this.entries.push(r); return { auditId: String(this.entries.length - 1) }; }
  async close() {}
}

const AUTH_TIMEOUT_MS = 700;
let fx: Fixture;
let wire: WireServer;
let password: string;
const audit = new RecordingSink();

before(async () => {
  fx = await demoFixture({ patients: 200, audit });
  wire = await startWireServer({ gatehouse: fx.gh, host: '127.0.0.1', port: 0, maxMessageBytes: 64 * 1024, authTimeoutMs: AUTH_TIMEOUT_MS, maxUnauthenticatedPerAddress: 3 });
  password = (await fx.gh.issueConnectionPassword({ credential: KEYS.ivan, source: '127.0.0.1', channel: 'test' })).password;
});
after(async () => { await wire.close(); await fx.close(); });

/** What the client was told: the ErrorResponse fields, or nothing at all. */
type Told = Record<string, string> | null;

async function firstError(r: Raw, timeoutMs = 3000): Promise<Told> {
  for (;;) {
    const m: Message | null = await r.next(timeoutMs);
    if (!m) return null;
    if (m.type === 'E') return fields(m.body);
  }
}

const ivan = () => login(wire.port, 'ivan', password, { purpose: PURPOSE.ivan });

/** One request per case, on an authenticated session (`authenticated`) or before authentication. */
const cases: { name: string; authenticated: boolean; send(): Promise<Told> }[] = [
  { name: 'an oversized message (length header only)', authenticated: true, async send() {
    const s = await ivan();
    const head = Buffer.alloc(5); head[0] = 0x51; head.writeInt32BE(200 * 1024 * 1024, 1);
    s.raw.sock.write(head);
    return firstError(s.raw);
  } },
  { name: 'a truncated Bind', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(msg('B', Buffer.from('\0\0\0\x01\0')));
    return firstError(s.raw);
  } },
  { name: 'a garbage message type', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(msg('Y', 'garbage'));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'a NUL byte in a Bind parameter', authenticated: true, async send() {
    const s = await ivan();
    const parse = msg('P', Buffer.concat([Buffer.from('\0SELECT count(*) AS n FROM claims WHERE status = $1\0'), Buffer.from([0, 0])]));
    const value = Buffer.from('paid\0; DROP');
    const len = Buffer.alloc(4); len.writeInt32BE(value.length);
    const bind = msg('B', Buffer.concat([Buffer.from('\0\0'), Buffer.from([0, 0, 0, 1]), len, value, Buffer.from([0, 0])]));
    s.raw.sock.write(Buffer.concat([parse, bind, msg('E', Buffer.from('\0\0\0\0\0')), msg('S', Buffer.alloc(0))]));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'SHOW of an unknown setting', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(query('SHOW no_such_setting'));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'a dangerous SET', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(query('SET ROLE admin'));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'a SET with a bad value', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(query('SET extra_float_digits = 99'));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'several statements in one Query', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(query("SELECT count(*) FROM claims; SET gatehouse.purpose = 'research'"));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'several statements in one Parse', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(Buffer.concat([msg('P', Buffer.concat([Buffer.from('\0SELECT 1; SELECT 2\0'), Buffer.from([0, 0])])), msg('S', Buffer.alloc(0))]));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'COPY as a statement', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(query('COPY claims TO STDOUT'));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'COPY data without a COPY', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(msg('d', '1\t2\n'));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'Bind to a statement that does not exist', authenticated: true, async send() {
    const s = await ivan();
    s.raw.sock.write(Buffer.concat([msg('B', Buffer.from('\0nope\0\0\0\0\0\0\0')), msg('S', Buffer.alloc(0))]));
    const told = await firstError(s.raw);
    s.raw.end();
    return told;
  } },
  { name: 'a garbage start-up packet', authenticated: false, async send() {
    const r = await Raw.open(wire.port);
    r.sock.write(Buffer.from([0, 0, 0, 12, 0, 2, 0, 0, 1, 2, 3, 4]));
    return firstError(r);
  } },
  { name: 'an oversized start-up packet', authenticated: false, async send() {
    const r = await Raw.open(wire.port);
    const h = Buffer.alloc(8); h.writeInt32BE(1 << 30, 0); h.writeInt32BE(196608, 4);
    r.sock.write(h);
    return firstError(r);
  } },
  { name: 'a wrong password', authenticated: false, async send() {
    try { await login(wire.port, 'ivan', 'not-the-password', { purpose: PURPOSE.ivan }); } catch (err) { return { M: (err as Error).message, C: (err as { code: string }).code }; }
    assert.fail('the wrong password was accepted');
  } },
  { name: 'an unknown user', authenticated: false, async send() {
    try { await login(wire.port, 'mallory', 'guess', {}); } catch (err) { return { M: (err as Error).message, C: (err as { code: string }).code }; }
    assert.fail('an unknown user was accepted');
  } },
  { name: 'a SASL mechanism that was not offered', authenticated: false, async send() {
    const r = await Raw.open(wire.port);
    r.sock.write(startup({ user: 'ivan', database: 'gatehouse' }));
    await r.next();
    const body = Buffer.concat([Buffer.from('PLAIN\0'), Buffer.from([0, 0, 0, 3]), Buffer.from('x,y')]);
    r.sock.write(msg('p', body));
    return firstError(r);
  } },
  { name: 'an authentication that never finishes', authenticated: false, async send() {
    const r = await Raw.open(wire.port);
    r.sock.write(startup({ user: 'ivan', database: 'gatehouse' }));
    await r.next();
    return firstError(r, AUTH_TIMEOUT_MS + 2000);
  } },
  { name: 'a connection that sends nothing until the deadline', authenticated: false, async send() {
    const r = await Raw.open(wire.port);
    return firstError(r, AUTH_TIMEOUT_MS + 2000);
  } },
  { name: 'a client that leaves in the middle of SCRAM', authenticated: false, async send() {
    const r = await Raw.open(wire.port);
    r.sock.write(startup({ user: 'ivan', database: 'gatehouse' }));
    await r.next();
    r.end();
    return null;
  } },
  { name: 'a cancel with a wrong key', authenticated: false, async send() {
    const s = await ivan();
    const wrong = Buffer.from(s.secret.map((b) => b ^ 0xff));
    assert.equal(await sendCancel(wire.port, s.pid, wrong), 0);
    s.raw.end();
    return null;
  } },
  { name: 'one waiting connection too many from an address', authenticated: false, async send() {
    const held = await Promise.all([1, 2, 3].map(() => Raw.open(wire.port, '127.0.0.9')));
    const r = await Raw.open(wire.port, '127.0.0.9');
    const told = await firstError(r);
    for (const h of held) h.end(); // they sent nothing: no request, no entry
    return told;
  } },
];

const seen: { name: string; authenticated: boolean; entries: AuditRecord[] }[] = [];

/**
 * Every entry written from the first case on is given to exactly one case: `cursor` is where
 * the next case's entries start. A case waits for its first entry and a short quiet after it;
 * an entry that came later still than that lands in the next case (which then fails: two
 * entries), and the last test checks after a longer quiet that no entry was left over. So no
 * case needs a long quiet of its own to see a second entry.
 */
let cursor = -1;
const CASE_QUIET_MS = 60;
const FINAL_QUIET_MS = 500;

describe('every wire request leaves exactly one truthful audit entry', () => {
  for (const c of cases) {
    it(`${c.name}: one entry, saying what the client was told`, async () => {
      if (cursor < 0) { await settled(() => audit.entries.length, 100); cursor = audit.entries.length; }
      const n = cursor;
      const told = await c.send();
      await settledAfter(() => audit.entries.length, n + 1, CASE_QUIET_MS);
      const entries = audit.entries.slice(n);
      cursor = n + entries.length;
      seen.push({ name: c.name, authenticated: c.authenticated, entries });
      assert.equal(entries.length, 1, `entries (a late one may be the case before): ${JSON.stringify(entries.map((e) => [e.action, e.errorCode, e.reasons[0]]))}`);
      const e = entries[0]!;
      assert.equal(e.channel, 'pgwire');
      assert.notEqual(e.decision, 'allow');
      assert.ok(e.errorCode, 'the entry names the refusal');
      if (told) {
        assert.ok(e.reasons.includes(told.M!), `the client was told "${told.M}"; the entry says ${JSON.stringify(e.reasons)}`);
      }
    });
  }

  it('records the principal for every refusal on an authenticated connection', () => {
    const authed = seen.filter((s) => s.authenticated);
    assert.ok(authed.length >= 10);
    for (const s of authed) assert.equal(s.entries[0]?.principal, 'ivan', s.name);
  });

  it('records each refusal as deny or error exactly as the error table says', () => {
    assert.equal(seen.length, cases.length);
    for (const s of seen) assert.equal(s.entries[0]?.decision, outcomeOf(s.entries[0]!.errorCode as ErrorCode), s.name);
  });

  it('leaves no entry that no case accounts for', async () => {
    await settled(() => audit.entries.length, FINAL_QUIET_MS);
    assert.equal(cursor, audit.entries.length, `entries after the last case: ${JSON.stringify(audit.entries.slice(cursor).map((e) => [e.action, e.errorCode, e.reasons[0]]))}`);
  });

  it('records no principal before authentication', () => {
    const before = seen.filter((s) => !s.authenticated);
    assert.ok(before.length >= 8);
    for (const s of before) assert.equal(s.entries[0]?.principal, null, s.name);
  });
});
