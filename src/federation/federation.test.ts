import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { request } from 'node:https';
import { GatehouseError } from '../errors.ts';
import {
  FederationClient, initNodeIdentity, loadNodeIdentity, parseFederationSection, PeerRegistry, publicKeyText, signRequest, startNodeListener,
  type NodeCall, type NodeIdentity, type NodeListener, type PeerPin,
} from './index.ts';

const dirs: string[] = [];
function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-fed-'));
  dirs.push(d);
  return d;
}

function pin(id: NodeIdentity, port: number, over: Partial<{ region: string; publicKey: string; nodeId: string }> = {}): Record<string, unknown> {
  return { node: over.nodeId ?? id.nodeId, region: over.region ?? id.region, jurisdiction: id.jurisdiction, url: `https://127.0.0.1:${port}`, publicKey: over.publicKey ?? id.publicKey };
}

function registry(pins: Record<string, unknown>[]): PeerRegistry {
  const { config, problems } = parseFederationSection({ peers: pins });
  assert.deepEqual(problems, []);
  return new PeerRegistry(config!.peers);
}

async function refusal(p: Promise<unknown>): Promise<GatehouseError> {
  try { await p; } catch (e) { assert.ok(e instanceof GatehouseError, String(e)); return e; }
  assert.fail('expected a refusal');
}

/** Sends exactly the given headers and body with `identity`'s client certificate. */
function rawPost(identity: NodeIdentity, port: number, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: { error?: { detail: string } } }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', key: identity.keyPem, cert: identity.certPem, rejectUnauthorized: false, agent: false, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('node identity', () => {
  test('node init writes a private key only its owner can read and a certificate node:crypto reads', async () => {
    const dir = stateDir();
    const id = await initNodeIdentity(dir, { nodeId: 'eu-west-1', region: 'eu-west', jurisdiction: 'EU' });
    assert.equal(statSync(join(dir, 'federation', 'node-key.pem')).mode & 0o777, 0o600);
    const cert = new X509Certificate(id.certPem);
    assert.equal(cert.subject, 'CN=eu-west-1');
    assert.equal(publicKeyText(cert.publicKey), id.publicKey);
    assert.ok(cert.verify(cert.publicKey), 'self-signed with the node key');
    const loaded = loadNodeIdentity(dir);
    assert.equal(loaded.publicKey, id.publicKey);
    assert.equal(loaded.region, 'eu-west');
    assert.equal(publicKeyText(createPublicKey(loaded.privateKey)), id.publicKey);
  });

  test('node init refuses to overwrite an identity that peers have pinned', async () => {
    const dir = stateDir();
    await initNodeIdentity(dir, { nodeId: 'a-1', region: 'eu-west', jurisdiction: 'EU' });
    const e = await refusal(initNodeIdentity(dir, { nodeId: 'a-1', region: 'eu-west', jurisdiction: 'EU' }));
    assert.equal(e.detail, 'NODE_IDENTITY_EXISTS');
  });

  test('a node key file that other users may read is refused at load', async () => {
    const dir = stateDir();
    await initNodeIdentity(dir, { nodeId: 'a-1', region: 'eu-west', jurisdiction: 'EU' });
    chmodSync(join(dir, 'federation', 'node-key.pem'), 0o644);
    assert.throws(() => loadNodeIdentity(dir), (e: GatehouseError) => e.detail === 'NODE_IDENTITY_INSECURE' && !e.message.includes('PRIVATE'));
  });
});

