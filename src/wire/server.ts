/**
 * The PostgreSQL wire-protocol front (protocol v3, on pg-gateway 0.3.0-beta.4).
 *
 * psql, node-postgres, JDBC and BI tools connect, authenticate with SCRAM-SHA-256 against a
 * Gatehouse connection password (or a TLS client certificate mapped to a principal), and
 * every statement goes through the one request path: governed SELECTs to `query`, catalog
 * introspection to `catalogQuery` (src/operations/catalog/: allowlisted, data-free). Session
 * commands (SET/SHOW of an allowlist, BEGIN/COMMIT/ROLLBACK as no-ops) are answered here;
 * refused ones are audited with `rejectRequest`. Errors reach the client as ErrorResponse
 * with SQLSTATE codes (src/wire/sqlstate.ts) and the connection stays usable.
 *
 * pg-gateway does the start-up, TLS negotiation and SCRAM exchange; everything after
 * authentication is decoded and answered here (src/wire/protocol.ts), because beta.4
 * never calls onQuery. Framing is checked before pg-gateway buffers anything
 * (src/wire/framing.ts).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { PostgresConnection, type DuplexStream, type TlsInfo } from 'pg-gateway';
import { asGatehouseError, GatehouseError } from '../errors.ts';
import type { Credential } from '../identity/credentials.ts';
import type { RequestMeta } from '../pipeline/gatehouse.ts';
import type { CellValue } from '../model/result.ts';
import { Admission, type AdmissionTicket } from './admission.ts';
import type { ScramVerifier, WireBackend } from './backend.ts';
import type { QueryRequest, QueryResponse } from '../pipeline/gatehouse.ts';
import { CancelKeys, parseCancelRequest, type CancelKey } from './cancel.ts';
import { SERVER_VERSION, type CatalogSession } from '../catalog/functions.ts';
import { classify, loadParser, type Classified } from './classify.ts';
import { FrameGuard, guardedDuplex } from './framing.ts';
import { decodeFrontend, enc, ProtocolViolation, Reader, STARTUP, type FieldDescription, type Frontend } from './protocol.ts';
import { parseStartupOptions, SessionSettings } from './settings.ts';
import { WireRefusal, wireError } from './sqlstate.ts';
import { protectionReport, type ProtectionNotice } from './protections.ts';
import { binaryParamText, binarySupported, binaryValue, OID, pgTypeOf, textValue, type PgType } from './types.ts';

export interface WireServerOptions {
  readonly gatehouse: WireBackend;
  /** A federated node's residency node: governed queries are routed through it (docs/residency.md). */
  readonly router?: { query(req: QueryRequest): Promise<QueryResponse> };
  readonly host: string;
  readonly port: number;
  /** TLS (PEM). With `requestClientCert`, clients may authenticate with a certificate signed by `ca`. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer; readonly ca?: string | Buffer; readonly requestClientCert?: boolean };
  /** Refuse start-up without TLS. Default: true when `tls` is given (TLS, when configured, is always required). */
  readonly requireTls?: boolean;
  /** Largest frontend message accepted (bytes); larger ones end the connection before they are read. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Authenticated sessions open at once; one more is refused with FATAL 53300. Default 100. */
  readonly maxConnections?: number;
  /** Connections waiting to authenticate, in all; one more is refused with FATAL 53300. Default 64. */
  readonly maxUnauthenticated?: number;
  /** Connections waiting to authenticate from one address (an IPv6 /64 counts as one). Default 8. */
  readonly maxUnauthenticatedPerAddress?: number;
  /** Time allowed from connect to authenticated; then FATAL 08006 and the slot is free. Default 10 s. */
  readonly authTimeoutMs?: number;
  /**
   * After a CancelRequest, a statement timeout or a shutdown, how long the front waits for the
   * governed path to stop the query before it answers 57014 anyway. Default 2 s.
   */
  readonly cancelGraceMs?: number;
  /** close(): how long running requests may finish before every socket is destroyed. Default 5 s. */
  readonly closeTimeoutMs?: number;
}

export interface WireServer {
  readonly port: number;
  /**
   * Stops accepting, ends idle and unauthenticated connections at once (FATAL 57P01), lets
   * running requests finish for at most `closeTimeoutMs`, then cancels them and destroys
   * every socket. Resolves within about `closeTimeoutMs` whatever the clients do.
   */
  close(): Promise<void>;
}

const CHANNEL = 'pgwire';
const DATABASE = 'gatehouse';
/** Per-process key for the decoy SCRAM salts of unknown users (stable per name, so probing learns nothing). */
const DECOY_KEY = randomBytes(32);

export async function startWireServer(options: WireServerOptions): Promise<WireServer> {
  if (options.requireTls && !options.tls) throw new Error('requireTls needs tls: a certificate and key');
  if (options.tls && options.requireTls === false) throw new Error('when TLS is configured the wire front requires it; omit requireTls or set it to true');
  await loadParser();
  const secureContext = options.tls ? createSecureContext({ key: options.tls.key, cert: options.tls.cert, ...(options.tls.ca ? { ca: options.tls.ca } : {}), minVersion: 'TLSv1.2' }) : null;
  const admission = new Admission({
    maxSessions: options.maxConnections ?? 100,
    maxUnauthenticated: options.maxUnauthenticated ?? 64,
    maxUnauthenticatedPerAddress: options.maxUnauthenticatedPerAddress ?? 8,
  });
  const cancelKeys = new CancelKeys();
  const sockets = new Set<Socket>();
  const connections = new Set<WireConnection>();
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setNoDelay(true);
    const ticket = admission.admit(socket.remoteAddress ?? '');
    if (typeof ticket === 'string') { refuseConnection(socket, options.gatehouse, ticket); return; }
    const conn = new WireConnection(socket, options, secureContext, { ticket, cancelKeys });
    connections.add(conn);
    socket.once('close', () => { connections.delete(conn); ticket.release(); });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => { server.off('error', reject); resolve(); });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  let closing: Promise<void> | null = null;
  return {
    port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of connections) c.shutdown();
        await drained(sockets, options.closeTimeoutMs ?? 5_000);
        for (const c of connections) c.abortRunningQuery(new GatehouseError('UNAVAILABLE', 'terminating connection due to administrator command'));
        for (const s of sockets) s.destroy();
        await closed;
      })();
      return closing;
    },
  };
}

