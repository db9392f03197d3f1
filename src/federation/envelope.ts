/**
 * The signed envelope every node-to-node request and response carries, on top of mutual
 * TLS. TLS proves which pinned key is on the other end of the connection; the envelope
 * binds each message to its sender, its intended receiver, one request id (shared by every
 * node's audit entry for the request), a timestamp and a nonce, and signs the digest of the
 * body with the sender's Ed25519 key (RFC 8032). A receiver refuses a message
 *   - from a node whose TLS key is not the key pinned for the id it claims,
 *   - claiming a region other than the one pinned for that node,
 *   - addressed to another node (no relaying a captured message),
 *   - older or newer than the clock-skew window, or whose nonce it has already seen.
 * The signature also lets an auditor check, from the log alone, that a peer really sent
 * (or answered) what the log says: the response is signed over the request's nonce.
 *
 * Headers (lower case, as HTTP/1.1 carries them):
 *   gatehouse-node, gatehouse-to, gatehouse-region, gatehouse-request-id,
 *   gatehouse-timestamp (ms since the epoch), gatehouse-nonce, gatehouse-signature.
 */
import { createHash, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { FederationError } from './errors.ts';
import type { NodeIdentity } from './identity.ts';
import type { PeerPin, PeerRegistry } from './peers.ts';

const DOMAIN = 'gatehouse-federation-v1';
const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;
const NONCE = /^[A-Za-z0-9_-]{22}$/;

export type Headers = Readonly<Record<string, string | string[] | undefined>>;

function digest(body: string | Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

function header(h: Headers, name: string): string {
  const v = h[name];
  if (typeof v !== 'string' || v.length === 0 || v.length > 512) throw new FederationError('NODE_ENVELOPE_INVALID', `the node message lacks a valid ${name} header`, 'send node-to-node requests with the federation client');
  return v;
}

function requestText(method: string, path: string, from: string, to: string, region: string, requestId: string, timestamp: string, nonce: string, body: string | Uint8Array): string {
  return [DOMAIN, 'request', method.toUpperCase(), path, from, to, region, requestId, timestamp, nonce, digest(body)].join('\n');
}

function responseText(from: string, to: string, requestId: string, nonce: string, status: number, body: string | Uint8Array): string {
  return [DOMAIN, 'response', from, to, requestId, nonce, String(status), digest(body)].join('\n');
}

export interface SignedRequest {
  readonly headers: Record<string, string>;
  readonly nonce: string;
}

/** Headers for a request from `self` to `to`; the nonce is returned to check the response. */
export function signRequest(self: NodeIdentity, to: string, method: string, path: string, requestId: string, body: string | Uint8Array, now: number): SignedRequest {
  if (!REQUEST_ID.test(requestId)) throw new FederationError('NODE_ENVELOPE_INVALID', 'the request id must be 8-128 letters, digits or ._:-');
  const nonce = randomBytes(16).toString('base64url');
  const timestamp = String(Math.floor(now));
  const signature = sign(null, Buffer.from(requestText(method, path, self.nodeId, to, self.region, requestId, timestamp, nonce, body)), self.privateKey).toString('base64url');
  return {
    nonce,
    headers: {
      'gatehouse-node': self.nodeId, 'gatehouse-to': to, 'gatehouse-region': self.region, 'gatehouse-request-id': requestId,
      'gatehouse-timestamp': timestamp, 'gatehouse-nonce': nonce, 'gatehouse-signature': signature,
    },
  };
}

/** Remembers nonces for the skew window so a captured message cannot be played again. */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** Records the nonce; false when it was already seen inside its window. */
  remember(key: string, expiresAt: number, now: number): boolean {
    if (this.#seen.size >= this.#max) for (const [k, exp] of this.#seen) if (exp <= now) this.#seen.delete(k);
    const exp = this.#seen.get(key);
    if (exp !== undefined && exp > now) return false;
    if (this.#seen.size >= this.#max) {
      throw new FederationError('NODE_MESSAGE_REPLAYED', 'too many node messages inside the clock-skew window to check for replays', 'retry shortly', { code: 'RATE_LIMITED' });
    }
    this.#seen.set(key, expiresAt);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}

export interface VerifyRequestInput {
  readonly self: NodeIdentity;
  readonly peers: PeerRegistry;
  /** The pinned-key text of the key the TLS client certificate carried. */
  readonly tlsKey: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body: string | Uint8Array;
  readonly replay: ReplayCache;
  readonly now: number;
  readonly skewMs: number;
}

export interface VerifiedRequest {
  readonly peer: PeerPin;
  readonly requestId: string;
  readonly nonce: string;
  readonly timestamp: number;
}

/** Authenticates a request; throws a FederationError naming the rule it breaks. */
export function verifyRequest(input: VerifyRequestInput): VerifiedRequest {
  const h = input.headers;
  const from = header(h, 'gatehouse-node');
  const peer = input.peers.byKey(input.tlsKey);
  if (!peer) throw new FederationError('NODE_UNKNOWN', 'the connecting node\'s key is not pinned in this workspace', 'pin the node under federation.peers');
  if (peer.nodeId !== from) throw new FederationError('NODE_KEY_MISMATCH', `the connecting key belongs to node "${peer.nodeId}", not "${from}"`, 'a node may only speak for itself');
  const region = header(h, 'gatehouse-region');
  if (region !== peer.region) {
    throw new FederationError('NODE_REGION_MISMATCH', `node "${from}" claims region "${region}" but is pinned to "${peer.region}"`, 'a node\'s region is fixed by its pinned identity; fix the node\'s configuration or its pin');
  }
  const to = header(h, 'gatehouse-to');
  if (to !== input.self.nodeId) throw new FederationError('NODE_ENVELOPE_INVALID', `the message is addressed to node "${to}", not to this node`, 'send it to the node it names');
  const requestId = header(h, 'gatehouse-request-id');
  const nonce = header(h, 'gatehouse-nonce');
  const ts = header(h, 'gatehouse-timestamp');
  if (!REQUEST_ID.test(requestId) || !NONCE.test(nonce) || !/^\d{1,16}$/.test(ts)) throw new FederationError('NODE_ENVELOPE_INVALID', 'the node message has a malformed request id, nonce or timestamp');
  const signature = Buffer.from(header(h, 'gatehouse-signature'), 'base64url');
  const text = requestText(input.method, input.path, from, to, region, requestId, ts, nonce, input.body);
  if (signature.length !== 64 || !verify(null, Buffer.from(text), peer.key, signature)) {
    throw new FederationError('NODE_SIGNATURE_INVALID', `the message from node "${from}" has no valid signature`, 'the message was altered or signed with another key');
  }
  const timestamp = Number(ts);
  if (Math.abs(input.now - timestamp) > input.skewMs) {
    throw new FederationError('NODE_MESSAGE_STALE', `the message from node "${from}" is outside the ${Math.round(input.skewMs / 1000)} s clock-skew window`, 'check both nodes\' clocks (NTP)');
  }
  if (!input.replay.remember(`${from}\n${nonce}`, timestamp + input.skewMs, input.now)) {
    throw new FederationError('NODE_MESSAGE_REPLAYED', `the message from node "${from}" was already received (same nonce)`, 'each node message is accepted once');
  }
  return { peer, requestId, nonce, timestamp };
}

/** The signature header of a response, bound to the request's nonce. */
export function signResponse(self: NodeIdentity, to: string, requestId: string, nonce: string, status: number, body: string | Uint8Array): Record<string, string> {
  const signature = sign(null, Buffer.from(responseText(self.nodeId, to, requestId, nonce, status, body)), self.privateKey).toString('base64url');
  return { 'gatehouse-node': self.nodeId, 'gatehouse-request-id': requestId, 'gatehouse-signature': signature };
}

/** Checks a response came from `peer`, for this request, unaltered. */
export function verifyResponse(peer: { nodeId: string; key: KeyObject }, self: string, requestId: string, nonce: string, status: number, headers: Headers, body: string | Uint8Array): string {
  const signatureText = header(headers, 'gatehouse-signature');
  if (header(headers, 'gatehouse-node') !== peer.nodeId || header(headers, 'gatehouse-request-id') !== requestId) {
    throw new FederationError('NODE_SIGNATURE_INVALID', `the answer does not come from node "${peer.nodeId}" for this request`);
  }
  const signature = Buffer.from(signatureText, 'base64url');
  if (signature.length !== 64 || !verify(null, Buffer.from(responseText(peer.nodeId, self, requestId, nonce, status, body)), peer.key, signature)) {
    throw new FederationError('NODE_SIGNATURE_INVALID', `the answer from node "${peer.nodeId}" has no valid signature`, 'the answer was altered in transit or signed with another key');
  }
  return signatureText;
}