describe('federation section', () => {
  test('malformed pins are reported with the path of the offending entry', () => {
    const { config, problems } = parseFederationSection({
      peers: [
        { node: 'us-east-1', region: 'us-east', jurisdiction: 'US', url: 'http://127.0.0.1:1', publicKey: 'ed25519:AAAA' },
        { node: 'us-east-1', region: 'us-east', jurisdiction: 'US', url: 'https://127.0.0.1:2', publicKey: 'ed25519:AAAA', extra: 1 },
      ],
    });
    assert.equal(config, null);
    const paths = problems.map((p) => p.path.join('.'));
    assert.ok(paths.includes('federation.peers.0.url'));
    assert.ok(paths.includes('federation.peers.0.publicKey'));
    assert.ok(paths.includes('federation.peers.1.node'), 'duplicate node id');
    assert.ok(paths.includes('federation.peers.1.extra'));
  });

  test('an unpinned node id is refused by the registry, never defaulted', () => {
    assert.throws(() => new PeerRegistry([]).get('anyone'), (e: GatehouseError) => e.detail === 'NODE_UNKNOWN' && e.code === 'AUTH_INVALID');
  });
});

describe('mutual TLS with pinned keys', () => {
  let eu: NodeIdentity, us: NodeIdentity, rogue: NodeIdentity;
  let listener: NodeListener;
  const calls: NodeCall[] = [];
  let clock = Date.now();

  before(async () => {
    eu = await initNodeIdentity(stateDir(), { nodeId: 'eu-west-1', region: 'eu-west', jurisdiction: 'EU' });
    us = await initNodeIdentity(stateDir(), { nodeId: 'us-east-1', region: 'us-east', jurisdiction: 'US' });
    rogue = await initNodeIdentity(stateDir(), { nodeId: 'rogue-1', region: 'eu-west', jurisdiction: 'EU' });
    // eu-west-1 pins us-east-1 only.
    listener = await startNodeListener({
      identity: eu, peers: registry([pin(us, 1)]), port: 0, now: () => clock,
      handlers: { echo: async (call) => { calls.push(call); return { seen: call.body, from: call.peer.nodeId, region: call.peer.region }; } },
    });
  });
  after(async () => { await listener.close(); });

  function clientOf(identity: NodeIdentity, euPin: Record<string, unknown> = pin(eu, listener.port)): FederationClient {
    return new FederationClient({ identity, peers: registry([euPin]), now: () => clock });
  }

  test('a pinned peer calls an operation and the handler sees its pinned id, region and the shared request id', async () => {
    const c = clientOf(us);
    const r = await c.call<{ seen: unknown; from: string; region: string }>('eu-west-1', 'echo', { q: 1 }, 'req-0001-shared');
    c.close();
    assert.deepEqual(r.result, { seen: { q: 1 }, from: 'us-east-1', region: 'us-east' });
    assert.equal(calls.at(-1)?.requestId, 'req-0001-shared');
    assert.equal(r.signature.length > 80, true);
  });

  test('an idle node connection outlives Node\'s default (5 s, plus 1 s of grace), so the next forwarded call pays one round trip, not a new handshake', async () => {
    let handshakes = 0;
    const count = (): void => { handshakes++; };
    listener.server.on('secureConnection', count);
    const c = clientOf(us);
    try {
      await c.call('eu-west-1', 'echo', { q: 'first' }, 'req-keepalive-1');
      await new Promise((r) => setTimeout(r, 7_000));
      await c.call('eu-west-1', 'echo', { q: 'second' }, 'req-keepalive-2');
    } finally {
      c.close();
      listener.server.off('secureConnection', count);
    }
    assert.equal(handshakes, 1);
  });

  test('a node whose key is not pinned is refused and its request never reaches a handler', async () => {
    const before = calls.length;
    const c = clientOf(rogue);
    const e = await refusal(c.call('eu-west-1', 'echo', { q: 2 }));
    c.close();
    assert.equal(e.code, 'UNAVAILABLE', 'the listener drops the connection of an unpinned key');
    assert.equal(calls.length, before);
  });

  test('a pinned node cannot speak under another node\'s id', async () => {
    const before = calls.length;
    // rogue is unpinned, so use us-east-1's key but claim to be a different (pinned-elsewhere) id.
    const c = clientOf({ ...us, nodeId: 'eu-west-2' });
    const e = await refusal(c.call('eu-west-1', 'echo', {}));
    c.close();
    assert.equal(e.detail, 'NODE_KEY_MISMATCH');
    assert.equal(calls.length, before);
  });

  test('a node lying about its region is refused because its pin fixes the region', async () => {
    const before = calls.length;
    const c = clientOf({ ...us, region: 'eu-west' });
    const e = await refusal(c.call('eu-west-1', 'echo', {}));
    c.close();
    assert.equal(e.detail, 'NODE_REGION_MISMATCH');
    assert.match(e.message, /pinned to "us-east"/);
    assert.equal(calls.length, before);
  });

  test('the client refuses a server whose key is not the pinned one, before sending anything', async () => {
    const before = calls.length;
    const c = clientOf(us, pin(eu, listener.port, { publicKey: rogue.publicKey }));
    const e = await refusal(c.call('eu-west-1', 'echo', { secret: 'sql' }));
    c.close();
    assert.equal(e.detail, 'NODE_KEY_MISMATCH');
    assert.equal(calls.length, before);
  });

  test('a captured request played again is refused as a replay', async () => {
    const body = JSON.stringify({ q: 3 });
    const path = '/federation/v1/echo';
    const signed = signRequest(us, 'eu-west-1', 'POST', path, 'req-replay-1', body, clock);
    const first = await rawPost(us, listener.port, path, { 'content-type': 'application/json', ...signed.headers }, body);
    assert.equal(first.status, 200);
    const second = await rawPost(us, listener.port, path, { 'content-type': 'application/json', ...signed.headers }, body);
    assert.equal(second.status, 401);
    assert.equal(second.body.error?.detail, 'NODE_MESSAGE_REPLAYED');
  });

  test('a request whose body was altered after signing is refused', async () => {
    const path = '/federation/v1/echo';
    const signed = signRequest(us, 'eu-west-1', 'POST', path, 'req-tamper-1', JSON.stringify({ k: 1 }), clock);
    const r = await rawPost(us, listener.port, path, { 'content-type': 'application/json', ...signed.headers }, JSON.stringify({ k: 100 }));
    assert.equal(r.body.error?.detail, 'NODE_SIGNATURE_INVALID');
  });

  test('a request signed for another node is refused', async () => {
    const path = '/federation/v1/echo';
    const body = '{}';
    const signed = signRequest(us, 'eu-west-9', 'POST', path, 'req-relay-1', body, clock);
    const r = await rawPost(us, listener.port, path, { 'content-type': 'application/json', ...signed.headers }, body);
    assert.equal(r.body.error?.detail, 'NODE_ENVELOPE_INVALID');
  });

  test('a request outside the clock-skew window is refused', async () => {
    const c = new FederationClient({ identity: us, peers: registry([pin(eu, listener.port)]), now: () => clock - 31_000 });
    const e = await refusal(c.call('eu-west-1', 'echo', {}));
    c.close();
    assert.equal(e.detail, 'NODE_MESSAGE_STALE');
  });

  test('a peer that is down is reported as unreachable, naming its node and region', async () => {
    const peer: PeerPin = registry([pin(eu, 1)]).get('eu-west-1');
    const c = new FederationClient({ identity: us, peers: new PeerRegistry([peer]) });
    const e = await refusal(c.call('eu-west-1', 'echo', {}));
    c.close();
    assert.equal(e.detail, 'NODE_UNREACHABLE');
    assert.match(e.message, /eu-west-1.*eu-west/);
  });

  test('once the clock has moved past the skew window the peer is still served (the replay cache expires by the injected clock)', async () => {
    clock += 10 * 60_000;
    const c = clientOf(us);
    const r = await c.call<{ from: string }>('eu-west-1', 'echo', {});
    c.close();
    assert.equal(r.result.from, 'us-east-1');
  });
});
