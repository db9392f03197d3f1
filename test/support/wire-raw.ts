/**
 * A raw PostgreSQL protocol v3 client for hostile wire tests: it writes whatever bytes a test
 * asks for (truncated, oversized, out of order), binds to any loopback source address, and
 * speaks SCRAM-SHA-256 (RFC 5802 / RFC 7677) with node:crypto, so a test can authenticate
 * and then misbehave, or read BackendKeyData and send a CancelRequest on a new connection.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface Message { readonly type: string; readonly body: Buffer }

export function startup(params: Record<string, string>): Buffer {
  const body = Buffer.concat([...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

export function msg(type: string, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const h = Buffer.alloc(5);
  h[0] = type.charCodeAt(0);
  h.writeInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
}

export const query = (sql: string): Buffer => msg('Q', `${sql}\0`);

/** ErrorResponse / NoticeResponse fields by their one-letter code (S, C, M, D, H …). */
export function fields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    out[String.fromCharCode(body[i]!)] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

export class Raw {
  readonly sock: Socket;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;
  /** Every byte the server sent (a CancelRequest must be answered by none). */
  received = 0;

  constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => { this.received += d.length; this.#buf = Buffer.concat([this.#buf, d]); this.#wake(); });
    sock.on('close', () => { this.closed = true; this.#wake(); });
    sock.on('error', () => undefined);
  }

  #wake(): void { for (const w of this.#waiters.splice(0)) w(); }

  static async open(port: number, from = '127.0.0.1'): Promise<Raw> {
    const s = connect({ port, host: '127.0.0.1', localAddress: from });
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
    return new Raw(s);
  }

  /** Next backend message, or null once the server closed the connection. */
  async next(timeoutMs = 5000): Promise<Message | null> {
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
      await new Promise<void>((r) => { this.#waiters.push(r); setTimeout(r, 20); });
    }
  }

  /** Messages up to and including the first of `type` (or all until the connection closed). */
  async until(type: string, timeoutMs = 5000): Promise<Message[]> {
    const seen: Message[] = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      if (!m) return seen;
      seen.push(m);
      if (m.type === type) return seen;
    }
  }

  /** Resolves true once the server has closed the connection, false after `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await new Promise<void>((r) => { this.#waiters.push(r); setTimeout(r, 20); });
    return this.closed;
  }

  end(): void { this.sock.destroy(); }
}

export interface Session { readonly raw: Raw; readonly pid: number; readonly secret: Buffer }

/** Start-up and SCRAM-SHA-256 as `user`; returns the session with its BackendKeyData. */
export async function login(port: number, user: string, password: string, options: { purpose?: string; from?: string } = {}): Promise<Session> {
  const r = await Raw.open(port, options.from);
  r.sock.write(startup({ user, database: 'gatehouse', ...(options.purpose ? { options: `-c gatehouse.purpose=${options.purpose}` } : {}) }));
  const sasl = await r.next();
  assert.equal(sasl?.type, 'R', `AuthenticationSASL expected, got ${sasl?.type} ${sasl ? JSON.stringify(fields(sasl.body)) : ''}`);
  const nonce = randomBytes(18).toString('base64');
  const first = `n=*,r=${nonce}`;
  const init = Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), Buffer.alloc(4), Buffer.from(`n,,${first}`)]);
  init.writeInt32BE(Buffer.byteLength(`n,,${first}`), 14);
  r.sock.write(msg('p', init));
  const cont = (await r.next())!;
  const serverFirst = cont.body.subarray(4).toString();
  const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const stored = createHash('sha256').update(clientKey).digest();
  const without = `c=biws,r=${attrs.r}`;
  const sig = createHmac('sha256', stored).update(`${first},${serverFirst},${without}`).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
  r.sock.write(msg('p', `${without},p=${proof.toString('base64')}`));
  const rest = await r.until('Z');
  const failed = rest.find((m) => m.type === 'E');
  if (failed) throw Object.assign(new Error(fields(failed.body).M), { code: fields(failed.body).C, raw: r });
  const key = rest.find((m) => m.type === 'K');
  assert.ok(key, 'BackendKeyData is sent at start-up');
  return { raw: r, pid: key.body.readInt32BE(0), secret: Buffer.from(key.body.subarray(4)) };
}

/** Sends a CancelRequest on a new connection; resolves with the bytes the server answered before closing. */
export async function sendCancel(port: number, pid: number, secret: Buffer, from = '127.0.0.1'): Promise<number> {
  const r = await Raw.open(port, from);
  const p = Buffer.alloc(16);
  p.writeInt32BE(16, 0);
  p.writeInt32BE(80877102, 4);
  p.writeInt32BE(pid, 8);
  secret.copy(p, 12);
  r.sock.write(p);
  assert.ok(await r.closedWithin(3000), 'the server closes a cancel connection');
  return r.received;
}

/**
 * Waits until `count()` has reached `atLeast`, then until it has not changed for `quietMs`
 * (or `maxMs` in all): for a caller that knows an entry is coming and needs only a short quiet
 * after it, instead of a long quiet from the start.
 */
export async function settledAfter(count: () => number, atLeast: number, quietMs = 50, maxMs = 3000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (count() < atLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await settled(count, quietMs, Math.max(0, deadline - Date.now()));
}

/** Waits until `count()` has not changed for `quietMs` (audit entries are written asynchronously). */
export async function settled(count: () => number, quietMs = 150, maxMs = 3000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = count();
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    const n = count();
    if (n !== last) { last = n; since = Date.now(); } else if (Date.now() - since >= quietMs) return;
  }
}
