/**
 * The first look at every byte a client sends: message framing is checked as bytes arrive,
 * before anything buffers a whole message. A length header below the minimum or above the
 * limit ends the connection at once (the body is never read into memory), and the start-up
 * phase accepts only well-formed start-up packets of at most 10,000 bytes (PostgreSQL's
 * own limit). Chunks that pass are copied into fresh buffers for pg-gateway (whose message
 * buffer assumes a zero byte offset).
 */
import type { Socket } from 'node:net';
import type { DuplexStream } from 'pg-gateway';
import { STARTUP } from './protocol.ts';

export const MAX_STARTUP_BYTES = 10_000;

export interface FeedResult {
  /** Bytes that passed the checks. */
  readonly pass: Buffer;
  /** Set when the stream broke the framing rules; nothing after `pass` may be processed. */
  readonly violation: string | null;
  /** An SSLRequest was accepted: the raw socket is handed to TLS next. */
  readonly handoff: boolean;
}

export class FrameGuard {
  readonly #max: number;
  readonly #allowSsl: boolean;
  /** Without TLS configured, an SSLRequest is declined ('N', by the connection) and start-up goes on in plain text, as PostgreSQL does. */
  readonly #declineSsl: boolean;
  #sslDeclined = false;
  #startup = true;
  #header = Buffer.alloc(0);
  #need = 0;
  #code = 0;
  #done = false;

  constructor(options: { maxMessageBytes: number; allowSsl: boolean; declineSsl?: boolean }) {
    this.#max = options.maxMessageBytes;
    this.#allowSsl = options.allowSsl;
    this.#declineSsl = options.declineSsl ?? false;
  }

  feed(chunk: Buffer): FeedResult {
    if (this.#done) return { pass: Buffer.alloc(0), violation: 'data after the connection was handed over', handoff: false };
    let i = 0;
    while (i < chunk.length) {
      if (this.#need > 0) {
        const take = Math.min(this.#need, chunk.length - i);
        i += take;
        this.#need -= take;
        if (this.#need === 0) {
          const r = this.#end(chunk, i);
          if (r) return r;
        }
        continue;
      }
      const hlen = this.#startup ? 8 : 5;
      const take = Math.min(hlen - this.#header.length, chunk.length - i);
      this.#header = Buffer.concat([this.#header, chunk.subarray(i, i + take)]);
      i += take;
      if (this.#header.length < hlen) break;
      if (this.#startup) {
        const len = this.#header.readInt32BE(0);
        this.#code = this.#header.readInt32BE(4);
        if (len < 8 || len > MAX_STARTUP_BYTES) return this.#fail(chunk, i - take, `invalid start-up packet length ${len}`);
        if (this.#code === STARTUP.ssl && !this.#allowSsl && (!this.#declineSsl || this.#sslDeclined)) return this.#fail(chunk, i - take, 'SSLRequest is not allowed here');
        this.#need = len - 8;
      } else {
        const len = this.#header.readInt32BE(1);
        if (len < 4) return this.#fail(chunk, i - take, `invalid message length ${len}`);
        if (len + 1 > this.#max) return this.#fail(chunk, i - take, `message of ${len + 1} bytes exceeds the ${this.#max}-byte limit`);
        this.#need = len - 4;
      }
      this.#header = Buffer.alloc(0);
      if (this.#need === 0) {
        const r = this.#end(chunk, i);
        if (r) return r;
      }
    }
    return { pass: Buffer.from(chunk), violation: null, handoff: false };
  }

  #fail(chunk: Buffer, upTo: number, why: string): FeedResult {
    this.#done = true;
    return { pass: Buffer.from(chunk.subarray(0, Math.max(0, upTo))), violation: why, handoff: false };
  }

  /** End of one message at offset `at` of `chunk`. */
  #end(chunk: Buffer, at: number): FeedResult | null {
    if (!this.#startup) return null;
    if (this.#code === STARTUP.protocol3) { this.#startup = false; return null; }
    if (this.#code === STARTUP.ssl && !this.#allowSsl) {
      // Declined: the client goes on with a plain start-up packet (only once).
      this.#sslDeclined = true;
      return null;
    }
    if (this.#code === STARTUP.ssl && this.#allowSsl) {
      this.#done = true;
      if (at < chunk.length) return { pass: Buffer.from(chunk.subarray(0, at)), violation: 'data sent before the TLS handshake', handoff: false };
      return { pass: Buffer.from(chunk.subarray(0, at)), violation: null, handoff: true };
    }
    return null; // GSSENCRequest, CancelRequest or an unknown code: answered by the connection.
  }
}

/**
 * A web-streams duplex over a Node socket (plain or TLS) with the guard in front of the
 * readable side. `onViolation` is called once, after the passing bytes were delivered.
 */
export function guardedDuplex(sock: Socket, guard: FrameGuard, hooks: { onViolation(why: string): void; onHandoff(): void }): DuplexStream<Uint8Array> {
  let ctrl!: ReadableStreamDefaultController<Uint8Array>;
  let finished = false;
  const finish = (): void => { if (!finished) { finished = true; try { ctrl.close(); } catch { /* already closed */ } } };
  const onData = (chunk: Buffer): void => {
    if (finished) return;
    const r = guard.feed(chunk);
    if (r.pass.length) ctrl.enqueue(new Uint8Array(r.pass));
    if (r.violation) { sock.off('data', onData); sock.pause(); hooks.onViolation(r.violation); return; }
    if (r.handoff) { sock.off('data', onData); sock.pause(); hooks.onHandoff(); return; }
    if ((ctrl.desiredSize ?? 1) <= 0) sock.pause();
  };
  const readable = new ReadableStream<Uint8Array>({
    start(c) { ctrl = c; },
    pull() { if (!finished) sock.resume(); },
    cancel() { finished = true; },
  }, { highWaterMark: 16 });
  sock.on('data', onData);
  sock.once('end', finish);
  sock.once('close', finish);
  sock.on('error', () => finish());
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (sock.destroyed) return; // the connection is gone (shutdown, client left): the answer has no reader
      if (chunk.byteLength === 0) return;
      if (!sock.write(chunk)) await new Promise<void>((resolve) => { sock.once('drain', resolve); sock.once('close', resolve); });
    },
    close() { sock.end(); },
    abort() { sock.destroy(); },
  });
  return { readable, writable };
}
