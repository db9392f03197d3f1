/**
 * Hostile input at the wire front: malformed, truncated and oversized messages, start-up
 * without TLS where TLS is required, dangerous settings, COPY, LISTEN, multi-statement
 * queries and catalog queries reaching for datasets not granted. Each gets a clear
 * ErrorResponse, nothing runs, and the refusal is audited (channel pgwire).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import { startWireServer, type WireServer } from '../src/wire/server.ts';
import { demoFixture, KEYS, PURPOSE, type Fixture, type Who } from './helpers/workspace.ts';

class RecordingSink implements AuditSink {
  readonly entries: AuditRecord[] = [];
  async append(r: AuditRecord) { this.entries.push(r); return { auditId: String(this.entries.length - 1) }; }
  async close() {}
}

let fx: Fixture<null, WireServer>;
let wire: WireServer;
const audit = new RecordingSink();
const passwords: Partial<Record<Who, string>> = {};
const MAX = 64 * 1024;

before(async () => {
  fx = await demoFixture({ patients: 300, audit, wire: { maxMessageBytes: MAX } });
  wire = fx.wire;
  for (const who of ['ivan', 'ada'] as const) passwords[who] = (await fx.gh.issueConnectionPassword({ credential: KEYS[who], source: '127.0.0.1', channel: 'test' })).password;
});
after(async () => { await fx.close(); });

// ---- a raw client: start-up packet, SCRAM-SHA-256 (RFC 5802) with node:crypto ---------------

function startup(params: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0${v}\0`)]), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

function msg(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type.charCodeAt(0);
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}

class Raw {
  readonly sock: Socket;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;
  constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => { this.#buf = Buffer.concat([this.#buf, d]); this.#wake(); });
    sock.on('close', () => { this.closed = true; this.#wake(); });
    sock.on('error', () => undefined);
  }
  #wake() { for (const w of this.#waiters.splice(0)) w(); }
  static async open(): Promise<Raw> {
    const s = connect(wire.port, '127.0.0.1');
    await new Promise<void>((r, j) => { s.once('connect', r); s.once('error', j); });
    return new Raw(s);
  }
  /** Next backend message, or null once the server closed the connection. */
  async next(timeoutMs = 5000): Promise<{ type: string; body: Buffer } | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#buf.length >= 5) {
        const len = this.#buf.readInt32BE(1);
        if (this.#buf.length >= len + 1) {
          const m = { type: String.fromCharCode(this.#buf[0]!), body: Buffer.from(this.#buf.subarray(5, len + 1)) };
          this.#buf = this.#buf.subarray(len + 1);
          return m;
        }
      }
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error('no answer from the server');
      await new Promise<void>((r) => { this.#waiters.push(r); setTimeout(r, 50); });
    }
  }
  async until(type: string): Promise<{ type: string; body: Buffer }[]> {
    const seen: { type: string; body: Buffer }[] = [];
    for (;;) {
      const m = await this.next();
      if (!m) return seen;
      seen.push(m);
      if (m.type === type) return seen;
    }
  }
}

function fields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    out[String.fromCharCode(body[i]!)] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

async function authenticated(who: Who): Promise<Raw> {
  const r = await Raw.open();
  r.sock.write(startup({ user: who, database: 'gatehouse', options: `-c gatehouse.purpose=${PURPOSE[who]}` }));
  assert.equal((await r.next())!.type, 'R'); // AuthenticationSASL
  const nonce = randomBytes(18).toString('base64');
  const first = `n=*,r=${nonce}`;
  const init = Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), Buffer.alloc(4), Buffer.from(`n,,${first}`)]);
  init.writeInt32BE(Buffer.byteLength(`n,,${first}`), 14);
  r.sock.write(msg('p', init));
  const cont = (await r.next())!;
  const serverFirst = cont.body.subarray(4).toString();
  const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
  const salted = pbkdf2Sync(passwords[who]!, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const stored = createHash('sha256').update(clientKey).digest();
  const without = `c=biws,r=${attrs.r}`;
  const sig = createHmac('sha256', stored).update(`${first},${serverFirst},${without}`).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
  r.sock.write(msg('p', Buffer.from(`${without},p=${proof.toString('base64')}`)));
  const rest = await r.until('Z');
  assert.ok(rest.some((m) => m.type === 'R' && m.body.readInt32BE(0) === 0), 'AuthenticationOk');
  return r;
}

function client(who: Who): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: wire.port, user: who, password: passwords[who], database: 'gatehouse', options: `-c gatehouse.purpose=${PURPOSE[who]}` });
}