/** Admission refused: FATAL 53300 (PostgreSQL's too_many_connections), audited, socket closed. */
function refuseConnection(socket: Socket, gh: WireBackend, why: string): void {
  const err = new GatehouseError('RATE_LIMITED', why, { hint: 'retry later, or authenticate the connections already open' });
  const answer = (): void => {
    try { socket.end(enc.error({ severity: 'FATAL', code: '53300', message: err.message, hint: err.hint })); } catch { /* gone */ }
    setTimeout(() => socket.destroy(), 200).unref();
  };
  gh.rejectRequest({ credential: null, source: socket.remoteAddress ?? '', channel: CHANNEL }, 'pgwire.connect', err).then(answer, answer);
}

/** Resolves once every socket has closed, or after `ms`. */
function drained(sockets: Set<Socket>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + ms;
    const check = (): void => { if (sockets.size === 0 || Date.now() >= deadline) resolve(); else setTimeout(check, Math.min(25, Math.max(1, deadline - Date.now()))); };
    check();
  });
}

interface Prepared {
  readonly sql: string;
  readonly route: Classified;
  readonly paramTypes: readonly number[];
}

interface Outcome {
  readonly tag: string;
  readonly columns?: readonly { readonly name: string; readonly type: PgType }[];
  readonly rows?: readonly (readonly CellValue[])[];
  readonly status?: readonly [string, string][];
  readonly empty?: boolean;
  /** NoticeResponses sent after the rows, before CommandComplete (./protections.ts). */
  readonly notices?: readonly ProtectionNotice[];
}

/** A cursor (DECLARE … CURSOR FOR): the one released result of its query, read forward in FETCH-sized chunks. */
interface Cursor {
  readonly outcome: Outcome;
  readonly hold: boolean;
  position: number;
}

interface Portal {
  readonly stmt: Prepared;
  readonly params: readonly (string | null)[];
  readonly resultFormats: readonly number[];
  outcome: Outcome | null;
  cursor: number;
}

const EMPTY = Buffer.alloc(0);

/** One connection password's keys, and the credential a connection made with it carries. */
interface ScramCandidate { readonly storedKey: string; readonly serverKey: string; readonly credential: Credential | null }

class WireConnection {
  readonly #socket: Socket;
  readonly #opts: WireServerOptions;
  readonly #gh: WireBackend;
  readonly #source: string;
  readonly #secure: SecureContext | null;
  readonly #pg: PostgresConnection;
  #user = '';
  #credential: Credential | null = null;
  #settings: SessionSettings | null = null;
  #tls: { authorized: boolean; cn: string | null } | null = null;
  #authMessages = 0;
  #verifier: { salt: string; iterations: number; storedKey: string; serverKey: string } | null = null;
  #candidates: readonly ScramCandidate[] = [];
  #inTransaction = false;
  #skipToSync = false;
  readonly #statements = new Map<string, Prepared>();
  readonly #portals = new Map<string, Portal>();
  readonly #cursors = new Map<string, Cursor>();
  readonly #authTimer: NodeJS.Timeout;
  #closing = false;
  readonly #ticket: AdmissionTicket;
  readonly #cancelKeys: CancelKeys;
  #cancelKey: CancelKey | null = null;
  #authenticated = false;
  /** Before authentication the whole connection is one request: it leaves exactly one audit entry. */
  #preAuthAudited = false;
  /** A CancelRequest connection: it is answered by nothing and audited only when the key is wrong. */
  #cancelConnection = false;
  /** Refusals already audited (so the one catch that audits refusals never writes a second entry). */
  readonly #audited = new WeakSet<GatehouseError>();
  /** The statement a refusal was about, so its audit entry carries the SQL fingerprint. */
  readonly #sqlOf = new WeakMap<GatehouseError, string>();
  /** The governed query in flight: aborted by a CancelRequest, the statement timeout, a disconnect or shutdown. */
  #running: AbortController | null = null;
  #busy = false;
  #draining = false;

