/**
 * Binary bodies on the node channel (src/federation/transport.ts, application/cbor): PSI
 * points travel as bytes instead of base64, signed and checked like every node message, and
 * a peer's refusal still comes back as the same GatehouseError.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatehouseError } from '../src/errors.ts';
import { FederationClient, initNodeIdentity, parseFederationSection, PeerRegistry, signRequest, startNodeListener, type NodeIdentity, type NodeListener } from '../src/federation/index.ts';

let dir: string;
let server: NodeIdentity, client: NodeIdentity;
let listener: NodeListener;
let fed: FederationClient;
const seen: unknown[] = [];

const registry = (id: NodeIdentity, port: number): PeerRegistry => new PeerRegistry(parseFederationSection({ peers: [{ node: id.nodeId, region: id.region, jurisdiction: id.jurisdiction, url: `https://127.0.0.1:${port}`, publicKey: id.publicKey }] }).config!.peers);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-psi-binary-'));
  server = await initNodeIdentity(join(dir, 's'), { nodeId: 'bank-b', region: 'eu', jurisdiction: 'EU' });
  client = await initNodeIdentity(join(dir, 'c'), { nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU' });
  listener = await startNodeListener({
    identity: server, peers: registry(client, 1), port: 0,
    handlers: {
      points: async (call) => {
        seen.push(call.body);
        const m = (call.body as { message: unknown }).message;
        if (!(m instanceof Uint8Array)) throw new GatehouseError('REQUEST_INVALID', 'expected bytes');
        return { reply: Uint8Array.from(m, (b) => b ^ 0xff), count: m.length / 32 };
      },
    },
  });
  fed = new FederationClient({ identity: client, peers: registry(server, listener.port) });
});

after(async () => {
  fed?.close();
  await listener?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The bytes a body takes on the wire, sent both ways by a raw signed request. */
function wireBytes(contentType: string, body: string | Uint8Array): Promise<number> {
  const signed = signRequest(client, server.nodeId, 'POST', '/federation/v1/points', `size-${randomBytes(6).toString("hex")}`, body, Date.now());
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: listener.port, path: '/federation/v1/points', method: 'POST', key: client.keyPem, cert: client.certPem, rejectUnauthorized: false, agent: false,
      headers: { 'content-type': contentType, 'content-length': typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength, ...signed.headers } }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; });
      res.on('end', () => resolve(n));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('binary bodies on the node channel', () => {
  it('carries PSI points as bytes both ways, and the handler sees a Uint8Array', async () => {
    const points = new Uint8Array(randomBytes(32 * 4096));
    const { result } = await fed.callBinary<{ reply: Uint8Array; count: number }>('bank-b', 'points', { collaborationId: 'fraud-ring', message: points });
    assert.ok(result.reply instanceof Uint8Array);
    assert.equal(result.count, 4096);
    assert.ok(Buffer.from(result.reply).equals(Buffer.from(Uint8Array.from(points, (b) => b ^ 0xff))));
    assert.ok((seen.at(-1) as { message: unknown }).message instanceof Uint8Array);
  });

  it('is a quarter smaller on the wire than the same points in base64 JSON', async () => {
    const points = new Uint8Array(randomBytes(32 * 4096));
    const { encode } = await import('cbor2');
    const cbor = encode({ message: points });
    const json = JSON.stringify({ message: Buffer.from(points).toString('base64') });
    assert.ok(cbor.byteLength < 0.76 * json.length, `${cbor.byteLength} bytes as CBOR, ${json.length} as JSON`);
    // The listener answers a binary request in binary: the answer is as small.
    const answered = await wireBytes('application/cbor', cbor);
    assert.ok(answered < 32 * 4096 + 200, `answer of ${answered} bytes`);
  });

  it('returns a peer\'s refusal of a binary request as the same GatehouseError', async () => {
    await assert.rejects(fed.callBinary('bank-b', 'points', { message: 'not bytes' }), (e: unknown) => e instanceof GatehouseError && e.code === 'REQUEST_INVALID' && /expected bytes/.test(e.message));
  });

  it('refuses a body labelled CBOR that is not CBOR, before any handler runs', async () => {
    const before = seen.length;
    const n = await wireBytes('application/cbor', new Uint8Array([0xff, 0xff, 0x00]));
    assert.ok(n > 0);
    assert.equal(seen.length, before, 'the handler never ran');
  });
});