const since = (n: number) => audit.entries.slice(n);

describe('wire front under hostile input', () => {
  it('refuses an oversized message from its length header alone, before its body arrives, and audits it', async () => {
    const r = await authenticated('ivan');
    const n = audit.entries.length;
    const head = Buffer.alloc(5);
    head[0] = 'Q'.charCodeAt(0);
    head.writeInt32BE(200 * 1024 * 1024, 1); // 200 MiB announced, 5 bytes sent
    r.sock.write(head);
    const e = await r.next();
    assert.equal(e?.type, 'E');
    assert.equal(fields(e!.body).C, '54000');
    assert.match(fields(e!.body).M, /exceeds the 65536-byte limit/);
    assert.equal(await r.next(), null, 'the connection is closed');
    assert.ok(since(n).some((a) => a.action === 'pgwire.protocol' && a.channel === 'pgwire'));
  });

  it('ends the connection with 08P01 on a truncated Bind, and audits it', async () => {
    const r = await authenticated('ivan');
    const n = audit.entries.length;
    r.sock.write(msg('B', Buffer.from('\0\0\0\x01\0'))); // portal, statement, one format code cut short
    const e = await r.next();
    assert.equal(e?.type, 'E');
    assert.equal(fields(e!.body).C, '08P01');
    assert.match(fields(e!.body).M, /truncated/);
    assert.equal(await r.next(), null);
    assert.ok(since(n).some((a) => a.action === 'pgwire.protocol'));
  });

  it('refuses a message length below the header size and a garbage start-up packet', async () => {
    const r = await authenticated('ivan');
    const bad = Buffer.from([0x51, 0, 0, 0, 2]);
    r.sock.write(bad);
    const e = await r.next();
    assert.equal(fields(e!.body).C, '08P01');
    const g = await Raw.open();
    g.sock.write(Buffer.from([0, 0, 0, 12, 0, 2, 0, 0, 1, 2, 3, 4])); // protocol 2.0
    const e2 = await g.next();
    assert.equal(e2?.type, 'E');
    assert.match(fields(e2!.body).M, /unsupported frontend protocol 2\.0/);
    const h = await Raw.open();
    const huge = Buffer.alloc(8);
    huge.writeInt32BE(1 << 30, 0);
    huge.writeInt32BE(196608, 4);
    h.sock.write(huge);
    const e3 = await h.next();
    assert.match(fields(e3!.body).M, /invalid start-up packet length/);
    assert.equal(await h.next(), null);
  });

  it('refuses start-up without TLS where TLS is required, and audits it', async () => {
    const tlsWire = await startWireServer({ gatehouse: fx.gh, host: '127.0.0.1', port: 0, tls: selfSigned() });
    try {
      const n = audit.entries.length;
      const c = new pg.Client({ host: '127.0.0.1', port: tlsWire.port, user: 'ivan', password: passwords.ivan, database: 'gatehouse', ssl: false });
      await assert.rejects(c.connect(), /accepts only TLS connections/);
      assert.ok(since(n).some((a) => a.action === 'pgwire.startup' && a.errorCode === 'AUTH_REQUIRED'));
      const ok = new pg.Client({ host: '127.0.0.1', port: tlsWire.port, user: 'ivan', password: passwords.ivan, database: 'gatehouse', ssl: { rejectUnauthorized: false }, options: '-c gatehouse.purpose=claims-processing' });
      await ok.connect();
      try { assert.equal((await ok.query('SELECT count(*) AS n FROM claims')).rows.length, 1); } finally { await ok.end(); }
    } finally { await tlsWire.close(); }
  });

  it('refuses dangerous settings at start-up and with SET (42501), audited, and keeps the session', async () => {
    const n = audit.entries.length;
    const bad = new pg.Client({ host: '127.0.0.1', port: wire.port, user: 'ivan', password: passwords.ivan, database: 'gatehouse', options: '-c role=admin' });
    await assert.rejects(bad.connect(), (e: { code?: string }) => e.code === '42501');
    const c = client('ivan');
    await c.connect();
    try {
      for (const sql of ['SET ROLE admin', "SET SESSION AUTHORIZATION 'ada'", 'SET default_transaction_read_only = off', "SET enable_external_access = 'true'", 'SET statement_timeout = 999999999']) {
        await assert.rejects(c.query(sql), (e: { code?: string }) => e.code === '42501', sql);
      }
      await c.query("SET application_name = 'dbeaver'");
      await c.query('SET extra_float_digits = 3');
      await c.query("SET search_path = public");
      assert.equal((await c.query('SHOW application_name')).rows[0].application_name, 'dbeaver');
      assert.equal((await c.query('SELECT count(*) AS n FROM claims')).rows.length, 1, 'the session is still usable');
    } finally { await c.end(); }
    const refusals = since(n).filter((a) => a.action === 'pgwire.set' || a.action === 'pgwire.startup');
    assert.equal(refusals.length, 6);
    assert.ok(refusals.every((a) => a.channel === 'pgwire' && a.errorCode === 'POLICY_DENIED'));
  });

  it('refuses COPY, LISTEN, DO, CALL and DML through the governed parser, audited, nothing executed', async () => {
    const c = client('ada');
    await c.connect();
    try {
      for (const sql of ['COPY patients TO STDOUT', 'LISTEN alerts', "NOTIFY alerts, 'x'", "DO $$ BEGIN END $$", 'CALL p()', 'DELETE FROM patients', 'CREATE TABLE x (a int)']) {
        const n = audit.entries.length;
        await assert.rejects(c.query(sql), (e: { code?: string; message?: string }) => e.code === '0A000' && /only SELECT is allowed/.test(e.message ?? ''), sql);
        const entries = since(n);
        assert.equal(entries.length, 1, sql);
        assert.equal(entries[0]!.channel, 'pgwire');
        assert.equal(entries[0]!.errorCode, 'SQL_UNSUPPORTED');
      }
      assert.equal((await c.query('SELECT count(*) AS n FROM patients')).rows.length, 1);
    } finally { await c.end(); }
  });

  it('refuses a multi-statement simple query as a whole: nothing of it runs', async () => {
    const c = client('ada');
    await c.connect();
    try {
      const n = audit.entries.length;
      await assert.rejects(c.query("SELECT count(*) FROM patients; SET gatehouse.purpose = 'research'"), (e: { code?: string }) => e.code === '0A000');
      const entries = since(n);
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.action, 'pgwire.query');
      assert.equal((await c.query('SHOW gatehouse.purpose')).rows[0]['gatehouse.purpose'], 'operations', 'the SET did not run');
    } finally { await c.end(); }
  });

  it('shows only granted datasets in pg_catalog and information_schema, and refuses catalog queries that read data', async () => {
    const c = client('ivan'); // ivan may see claims and patients, not encounters
    await c.connect();
    try {
      const tables = await c.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1");
      assert.deepEqual(tables.rows.map((r) => r.table_name), ['claims', 'patients']);
      assert.equal((await c.query("SELECT relname FROM pg_catalog.pg_class WHERE relname = 'encounters'")).rows.length, 0);
      assert.equal((await c.query("SELECT column_name FROM information_schema.columns WHERE table_name = $1", ['encounters'])).rows.length, 0);
      const n = audit.entries.length;
      await assert.rejects(c.query('SELECT e.* FROM encounters e JOIN pg_catalog.pg_class c ON true'), (e: { code?: string; message?: string }) => e.code === '42501' && /catalog query cannot read datasets/.test(e.message ?? ''));
      await assert.rejects(c.query('SELECT * FROM encounters'), (e: { code?: string }) => e.code === '42501');
      const entries = since(n);
      assert.deepEqual(entries.map((a) => [a.action, a.decision]), [['pgwire.catalog', 'deny'], ['query', 'deny']]);
      // A catalog query is answered from empty tables: no row of any dataset is reachable.
      const empty = await c.query('SELECT count(*) AS n FROM information_schema.columns c, pg_catalog.pg_namespace n');
      assert.ok(Number(empty.rows[0].n) >= 0);
    } finally { await c.end(); }
  });

  it('refuses COPY data and function-call messages with 0A000 and stays ready', async () => {
    const r = await authenticated('ivan');
    r.sock.write(msg('d', Buffer.from('1\t2\n')));
    const seen = await r.until('Z');
    const e = seen.find((m) => m.type === 'E');
    assert.equal(fields(e!.body).C, '0A000');
    r.sock.write(msg('Q', Buffer.from('SELECT count(*) AS n FROM claims\0')));
    const q = await r.until('Z');
    assert.deepEqual(q.map((m) => m.type), ['T', 'D', 'C', 'Z']);
    r.sock.end();
  });
});

/** A self-signed certificate for 127.0.0.1, made with the openssl binary for this run. */
function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-wire-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}
