/**
 * Mutual TLS between nodes, with pinned keys instead of a CA (DESIGN.md invariant 12).
 *
 * Both ends present their self-signed Ed25519 certificate (identity.ts) over TLS 1.3 only.
 * Neither end asks OpenSSL to validate a chain (there is no CA to validate against):
 * TLS 1.3's CertificateVerify already proves the peer holds the private key of the
 * certificate it showed, so each end then compares that certificate's public key with the
 * key pinned for the peer (`socket.getPeerX509Certificate()`):
 *   - the client checks the server's key before it writes a single byte of the request
 *     (the agent hands the socket to HTTP only after the check), so a request is never
 *     sent to an impostor;
 *   - the listener drops a connection whose client key no peer pin holds, and then
 *     verifies the signed envelope of each request (envelope.ts).
 *
 * The node listener is its own server on its own port, separate from the partner-facing
 * HTTP API and wire protocol: partners can never reach a node route, and nodes never reach
 * partner routes. Requests are `POST /federation/v1/<operation>` with a JSON body.
 *
 * Binary bodies (issue 17: PSI sends millions of 32-byte points): a request may instead be
 * `application/cbor` (RFC 8949), where byte strings travel as bytes, not base64 (a third
 * smaller); the answer then comes in CBOR too. The envelope signs the body bytes either way.
 * `FederationClient.callBinary` sends one; handlers see the same decoded values, with
 * Uint8Array for byte strings.
 */
