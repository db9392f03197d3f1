/**
 * One node listener for every node-to-node route a workspace enables (src/node/start.ts): a
 * bank's served node, in its own process, is in a clean room and in a residency federation at
 * once. A pinned peer (bank-b, the test) reaches both on the one mutual-TLS port: a forwarded
 * residency query, answered under bank-a's policy, and a clean-room invitation, checked
 * against bank-b's pinned key and kept for bank-a's administrator. A key nobody pinned gets
 * neither.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bankRows, writeBankWorkspace } from '../src/cleanroom/demo-bank.ts';
import { signInvitation } from '../src/cleanroom/invitation.ts';
import { FederationClient, PeerRegistry, initNodeIdentity, parsePublicKey, type NodeIdentity } from '../src/federation/index.ts';
import { apiKeyDigest } from '../src/identity/digest.ts';

const PROCESS = join(import.meta.dirname, '..', 'src', 'node', 'cleanroom-process.ts');
const ADMIN_KEY = 'bank-a-administrator-key-0123456789abcdef';
const PARTNER_KEY = 'bank-a-partner-analyst-key-0123456789abcdef';
const ACCOUNTS = 60;

let dir: string;
let child: ChildProcess;
let ports: { http: number; federation: number };
let bankA: NodeIdentity;
let bankB: NodeIdentity;
let peer: FederationClient;
let listen: number;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-one-listener-'));
  const ws = join(dir, 'bank-a');
  writeBankWorkspace(ws, { bank: 'bank-a', index: 0, accounts: ACCOUNTS, offset: 0, apiKey: 'unused-bank-a-0123456789abcdef' });
  bankA = await initNodeIdentity(join(ws, 'state'), { nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU' });
  bankB = await initNodeIdentity(join(dir, 'bank-b'), { nodeId: 'bank-b', region: 'eu', jurisdiction: 'EU' });
  listen = await freePort();
  // The bank's workspace, federated: a region, bank-b pinned, residency for accounts, an
  // administrator, and a partner analyst whom bank-a's policy lets count accounts by segment.
  let yaml = readFileSync(join(ws, 'gatehouse.yaml'), 'utf8').replace(/\n    apiKeySha256: \[[0-9a-f]+\]\n$/, '\n');
  yaml += `  ops:\n    groups: [admins]\n    attributes: { org: bank-a, region: eu }\n    apiKeySha256: [${apiKeyDigest(ADMIN_KEY)}]\n`;
  yaml += `  partner:\n    groups: [analysts]\n    attributes: { org: bank-b, region: eu }\n    apiKeySha256: [${apiKeyDigest(PARTNER_KEY)}]\n`;
  yaml += 'region: { node: bank-a, region: eu, jurisdiction: EU }\n';
  yaml += `federation:\n  listen: { host: 127.0.0.1, port: ${listen} }\n  peers:\n    - { node: bank-b, region: eu, jurisdiction: EU, url: "https://127.0.0.1:1", publicKey: "${bankB.publicKey}" }\n`;
  yaml += 'residency:\n  datasets:\n    accounts: { storedIn: eu, processIn: [eu] }\n';
  writeFileSync(join(ws, 'gatehouse.yaml'), yaml);
  yaml = yaml.replace('obligations:\n', 'obligations:\n  partner-aggregates:\n    aggregationOnly: { minGroupSize: 5 }\n');
  writeFileSync(join(ws, 'gatehouse.yaml'), yaml);
  writeFileSync(join(ws, 'policies', 'partner.cedar'), `@id("partner-segments")
@obligations("partner-aggregates")
@reason("the partner counts accounts by segment for fraud detection")
permit (principal == Principal::"partner", action == Action::"query", resource == Dataset::"accounts")
when { context.purpose == "fraud-detection" };
`);
  child = spawn(process.execPath, [PROCESS, '--served', ws], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GATEHOUSE_PAILLIER_BITS: '1024', GATEHOUSE_KEY_PASSPHRASE: 'one listener test passphrase' } });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bank-a exited ${code}: ${err}`)));
  });
  ports = JSON.parse(line) as { http: number; federation: number };
  peer = new FederationClient({
    identity: bankB,
    peers: new PeerRegistry([{ nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU', url: `https://127.0.0.1:${ports.federation}`, publicKey: bankA.publicKey, key: parsePublicKey(bankA.publicKey)! }]),
  });
});

after(async () => {
  peer?.close();
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('one node listener for residency and clean rooms', () => {
  it('the served node reports one node port, the one gatehouse.yaml names', () => {
    assert.equal(ports.federation, listen);
  });

  it('answers a forwarded residency query on that port, under its own policy and the border rule', async () => {
    const sql = 'SELECT segment, count(*) AS accounts FROM accounts GROUP BY segment ORDER BY segment';
    const { result } = await peer.call<{ response: { rows: unknown[][] }; node: string; region: string }>('bank-a', 'query', { credential: PARTNER_KEY, sql, purpose: 'fraud-detection', source: '127.0.0.1' });
    assert.equal(result.node, 'bank-a');
    // Only aggregates cross (the residency border rule); groups under 5 customers are withheld.
    const plain = new Map<string, number>();
    for (const r of bankRows(0, ACCOUNTS, 0)) plain.set(r.segment, (plain.get(r.segment) ?? 0) + 1);
    assert.ok(result.response.rows.length > 0);
    for (const [segment, n] of result.response.rows as [string, number][]) assert.equal(Number(n), plain.get(segment), `segment ${segment}`);
  });

  it('answers a clean-room call on the same port: a signed invitation from bank-b reaches bank-a\'s administrator', async () => {
    const now = new Date();
    const invitation = signInvitation({
      collaborationId: 'shared-rings', name: 'Shared rings', purpose: 'fraud-detection', inviter: 'bank-b', invitee: 'bank-a', inviteeKey: bankA.publicKey,
      abilities: ['query', 'receive'], computeNode: 'bank-b', issuedAt: now.toISOString(), expiresAt: new Date(now.getTime() + 3_600_000).toISOString(),
    }, bankB.privateKey);
    const { result } = await peer.call<{ received: boolean }>('bank-a', 'cleanroom-invite', { invitation });
    assert.equal(result.received, true);
    const listed = await fetch(`http://127.0.0.1:${ports.http}/v1/cleanrooms`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(listed.status, 200);
    const body = await listed.json() as { invitations: { collaborationId: string; inviter: string }[] };
    assert.deepEqual(body.invitations.map((i) => `${i.collaborationId} from ${i.inviter}`), ['shared-rings from bank-b']);
  });

  it('a key nobody pinned reaches neither route on that port', async () => {
    const stranger = await initNodeIdentity(join(dir, 'stranger'), { nodeId: 'bank-b', region: 'eu', jurisdiction: 'EU' });
    const client = new FederationClient({
      identity: stranger,
      peers: new PeerRegistry([{ nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU', url: `https://127.0.0.1:${ports.federation}`, publicKey: bankA.publicKey, key: parsePublicKey(bankA.publicKey)! }]),
    });
    try {
      await assert.rejects(client.call('bank-a', 'query', { credential: PARTNER_KEY, sql: 'SELECT count(*) FROM accounts', purpose: 'fraud-detection', source: '127.0.0.1' }));
      await assert.rejects(client.call('bank-a', 'cleanroom-invite', { invitation: {} }));
    } finally {
      client.close();
    }
  });
});