  constructor(socket: Socket, opts: WireServerOptions, secure: SecureContext | null, session: { ticket: AdmissionTicket; cancelKeys: CancelKeys }) {
    this.#socket = socket;
    this.#opts = opts;
    this.#gh = opts.gatehouse;
    this.#secure = secure;
    this.#ticket = session.ticket;
    this.#cancelKeys = session.cancelKeys;
    this.#source = socket.remoteAddress ?? '';
    const authMs = opts.authTimeoutMs ?? 10_000;
    this.#authTimer = setTimeout(() => {
      if (this.#closing) return;
      const err = new GatehouseError('AUTH_REQUIRED', `authentication was not completed within ${authMs} ms`, { hint: 'authenticate right after connecting; the connection was closed' });
      void this.#audit('pgwire.auth', err);
      this.#fatal('08006', err.message, err.hint ?? undefined);
    }, authMs);
    this.#authTimer.unref();
    socket.once('close', () => {
      clearTimeout(this.#authTimer);
      this.#cancelKey?.revoke();
      this.abortRunningQuery(new GatehouseError('QUERY_TIMEOUT', 'canceling statement because the client closed the connection'));
      if (!this.#authenticated && !this.#preAuthAudited && !this.#cancelConnection && socket.bytesRead > 0) {
        void this.#audit('pgwire.auth', new GatehouseError('AUTH_REQUIRED', 'the connection closed before authentication completed'));
      }
    });
    const duplex = this.#guard(socket, !!secure, !secure);
    this.#pg = new PostgresConnection(duplex, {
      auth: {
        method: 'scram-sha-256',
        getScramSha256Data: async ({ username }) => this.#scramData(username),
        validateCredentials: async ({ authMessage, clientProof }) => this.#validateScram(authMessage, clientProof),
      },
      ...(secure ? { tls: { key: new ArrayBuffer(0), cert: new ArrayBuffer(0) } } : {}),
      onMessage: (data, state) => this.#onMessage(Buffer.from(data.buffer, data.byteOffset, data.byteLength), state.step, !!state.tlsInfo),
    }, {
      upgradeTls: async () => this.#upgradeTls(),
    });
  }

  #guard(sock: Socket, allowSsl: boolean, declineSsl = false): DuplexStream<Uint8Array> {
    const guard = new FrameGuard({ maxMessageBytes: this.#opts.maxMessageBytes ?? 1024 * 1024, allowSsl, declineSsl });
    return guardedDuplex(sock, guard, {
      onViolation: (why) => {
        void this.#audit('pgwire.protocol', new GatehouseError('REQUEST_INVALID', `protocol violation: ${why}`));
        this.#fatal(why.includes('exceeds') ? '54000' : '08P01', `protocol violation: ${why}`);
      },
      onHandoff: () => undefined,
    });
  }

  /** Writes a FATAL ErrorResponse on the raw socket and ends the connection. */
  #fatal(code: string, message: string, hint?: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#ticket.release(); // an ending connection no longer holds a slot
    const target = this.#tlsSocket ?? this.#socket;
    try { target.end(enc.error({ severity: 'FATAL', code, message, hint: hint ?? null })); } catch { /* gone */ }
    setTimeout(() => { target.destroy(); this.#socket.destroy(); }, 200).unref();
  }

  #tlsSocket: TLSSocket | null = null;

  async #upgradeTls(): Promise<{ duplex: DuplexStream<Uint8Array>; tlsInfo: TlsInfo }> {
    const t = this.#opts.tls!;
    const sock = new TLSSocket(this.#socket, {
      isServer: true, secureContext: this.#secure!, requestCert: !!t.requestClientCert && !!t.ca, rejectUnauthorized: false,
    });
    this.#tlsSocket = sock;
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      sock.once('secure', resolve);
      sock.once('error', reject);
      sock.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    // A server-side TLSSocket made by hand does not set `authorized`; read the verification result.
    const handle = (sock as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
    const cert = sock.getPeerCertificate();
    const hasCert = !!cert && Object.keys(cert).length > 0;
    const authorized = hasCert && !!handle?.verifyError && !handle.verifyError();
    const cn = hasCert && typeof cert.subject?.CN === 'string' ? cert.subject.CN : null;
    this.#tls = { authorized, cn };
    const tlsInfo: TlsInfo = {};
    if (hasCert && cert.raw) tlsInfo.clientCertificate = new Uint8Array(cert.raw);
    return { duplex: this.#guard(sock, false), tlsInfo };
  }

  #meta(): RequestMeta { return { credential: this.#credential, source: this.#source, channel: CHANNEL }; }

  async #audit(action: string, err: GatehouseError): Promise<void> {
    this.#audited.add(err);
    if (!this.#authenticated) this.#preAuthAudited = true;
    const sql = this.#sqlOf.get(err);
    try { await this.#gh.rejectRequest(sql === undefined ? this.#meta() : { ...this.#meta(), sql }, action, err); } catch { /* the refusal stands either way */ }
  }

  /** Audits a refusal the front decided (a WireRefusal) unless it already was. */
  async #auditRefusal(action: string, err: unknown): Promise<void> {
    if (err instanceof WireRefusal && !this.#audited.has(err.audit)) await this.#audit(action, err.audit);
  }

  // ---- cancellation and shutdown ----------------------------------------------------------

  /** CancelRequest with this session's key (src/wire/cancel.ts). */
  cancelRunningQuery(): void {
    this.abortRunningQuery(new GatehouseError('QUERY_TIMEOUT', 'canceling statement due to user request'));
  }

  abortRunningQuery(reason: GatehouseError): void {
    if (this.#running && !this.#running.signal.aborted) this.#running.abort(reason);
  }

  /** Server shutdown: idle and unauthenticated connections end now, a running request first finishes. */
  shutdown(): void {
    this.#draining = true;
    if (!this.#authenticated && !this.#preAuthAudited && !this.#cancelConnection && !this.#closing && this.#socket.bytesRead > 0) {
      void this.#audit('pgwire.auth', new GatehouseError('UNAVAILABLE', 'terminating connection due to administrator command'));
    }
    if (!this.#busy) this.#fatal('57P01', 'terminating connection due to administrator command');
  }

  // ---- start-up and authentication ------------------------------------------------------

  async #scramData(username: string): Promise<ScramVerifier> {
    const found = await this.#gh.connectionVerifier(username).catch(() => null);
    this.#credential = null;
    if (found && found.candidates.length > 0) {
      this.#candidates = found.candidates;
      // pg-gateway signs the server-final message with this object's serverKey after
      // validateCredentials: #validateScram sets it to the key of the password that matched.
      this.#verifier = { salt: found.salt, iterations: found.iterations, storedKey: found.candidates[0]!.storedKey, serverKey: found.candidates[0]!.serverKey };
      return this.#verifier;
    }
    this.#candidates = [];
    // A decoy with a salt stable per name: an unknown user looks exactly like a wrong password.
    const salt = createHmac('sha256', DECOY_KEY).update(username).digest().subarray(0, 16).toString('base64');
    this.#verifier = { salt, iterations: 4096, storedKey: randomBytes(32).toString('base64'), serverKey: randomBytes(32).toString('base64') };
    return this.#verifier;
  }

  /**
   * RFC 5802: ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must equal
   * StoredKey. Checked against every active connection password of the principal (they
   * share the salt), all of them every time, so the time taken does not say which matched.
   */
  async #validateScram(authMessage: string, clientProof: string): Promise<boolean> {
    const proof = Buffer.from(clientProof, 'base64');
    let match: ScramCandidate | null = null;
    const candidates = this.#candidates.length ? this.#candidates : [{ storedKey: randomBytes(32).toString('base64'), serverKey: '', credential: null }];
    for (const c of candidates) {
      const stored = Buffer.from(c.storedKey, 'base64');
      const signature = createHmac('sha256', stored).update(authMessage).digest();
      if (proof.length !== signature.length) continue;
      const clientKey = Buffer.alloc(proof.length);
      for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
      const h = createHash('sha256').update(clientKey).digest();
      if (h.length === stored.length && timingSafeEqual(h, stored) && c.credential !== null && match === null) match = c;
    }
    const ok = match !== null && this.#verifier !== null;
    if (ok) {
      this.#verifier!.storedKey = match!.storedKey;
      this.#verifier!.serverKey = match!.serverKey;
      this.#credential = match!.credential;
    }
    if (!ok) {
      this.#credential = null;
      await this.#audit('pgwire.auth', new GatehouseError('AUTH_INVALID', `password authentication failed for user "${this.#user.slice(0, 64)}"`));
    }
    return ok;
  }

  async *#refuseStartup(code: string, err: GatehouseError, action = 'pgwire.startup'): AsyncGenerator<Uint8Array> {
    await this.#audit(action, err);
    this.#closing = true;
    this.#ticket.release();
    yield enc.error({ severity: 'FATAL', code, message: err.message, hint: err.hint });
    (this.#tlsSocket ?? this.#socket).end();
  }

  #onMessage(msg: Buffer, step: string, tls: boolean): AsyncGenerator<Uint8Array> | Uint8Array | undefined {
    if (this.#closing) return EMPTY;
    if (step === 'AwaitingInitialMessage') return this.#onStartup(msg, tls);
    if (step === 'PerformingAuthentication') {
      if (msg[0] !== 0x70 /* p */ || !this.#validAuthMessage(msg)) {
        void this.#audit('pgwire.auth', new GatehouseError('REQUEST_INVALID', 'invalid authentication message'));
        this.#fatal('08P01', 'invalid authentication message');
        return EMPTY;
      }
      this.#authMessages++;
      return undefined; // pg-gateway runs the SCRAM exchange
    }
    return this.#handle(msg);
  }

  #validAuthMessage(msg: Buffer): boolean {
    try {
      const r = new Reader(msg, 5);
      if (msg.readInt32BE(1) !== msg.length - 1) return false;
      if (this.#authMessages === 0) {
        if (r.cstring() !== 'SCRAM-SHA-256') return false;
        const n = r.int32();
        if (n < 0 || n !== r.remaining) return false;
      }
      return true;
    } catch { return false; }
  }

  #onStartup(msg: Buffer, tls: boolean): AsyncGenerator<Uint8Array> | Uint8Array | undefined {
    const code = msg.length >= 8 ? msg.readInt32BE(4) : 0;
    if (code === STARTUP.ssl) return undefined; // pg-gateway answers S (TLS configured) or N
    if (code === STARTUP.gssenc) return Buffer.from('N');
    if (code === STARTUP.cancel) return this.#onCancelRequest(msg);
    if (code !== STARTUP.protocol3) return this.#refuseStartup('08P01', new GatehouseError('REQUEST_INVALID', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`, { hint: 'the wire front speaks protocol 3.0' }));
    let params: Map<string, string>;
    try {
      const r = new Reader(msg, 8);
      params = new Map();
      for (;;) {
        const k = r.cstring('a parameter name');
        if (k === '') break;
        params.set(k, r.cstring('a parameter value'));
      }
      r.end('StartupMessage');
    } catch (err) {
      return this.#refuseStartup('08P01', new GatehouseError('REQUEST_INVALID', `invalid start-up packet: ${(err as Error).message}`));
    }
    this.#user = params.get('user') ?? '';
    if ((this.#opts.requireTls ?? !!this.#opts.tls) && !tls) {
      return this.#refuseStartup('28000', new GatehouseError('AUTH_REQUIRED', 'this Gatehouse wire front accepts only TLS connections', { hint: 'connect with sslmode=require (or verify-full with the server\'s CA)' }));
    }
    if (!this.#user) return this.#refuseStartup('28000', new GatehouseError('AUTH_REQUIRED', 'no user name was given', { hint: 'connect as your principal id with your connection password' }));
    if (params.has('replication') && params.get('replication') !== 'false') {
      return this.#refuseStartup('42501', new GatehouseError('POLICY_DENIED', 'replication connections are refused', { hint: 'connect for queries only' }));
    }
    const settings = new SessionSettings(this.#user, this.#gh.workspace.workspace.defaults.statementTimeoutMs);
    try {
      for (const [k, v] of params) {
        const name = k.toLowerCase();
        if (name === 'user' || name === 'database' || name === 'replication') continue;
        if (name === 'options') { for (const [n, val] of parseStartupOptions(v)) settings.set(n, val); continue; }
        settings.set(name, v);
      }
    } catch (err) {
      const e = asGatehouseError(err);
      return this.#refuseStartup(e.code === 'POLICY_DENIED' ? '42501' : '22023', e);
    }
    this.#settings = settings;
    // A verified client certificate authenticates without a password (CN = user name).
    if (this.#tls?.cn) {
      const cn = this.#tls.cn;
      if (!this.#tls.authorized) return this.#refuseStartup('28000', new GatehouseError('AUTH_INVALID', 'the client certificate is not trusted', { hint: 'present a certificate signed by the CA the server was configured with' }), 'pgwire.auth');
      if (cn !== this.#user) return this.#refuseStartup('28000', new GatehouseError('AUTH_INVALID', `the client certificate is for "${cn.slice(0, 64)}", not "${this.#user.slice(0, 64)}"`, { hint: 'connect with the user name in your certificate\'s CN' }), 'pgwire.auth');
      this.#credential = { kind: 'client-certificate', subject: cn };
      this.#pg.options.auth = { method: 'cert', validateCredentials: async () => true };
    }
    return this.#afterStartup();
  }

  /**
   * CancelRequest on a new connection: cancels the running query of the session whose key it
   * carries, answers nothing and closes (PostgreSQL protocol). A wrong key changes nothing
   * and is audited; a right one shows in the cancelled query's own audit entry.
   */
  #onCancelRequest(msg: Buffer): Uint8Array {
    this.#cancelConnection = true;
    this.#closing = true;
    clearTimeout(this.#authTimer);
    const req = parseCancelRequest(msg);
    if (!req || !this.#cancelKeys.cancel(req.pid, req.secret)) {
      void this.#audit('pgwire.cancel', new GatehouseError('AUTH_INVALID', req ? 'the cancel request matched no session (wrong process id or secret key); nothing was cancelled' : 'malformed cancel request; nothing was cancelled'));
    }
    (this.#tlsSocket ?? this.#socket).end();
    return EMPTY;
  }

  /** Lets pg-gateway authenticate, then takes a session slot and sends the session's parameters before the first ReadyForQuery. */
  #afterStartup(): undefined {
    const pg = this.#pg as unknown as { completeAuthentication: () => AsyncGenerator<Uint8Array> };
    const original = pg.completeAuthentication.bind(this.#pg);
    pg.completeAuthentication = async function* (this: WireConnection) {
      for await (const m of original()) {
        if (m[0] === 0x5a /* ReadyForQuery */) {
          clearTimeout(this.#authTimer);
          const full = this.#ticket.authenticated();
          if (full) {
            const err = new GatehouseError('RATE_LIMITED', full, { hint: 'retry later' });
            await this.#audit('pgwire.connect', err);
            this.#closing = true;
            yield enc.error({ severity: 'FATAL', code: '53300', message: err.message, hint: err.hint });
            (this.#tlsSocket ?? this.#socket).end();
            return;
          }
          this.#authenticated = true;
          this.#cancelKey = this.#cancelKeys.issue(this);
          yield Buffer.concat(this.#startupStatus(this.#cancelKey));
        }
        yield m;
      }
    }.bind(this);
    return undefined;
  }

  #startupStatus(key: CancelKey): Buffer[] {
    const s = this.#settings!;
    const names = ['server_version', 'server_encoding', 'client_encoding', 'DateStyle', 'IntervalStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings', 'is_superuser', 'session_authorization', 'application_name'];
    return [...names.map((n) => enc.parameterStatus(n, s.get(n.toLowerCase()))), enc.backendKeyData(key.pid, key.secret)];
  }

  // ---- after authentication ---------------------------------------------------------------

  /** One frontend message; at shutdown the session ends once its running request has answered. */
  async *#handle(raw: Buffer): AsyncGenerator<Uint8Array> {
    this.#busy = true;
    try {
      yield* this.#dispatch(raw);
    } finally {
      this.#busy = false;
      if (this.#draining) this.#fatal('57P01', 'terminating connection due to administrator command');
    }
  }

  async *#dispatch(raw: Buffer): AsyncGenerator<Uint8Array> {
    let m: Frontend;
    try {
      m = decodeFrontend(raw);
    } catch (err) {
      const why = err instanceof ProtocolViolation ? err.message : 'malformed message';
      await this.#audit('pgwire.protocol', new GatehouseError('REQUEST_INVALID', `protocol violation: ${why}`));
      this.#closing = true;
      yield enc.error({ severity: 'FATAL', code: '08P01', message: `protocol violation: ${why}`, hint: null });
      (this.#tlsSocket ?? this.#socket).end();
      return;
    }
    if (m.type === 'Terminate') { this.#closing = true; (this.#tlsSocket ?? this.#socket).end(); yield EMPTY; return; }
    if (m.type === 'Unsupported') {
      const err = new GatehouseError('SQL_UNSUPPORTED', m.code === 'F' ? 'the function-call protocol is not supported' : m.code === 'd' || m.code === 'c' || m.code === 'f' ? 'COPY is not supported' : `message type "${m.code.replace(/[^\x20-\x7e]/g, '?')}" is not supported`);
      await this.#audit('pgwire.protocol', err);
      yield enc.error(wireError(err));
      if (!this.#skipToSync) yield enc.readyForQuery(this.#status());
      return;
    }
    if (m.type === 'Query') {
      this.#skipToSync = false;
      yield* this.#simpleQuery(m.sql);
      yield enc.readyForQuery(this.#status());
      return;
    }
    if (m.type === 'Sync') {
      this.#skipToSync = false;
      if (!this.#inTransaction) this.#portals.clear();
      yield enc.readyForQuery(this.#status());
      return;
    }
    if (m.type === 'Flush') { yield EMPTY; return; }
    if (this.#skipToSync) { yield EMPTY; return; }
    try {
      const out = await this.#extended(m);
      yield out.length ? Buffer.concat(out) : EMPTY;
    } catch (err) {
      this.#skipToSync = true;
      await this.#auditRefusal(`pgwire.${m.type.toLowerCase()}`, err);
      yield enc.error(wireError(err));
    }
  }

  #status(): 'I' | 'T' { return this.#inTransaction ? 'T' : 'I'; }

  async *#simpleQuery(sql: string): AsyncGenerator<Uint8Array> {
    const route = classify(sql);
    try {
      const o = await this.#execute(sql, route, []);
      if (o.empty) { yield enc.emptyQuery(); return; }
      const out: Buffer[] = [];
      if (o.columns) out.push(enc.rowDescription(this.#fields(o.columns, [])));
      yield* this.#rows(o, [], 0, 0, out);
    } catch (err) {
      yield enc.error(wireError(err));
    }
  }

  /** DataRows (batched) and CommandComplete or PortalSuspended; returns the new cursor via the portal. */
  async *#rows(o: Outcome, formats: readonly number[], from: number, max: number, out: Buffer[], portal?: Portal): AsyncGenerator<Uint8Array> {
    const rows = o.rows ?? [];
    const end = max > 0 ? Math.min(rows.length, from + max) : rows.length;
    let size = out.reduce((n, b) => n + b.length, 0);
    const types = (o.columns ?? []).map((c) => c.type);
    for (let i = from; i < end; i++) {
      const row = rows[i]!;
      const cells = row.map((v, j) => {
        const t = types[j]!;
        if (formatOf(formats, j) === 1) return binaryValue(v, t);
        const s = textValue(v, t);
        return s === null ? null : Buffer.from(s, 'utf8');
      });
      const b = enc.dataRow(cells);
      out.push(b);
      size += b.length;
      if (size > 64 * 1024) { yield Buffer.concat(out); out.length = 0; size = 0; }
    }
    if (portal) portal.cursor = end;
    if (o.status) for (const [n, v] of o.status) out.push(enc.parameterStatus(n, v));
    const suspended = !!o.columns && end < rows.length;
    if (!suspended) for (const n of o.notices ?? []) out.push(enc.error({ severity: 'NOTICE', code: '01000', message: n.message, detail: n.detail }, true));
    out.push(suspended ? enc.portalSuspended() : enc.commandComplete(o.tag));
    yield Buffer.concat(out);
  }

  #fields(columns: readonly { name: string; type: PgType }[], formats: readonly number[]): FieldDescription[] {
    return columns.map((c, i) => {
      const format = formatOf(formats, i);
      if (format === 1 && !binarySupported(c.type)) {
        throw new WireRefusal('0A000', new GatehouseError('SQL_UNSUPPORTED', `binary results are not supported for column "${c.name}" of type ${c.type.name}`, { hint: 'request text format for this column (the default)' }));
      }
      return { name: c.name, typeOid: c.type.oid, typeSize: c.type.size, format };
    });
  }

  async #extended(m: Frontend): Promise<Buffer[]> {
    switch (m.type) {
      case 'Parse': {
        if (m.name !== '' && this.#statements.has(m.name)) throw new WireRefusal('42P05', new GatehouseError('REQUEST_INVALID', `prepared statement "${m.name.slice(0, 64)}" already exists`, { hint: 'close it first or use another name' }));
        if (this.#statements.size > 1000) throw new WireRefusal('53400', new GatehouseError('RATE_LIMITED', 'too many prepared statements on this connection', { hint: 'close statements you no longer use' }));
        const route = classify(m.sql);
        if (route.kind === 'multi') {
          throw new WireRefusal('42601', new GatehouseError('SQL_UNSUPPORTED', 'cannot insert multiple commands into a prepared statement', { hint: 'prepare one statement at a time' }));
        }
        this.#statements.set(m.name, { sql: m.sql, route, paramTypes: m.paramTypes });
        return [enc.parseComplete()];
      }
      case 'Bind': {
        const stmt = this.#statements.get(m.statement);
        if (!stmt) throw new WireRefusal('26000', new GatehouseError('NOT_FOUND', `prepared statement "${m.statement.slice(0, 64)}" does not exist`));
        if (m.portal !== '' && this.#portals.has(m.portal)) throw new WireRefusal('42P03', new GatehouseError('REQUEST_INVALID', `portal "${m.portal.slice(0, 64)}" already exists`));
        const params = m.params.map((p, i) => {
          if (p === null) return null;
          if (formatOf(m.paramFormats, i) === 0) return p.toString('utf8');
          const text = binaryParamText(p, stmt.paramTypes[i] ?? 0);
          if (text === null) throw new WireRefusal('0A000', new GatehouseError('SQL_UNSUPPORTED', `binary parameter $${i + 1} of type ${stmt.paramTypes[i] ?? 0} is not supported`, { hint: 'send parameters in text format' }));
          return text;
        });
        if (params.some((p) => p !== null && p.includes('\u0000'))) throw new WireRefusal('22021', new GatehouseError('REQUEST_INVALID', 'a parameter contains a NUL character'));
        this.#portals.set(m.portal, { stmt, params, resultFormats: m.resultFormats, outcome: null, cursor: 0 });
        return [enc.bindComplete()];
      }
      case 'Describe': {
        if (m.kind === 'S') {
          const stmt = this.#statements.get(m.name);
          if (!stmt) throw new WireRefusal('26000', new GatehouseError('NOT_FOUND', `prepared statement "${m.name.slice(0, 64)}" does not exist`));
          const n = 'params' in stmt.route ? stmt.route.params : 0;
          const oids = Array.from({ length: Math.max(n, stmt.paramTypes.length) }, (_, i) => stmt.paramTypes[i] || OID.text);
          const cols = await this.#describeStatement(stmt);
          return [enc.parameterDescription(oids), cols ? enc.rowDescription(this.#fields(cols, [])) : enc.noData()];
        }
        const portal = this.#portal(m.name);
        portal.outcome ??= await this.#execute(portal.stmt.sql, portal.stmt.route, portal.params);
        return [portal.outcome.columns ? enc.rowDescription(this.#fields(portal.outcome.columns, portal.resultFormats)) : enc.noData()];
      }
      case 'Execute': {
        const portal = this.#portal(m.portal);
        portal.outcome ??= await this.#execute(portal.stmt.sql, portal.stmt.route, portal.params);
        if (portal.outcome.empty) return [enc.emptyQuery()];
        if (portal.outcome.columns) this.#fields(portal.outcome.columns, portal.resultFormats);
        const out: Buffer[] = [];
        for await (const b of this.#rows(portal.outcome, portal.resultFormats, portal.cursor, m.maxRows, [], portal)) out.push(b as Buffer);
        return out;
      }
      case 'Close': {
        if (m.kind === 'S') this.#statements.delete(m.name); else this.#portals.delete(m.name);
        return [enc.closeComplete()];
      }
      default: return [];
    }
  }

  #portal(name: string): Portal {
    const p = this.#portals.get(name);
    if (!p) throw new WireRefusal('34000', new GatehouseError('NOT_FOUND', `portal "${name.slice(0, 64)}" does not exist`, { hint: 'Bind before Describe or Execute' }));
    return p;
  }

  /**
   * Result columns of a prepared statement before it runs. A catalog query is rendered by
   * Gatehouse (./catalog/render.ts) and described on the catalog rows; a governed query is
   * not described before Execute (NoData): its text reaches no engine outside the path.
   */
  async #describeStatement(stmt: Prepared): Promise<{ name: string; type: PgType }[] | null> {
    const r = stmt.route;
    if (r.kind === 'show') return [{ name: r.name === 'all' ? 'name' : r.name, type: pgTypeOf('VARCHAR') }];
    if (r.kind === 'fetch') return this.#cursors.get(r.name)?.outcome.columns?.slice() ?? null;
    if (r.kind === 'governed') return this.#describeGoverned(stmt.sql, r.params);
    if (r.kind !== 'catalog') return null;
    try {
      const cols = await this.#gh.describeCatalogQuery({ ...this.#meta(), sql: stmt.sql, purpose: this.#settings!.purpose, session: this.#catalogSession() });
      return cols ? cols.map((c) => ({ name: c.name, type: pgTypeOf(c.type) })) : null;
    } catch { return null; }
  }

  /**
   * A governed statement's result columns through the one path (`describe`: names and
   * engine types after masks, no row, audited as query.describe). Each $n is described as
   * NULL. A refusal is the statement's error, as PostgreSQL reports an unknown table at Describe.
   */
  async #describeGoverned(sql: string, params: number): Promise<{ name: string; type: PgType }[]> {
    const s = this.#settings!;
    const req: QueryRequest = { ...this.#meta(), sql, purpose: s.purpose ?? '', ...(params > 0 ? { params: Array.from({ length: params }, () => null) } : {}), timeoutMs: s.timeoutMs };
    try {
      const r = await this.#gh.describe(req);
      return r.columns.map((c) => ({ name: c.name, type: pgTypeOf(c.type) }));
    } catch (err) {
      throw this.#purposeHint(asGatehouseError(err), s.purpose);
    }
  }

  /** The path's "purpose required" refusal, said the wire way (how to declare one on a connection). */
  #purposeHint(e: GatehouseError, purpose: string | null): GatehouseError {
    if (purpose === null && e.code === 'REQUEST_INVALID' && /purpose/.test(e.message)) {
      return new GatehouseError('REQUEST_INVALID', 'no purpose is declared for this connection', { hint: "connect with options='-c gatehouse.purpose=research' or run SET gatehouse.purpose = 'research'" });
    }
    return e;
  }

  #catalogSession(): CatalogSession {
    const s = this.#settings!;
    return { user: this.#user, database: DATABASE, setting: (name) => s.show(name) };
  }

  // ---- executing one statement ----------------------------------------------------------

  /** Runs one statement; a refusal the front decides is audited here, under the statement's kind. */
  async #execute(sql: string, route: Classified, params: readonly (string | null)[]): Promise<Outcome> {
    try {
      return await this.#run(sql, route, params);
    } catch (err) {
      await this.#auditRefusal(actionOf(route), err);
      throw err;
    }
  }

  async #run(sql: string, route: Classified, params: readonly (string | null)[]): Promise<Outcome> {
    const s = this.#settings!;
    switch (route.kind) {
      case 'empty': return { tag: '', empty: true };
      case 'multi':
        throw new WireRefusal('0A000', new GatehouseError('SQL_UNSUPPORTED', `${route.count} statements were sent in one query; nothing was executed`, { hint: 'send one statement per query (psql: run them one by one)' }));
      case 'transaction': {
        if (route.tag === 'BEGIN') this.#inTransaction = true;
        if (route.tag === 'COMMIT' || route.tag === 'ROLLBACK') {
          this.#inTransaction = false;
          for (const [name, c] of this.#cursors) if (!c.hold) this.#cursors.delete(name);
        }
        return { tag: route.tag };
      }
      case 'set': {
        try {
          if (route.resetAll) return { tag: 'RESET', status: s.resetAll().filter((c) => c.report).map((c) => [c.name, c.value]) };
          const c = s.set(route.name, route.value);
          return { tag: route.value === null ? 'RESET' : 'SET', status: c.report ? [[c.name, c.value]] : [] };
        } catch (err) {
          const e = asGatehouseError(err);
          throw new WireRefusal(e.code === 'POLICY_DENIED' ? '42501' : '22023', e);
        }
      }
      case 'set-unsupported':
        throw new WireRefusal('42501', new GatehouseError('POLICY_DENIED', `${route.what.slice(0, 80)} is not allowed on a governed connection`, { hint: 'only harmless session settings may be set (docs/wire-protocol.md)' }));
      case 'show': {
        if (route.name === 'all') return { tag: 'SHOW', columns: [{ name: 'name', type: pgTypeOf('VARCHAR') }, { name: 'setting', type: pgTypeOf('VARCHAR') }], rows: s.all() };
        const v = route.name === 'gatehouse.policy_version' ? this.#gh.policyVersion : s.show(route.name);
        if (v === null) throw new WireRefusal('42704', new GatehouseError('NOT_FOUND', `unrecognized configuration parameter "${route.name.slice(0, 64)}"`));
        return { tag: 'SHOW', columns: [{ name: route.name, type: pgTypeOf('VARCHAR') }], rows: [[v]] };
      }
      case 'catalog-reads-data': {
        const err = new GatehouseError('POLICY_DENIED', `a catalog query cannot read datasets (${route.relations.slice(0, 5).join(', ')}); nothing was executed`, { hint: 'query pg_catalog/information_schema alone, and datasets with a governed SELECT' });
        this.#sqlOf.set(err, sql);
        throw new WireRefusal('42501', err);
      }
      case 'catalog': {
        // One audited request on the path: parsed, allowlisted and rendered by Gatehouse, answered
        // from the data-free catalog of what this principal may see.
        const r = await this.#gh.catalogQuery({ ...this.#meta(), sql, purpose: s.purpose, session: this.#catalogSession(), params, timeoutMs: s.timeoutMs });
        return { tag: `SELECT ${r.rows.length}`, columns: r.columns.map((c) => ({ name: c.name, type: pgTypeOf(c.type) })), rows: r.rows };
      }
      case 'governed': {
        const purpose = s.purpose;
        // The session's statement_timeout bounds the query: passed down as the request's own
        // timeout and, with CancelRequest, disconnect and shutdown, through one abort signal.
        const running = new AbortController();
        const timer = setTimeout(() => running.abort(new GatehouseError('QUERY_TIMEOUT', `canceling statement due to statement timeout (statement_timeout is ${s.timeoutMs} ms)`, { hint: 'raise statement_timeout (up to the workspace limit) or narrow the query' })), s.timeoutMs);
        const req: QueryRequest = { ...this.#meta(), sql, purpose: purpose ?? '', ...(params.length || route.params > 0 ? { params } : {}), signal: running.signal, timeoutMs: s.timeoutMs };
        this.#running = running;
        let r;
        try {
          r = await stoppedOrAbandoned((this.#opts.router ?? this.#gh).query(req), running.signal, this.#opts.cancelGraceMs ?? 2_000);
        } catch (err) {
          throw this.#purposeHint(asGatehouseError(err), purpose);
        } finally {
          clearTimeout(timer);
          this.#running = null;
        }
        const report = protectionReport(r);
        s.recordResult(report.settings);
        return { tag: `SELECT ${r.rows.length}`, columns: r.columns.map((c) => ({ name: c.name, type: pgTypeOf(c.type) })), rows: r.rows, notices: report.notices };
      }
      case 'declare': return this.#declare(route, params);
      case 'fetch': {
        const c = this.#cursors.get(route.name);
        if (!c) throw new WireRefusal('34000', new GatehouseError('NOT_FOUND', `cursor "${route.name.slice(0, 64)}" does not exist`, { hint: 'DECLARE it first, inside the same transaction' }));
        if (route.direction !== 'FETCH_FORWARD' || (route.count !== null && route.count < 0)) {
          throw new WireRefusal('55000', new GatehouseError('SQL_UNSUPPORTED', 'cursors on a governed connection read forward only', { hint: 'use FETCH n or FETCH ALL (NEXT, FORWARD)' }));
        }
        const rows = c.outcome.rows ?? [];
        const end = route.count === null ? rows.length : Math.min(rows.length, c.position + route.count);
        const chunk = rows.slice(c.position, end);
        c.position = end;
        if (route.move) return { tag: `MOVE ${chunk.length}` };
        return { tag: `FETCH ${chunk.length}`, columns: c.outcome.columns ?? [], rows: chunk };
      }
      case 'close-cursor': {
        if (route.name === null) { this.#cursors.clear(); return { tag: 'CLOSE CURSOR ALL' }; }
        if (!this.#cursors.delete(route.name)) throw new WireRefusal('34000', new GatehouseError('NOT_FOUND', `cursor "${route.name.slice(0, 64)}" does not exist`));
        return { tag: 'CLOSE CURSOR' };
      }
    }
  }

  /**
   * DECLARE name CURSOR FOR <query>: the query runs once through the one path (one audit
   * entry, one release with its protections and budget charge), and FETCH then reads that
   * released result in chunks — what pandas read_sql(chunksize=…), SQLAlchemy
   * stream_results and Django .iterator() ask for. Without WITH HOLD the cursor ends with
   * its transaction, as in PostgreSQL.
   */
  async #declare(route: Extract<Classified, { kind: 'declare' }>, params: readonly (string | null)[]): Promise<Outcome> {
    if (!this.#inTransaction && !route.hold) throw new WireRefusal('25P01', new GatehouseError('REQUEST_INVALID', 'DECLARE CURSOR can only be used in transaction blocks', { hint: 'BEGIN first, or DECLARE … CURSOR WITH HOLD' }));
    if (route.binary) throw new WireRefusal('0A000', new GatehouseError('SQL_UNSUPPORTED', 'binary cursors are not supported', { hint: 'declare the cursor without BINARY' }));
    if (this.#cursors.has(route.name)) throw new WireRefusal('42P03', new GatehouseError('REQUEST_INVALID', `cursor "${route.name.slice(0, 64)}" already exists`, { hint: 'CLOSE it first or use another name' }));
    if (this.#cursors.size >= 100) throw new WireRefusal('53400', new GatehouseError('RATE_LIMITED', 'too many open cursors on this connection', { hint: 'CLOSE cursors you no longer read' }));
    const inner = route.route;
    if (inner.kind !== 'governed' && inner.kind !== 'catalog' && inner.kind !== 'catalog-reads-data') {
      throw new WireRefusal('42601', new GatehouseError('SQL_UNSUPPORTED', 'a cursor must be declared for one SELECT', { hint: 'DECLARE name CURSOR FOR SELECT …' }));
    }
    const outcome = await this.#run(route.query, inner, params);
    this.#cursors.set(route.name, { outcome, hold: route.hold, position: 0 });
    return { tag: 'DECLARE CURSOR', ...(outcome.notices ? { notices: outcome.notices } : {}) };
  }
}

/** The audit action of a refused statement. */
function actionOf(route: Classified): string {
  switch (route.kind) {
    case 'set': case 'set-unsupported': return 'pgwire.set';
    case 'show': return 'pgwire.show';
    case 'catalog': case 'catalog-reads-data': return 'pgwire.catalog';
    case 'fetch': case 'close-cursor': return 'pgwire.cursor';
    case 'declare': return actionOf(route.route);
    default: return 'pgwire.query';
  }
}

function formatOf(formats: readonly number[], i: number): 0 | 1 {
  const f = formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
  return f === 1 ? 1 : 0;
}

/**
 * The governed query's answer. Once `signal` aborts, the path is given `graceMs` to stop the
 * engine and settle (its audit entry then says QUERY_TIMEOUT, and the client gets the
 * abort's reason, 57014); past that the client gets the reason anyway, so a path that does
 * not honour the signal cannot hold the session. A query that finished before it noticed
 * the abort is answered with its result, as PostgreSQL does.
 */
function stoppedOrAbandoned<T>(p: Promise<T>, signal: AbortSignal, graceMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let grace: NodeJS.Timeout | undefined;
    const onAbort = (): void => { grace = setTimeout(() => reject(signal.reason), graceMs); };
    if (signal.aborted) onAbort(); else signal.addEventListener('abort', onAbort, { once: true });
    const done = (): void => { clearTimeout(grace); signal.removeEventListener('abort', onAbort); };
    p.then((v) => { done(); resolve(v); }, (err: unknown) => {
      done();
      reject(signal.aborted && asGatehouseError(err).code === 'QUERY_TIMEOUT' ? signal.reason : err);
    });
  });
}