import { createServer, type Server } from 'node:https';
import { Agent, request as httpRequest, type ClientRequestArgs, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { decode as decodeCbor, encode as encodeCbor } from 'cbor2';
import { GatehouseError, isErrorCode } from '../errors.ts';
import { FederationError } from './errors.ts';
import { publicKeyText, type NodeIdentity } from './identity.ts';
import { ReplayCache, signRequest, signResponse, verifyRequest, verifyResponse } from './envelope.ts';
import type { PeerPin, PeerRegistry } from './peers.ts';

const PATH_PREFIX = '/federation/v1/';
/** The binary body type (RFC 8949); anything else is JSON. */
const CBOR = 'application/cbor';
const OPERATION = /^[a-z][a-z0-9-]{0,63}$/;

/** The key text of the certificate the other end of a TLS socket presented, or null. */
export function peerKeyOf(socket: TLSSocket): string | null {
  try {
    const cert = socket.getPeerX509Certificate();
    return cert ? publicKeyText(cert.publicKey) : null;
  } catch {
    return null;
  }
}

export interface NodeCall {
  readonly operation: string;
  /** The authenticated, pinned peer (its region is the pinned one). */
  readonly peer: PeerPin;
  readonly requestId: string;
  readonly body: unknown;
}

export type NodeHandler = (call: NodeCall) => Promise<unknown>;

export interface NodeListenerOptions {
  readonly identity: NodeIdentity;
  readonly peers: PeerRegistry;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly handlers: Readonly<Record<string, NodeHandler>>;
  /** Injected clock (ms since the epoch); default Date.now. */
  readonly now?: () => number;
  readonly clockSkewSeconds?: number;
  readonly maxBodyBytes?: number;
  /**
   * How long an idle node connection stays open (default 60 s; Node's own default is 5 s).
   * A forwarded query on a kept connection costs one round trip; on a new one, TCP and the
   * TLS handshake add two more. (TLS 1.3 session resumption would save no round trip, only
   * the certificate work, so it is not used.)
   */
  readonly keepAliveMs?: number;
  /** Called for every refused connection or message (for the operator log; never the body). */
  readonly onRefused?: (reason: FederationError) => void;
}

export interface NodeListener {
  readonly port: number;
  readonly host: string;
  readonly server: Server;
  close(): Promise<void>;
}

function errorBody(err: unknown): { status: number; body: Record<string, unknown> } {
  const e = err instanceof GatehouseError ? err : new GatehouseError('INTERNAL', 'internal error on the peer node; nothing was released', { cause: err });
  return { status: e.status, body: { error: { ...e.toJSON(), detail: e.detail } } };
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) { reject(new FederationError('NODE_ENVELOPE_INVALID', `the node message is larger than ${max} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Starts the node-to-node listener. */
export async function startNodeListener(options: NodeListenerOptions): Promise<NodeListener> {
  const { identity, peers } = options;
  const now = options.now ?? Date.now;
  const skewMs = (options.clockSkewSeconds ?? 30) * 1000;
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const replay = new ReplayCache();
  const refused = (e: FederationError): void => { options.onRefused?.(e); };

  const server = createServer({
    key: identity.keyPem, cert: identity.certPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3',
    requestCert: true, rejectUnauthorized: false,
  }, (req: IncomingMessage, res: ServerResponse) => { void handle(req, res); });
  server.keepAliveTimeout = options.keepAliveMs ?? 60_000;

  // Drop a connection from an unpinned key before any HTTP is parsed.
  server.on('secureConnection', (socket: TLSSocket) => {
    const key = peerKeyOf(socket);
    if (key === null || peers.byKey(key) === null) {
      refused(new FederationError('NODE_UNKNOWN', key === null ? 'a node connected without a client certificate' : 'a node connected with a key no peer pin holds'));
      socket.destroy();
    }
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Until the envelope is verified, bind the answer to what the request claimed, so even a
    // refusal is signed and the caller can tell it came from this node.
    const claimed = (name: string): string => { const v = req.headers[name]; return typeof v === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(v) ? v : '-'; };
    let requestId = claimed('gatehouse-request-id');
    let nonce = claimed('gatehouse-nonce');
    let to = claimed('gatehouse-node');
    let status = 200;
    let body: Record<string, unknown>;
    const binary = req.headers['content-type'] === CBOR;
    try {
      const raw = await readBody(req, maxBody);
      const key = peerKeyOf(req.socket as TLSSocket);
      if (key === null) throw new FederationError('NODE_UNKNOWN', 'no client certificate was presented');
      const url = req.url ?? '';
      if (req.method !== 'POST' || !url.startsWith(PATH_PREFIX)) throw new GatehouseError('NOT_FOUND', 'no such node route', { hint: 'node routes are POST /federation/v1/<operation>' });
      const operation = url.slice(PATH_PREFIX.length);
      const verified = verifyRequest({ self: identity, peers, tlsKey: key, method: 'POST', path: url, headers: req.headers, body: raw, replay, now: now(), skewMs });
      requestId = verified.requestId;
      nonce = verified.nonce;
      to = verified.peer.nodeId;
      const handler = OPERATION.test(operation) && Object.hasOwn(options.handlers, operation) ? options.handlers[operation] : undefined;
      if (!handler) throw new GatehouseError('NOT_FOUND', `this node offers no operation "${operation.slice(0, 64)}"`);
      let parsed: unknown;
      try { parsed = binary ? decodeCbor(raw) : JSON.parse(raw.toString('utf8')); } catch { throw new FederationError('NODE_ENVELOPE_INVALID', `the node message body is not ${binary ? 'CBOR' : 'JSON'}`); }
      body = { result: await handler({ operation, peer: verified.peer, requestId, body: parsed }) };
    } catch (err) {
      if (err instanceof FederationError) refused(err);
      ({ status, body } = errorBody(err));
    }
    const text: string | Uint8Array = binary ? encodeCbor(body) : JSON.stringify(body);
    const sig = signResponse(identity, to, requestId, nonce, status, text);
    res.writeHead(status, { 'content-type': binary ? CBOR : 'application/json', 'content-length': typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength, ...sig });
    res.end(text);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address() as AddressInfo;
  return {
    port: addr.port,
    host: addr.address,
    server,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** An HTTP agent whose connections are TLS to one pinned peer, checked before use. */
class PinnedAgent extends Agent {
  readonly #identity: NodeIdentity;
  readonly #peer: PeerPin;

  constructor(identity: NodeIdentity, peer: PeerPin) {
    super({ keepAlive: true, maxSockets: 16 });
    this.#identity = identity;
    this.#peer = peer;
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    const peer = this.#peer;
    const socket = connect({
      host: options.host ?? undefined, port: Number(options.port), servername: undefined,
      key: this.#identity.keyPem, cert: this.#identity.certPem,
      minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false,
    });
    socket.setNoDelay(true);
    const fail = (err: Error): void => { socket.destroy(); callback?.(err, socket); };
    socket.once('error', (err) => fail(unreachable(peer, err)));
    socket.once('secureConnect', () => {
      socket.removeAllListeners('error');
      const key = peerKeyOf(socket);
      if (key !== peer.publicKey) {
        fail(new FederationError('NODE_KEY_MISMATCH', `the node at ${peer.url} does not hold the key pinned for "${peer.nodeId}"`, 'nothing was sent to it; check the peer\'s URL and pinned key'));
        return;
      }
      callback?.(null, socket);
    });
    return undefined;
  }
}

function unreachable(peer: PeerPin, cause: unknown): FederationError {
  return new FederationError('NODE_UNREACHABLE', `node "${peer.nodeId}" in region ${peer.region} cannot be reached`, 'the answer would be incomplete, so none was given; retry when the region is reachable', { cause });
}

export interface CallResult<T> {
  readonly result: T;
  readonly peer: PeerPin;
  /** The peer's signature over the answer (envelope.ts), for the audit entry. */
  readonly signature: string;
}

export interface FederationClientOptions {
  readonly identity: NodeIdentity;
  readonly peers: PeerRegistry;
  readonly now?: () => number;
  /** Per call, default 30 s. */
  readonly timeoutMs?: number;
}

/** Calls operations on pinned peers; every answer is checked against the peer's pinned key. */
export class FederationClient {
  readonly #options: FederationClientOptions;
  readonly #agents = new Map<string, PinnedAgent>();

  constructor(options: FederationClientOptions) {
    this.#options = options;
  }

  #agent(peer: PeerPin): PinnedAgent {
    let a = this.#agents.get(peer.nodeId);
    if (!a) { a = new PinnedAgent(this.#options.identity, peer); this.#agents.set(peer.nodeId, a); }
    return a;
  }

  /** POSTs `body` to `operation` on `nodeId`; rethrows the peer's refusal as a GatehouseError with its code. */
  call<T>(nodeId: string, operation: string, body: unknown, requestId: string = randomUUID(), timeoutMs?: number): Promise<CallResult<T>> {
    return this.#call<T>(nodeId, operation, body, requestId, timeoutMs, false);
  }

  /** As `call`, with a CBOR body and answer: Uint8Array values travel as bytes. */
  callBinary<T>(nodeId: string, operation: string, body: unknown, requestId: string = randomUUID(), timeoutMs?: number): Promise<CallResult<T>> {
    return this.#call<T>(nodeId, operation, body, requestId, timeoutMs, true);
  }

  async #call<T>(nodeId: string, operation: string, body: unknown, requestId: string, timeoutMs: number | undefined, binary: boolean): Promise<CallResult<T>> {
    const { identity, peers } = this.#options;
    const peer = peers.get(nodeId);
    const path = PATH_PREFIX + operation;
    const text: string | Uint8Array = binary ? encodeCbor(body) : JSON.stringify(body);
    const signed = signRequest(identity, peer.nodeId, 'POST', path, requestId, text, (this.#options.now ?? Date.now)());
    const url = new URL(peer.url);
    const { status, headers, raw } = await new Promise<{ status: number; headers: IncomingMessage['headers']; raw: Buffer }>((resolve, reject) => {
      const req = httpRequest({
        host: url.hostname, port: Number(url.port), method: 'POST', path, agent: this.#agent(peer),
        headers: { 'content-type': binary ? CBOR : 'application/json', 'content-length': typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength, ...signed.headers },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, raw: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(unreachable(peer, err)));
      });
      req.setTimeout(timeoutMs ?? this.#options.timeoutMs ?? 30_000, () => {
        req.destroy(new FederationError('NODE_UNREACHABLE', `node "${peer.nodeId}" in region ${peer.region} did not answer in time`, 'the answer would be incomplete, so none was given; retry when the region is reachable'));
      });
      req.on('error', (err) => reject(err instanceof FederationError ? err : unreachable(peer, err)));
      req.end(text);
    });
    const signature = verifyResponse(peer, identity.nodeId, requestId, signed.nonce, status, headers, raw);
    let parsed: { result?: T; error?: { code: string; message: string; hint: string | null; reasons: string[]; detail: string | null } };
    try { parsed = binary && headers['content-type'] === CBOR ? decodeCbor(raw) as typeof parsed : JSON.parse(raw.toString('utf8')); } catch { throw new FederationError('PEER_ERROR', `node "${peer.nodeId}" sent an answer that is not ${binary ? 'CBOR' : 'JSON'}`); }
    if (status !== 200 || parsed.error) {
      const e = parsed.error;
      const code = e && isErrorCode(e.code) ? e.code : 'INTERNAL';
      throw new GatehouseError(code, e?.message ?? `node "${peer.nodeId}" refused the request`, { hint: e?.hint ?? null, reasons: e?.reasons ?? [], detail: e?.detail ?? null });
    }
    return { result: parsed.result as T, peer, signature };
  }

  close(): void {
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }
}
