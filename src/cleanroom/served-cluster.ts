/**
 * Starts several synthetic banks as served nodes (`src/node/cleanroom-process.ts --served`:
 * `startNode` with clean rooms on, what `gatehouse serve` runs), each its own process on
 * loopback ports, for `gatehouse cleanroom demo`. Unlike the bare test nodes of cluster.ts,
 * a served node keeps its governance (vendors, agreements, the partner workspaces), so a
 * result its compute node delivers is deposited in each receiving member's workspace first
 * (issue 23, result-deposits.ts), and it is managed as an operator manages it: through its own
 * HTTP API with an administrator's key.
 *
 * Each bank's workspace (demo-bank.ts) is made federated the way docs/cleanrooms.md tells an
 * operator to: a `region:` section naming the node, the node listener and every other bank
 * pinned by its Ed25519 key under `federation.peers`, residency for its accounts, and an
 * administrator `ops` whose API key the caller gets back. The clean-room principal keeps no
 * key: collaborations read as it inside the node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { initNodeIdentity } from '../federation/index.ts';
import { apiKeyDigest } from '../identity/digest.ts';
import { writeBankWorkspace } from './demo-bank.ts';

export interface ServedBank {
  readonly nodeId: string;
  readonly publicKey: string;
  readonly httpUrl: string;
  readonly nodeUrl: string;
  readonly dir: string;
  /** The node administrator's API key (generated for this run). */
  readonly adminKey: string;
  /** Calls the node's HTTP API as its administrator; resolves to {status, body}. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export interface ServedCluster {
  readonly nodes: readonly ServedBank[];
  node(id: string): ServedBank;
  stop(): Promise<void>;
}

export interface ServedSpec {
  readonly nodeId: string;
  readonly accounts: number;
  readonly offset: number;
}

const ENTRY = resolve(import.meta.dirname, '..', 'node', 'cleanroom-process.ts');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

/** gatehouse.yaml made federated: administrator, region, pinned peers, residency; no key for the clean-room principal. */
export function federateBankWorkspace(ws: string, bank: string, listen: number, adminKey: string, peers: readonly { node: string; url: string; publicKey: string }[]): void {
  let yaml = readFileSync(join(ws, 'gatehouse.yaml'), 'utf8');
  yaml = yaml.replace(/\n    apiKeySha256: \[[0-9a-f]+\]\n$/, '\n');
  yaml += `  ops:\n    displayName: Node administrator\n    groups: [admins]\n    attributes: { org: ${bank}, region: eu }\n    apiKeySha256: [${apiKeyDigest(adminKey)}]\n`;
  yaml += `region: { node: ${bank}, region: eu, jurisdiction: EU }\n`;
  yaml += `federation:\n  listen: { host: 127.0.0.1, port: ${listen} }\n  peers:\n`;
  for (const p of peers) yaml += `    - { node: ${p.node}, region: eu, jurisdiction: EU, url: "${p.url}", publicKey: "${p.publicKey}" }\n`;
  yaml += 'residency:\n  datasets:\n    accounts: { storedIn: eu, processIn: [eu] }\n';
  writeFileSync(join(ws, 'gatehouse.yaml'), yaml);
}

export async function startServedBanks(dir: string, specs: readonly ServedSpec[], options: { paillierBits?: number; log?: (line: string) => void } = {}): Promise<ServedCluster> {
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) { res(); return; }
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, 10_000);
      child.once('exit', () => { clearTimeout(timer); res(); });
      child.kill('SIGTERM');
    })));
  };
  // The vault that holds the partner workspaces is sealed under this run's passphrase.
  const passphrase = randomBytes(24).toString('base64url');
  const banks: { spec: ServedSpec; ws: string; adminKey: string; publicKey: string; listen: number }[] = [];
  for (const [index, spec] of specs.entries()) {
    const ws = join(dir, spec.nodeId);
    const adminKey = `${spec.nodeId}-admin-${randomBytes(18).toString('base64url')}`;
    writeBankWorkspace(ws, { bank: spec.nodeId, index, accounts: spec.accounts, offset: spec.offset, apiKey: `unused-${randomBytes(18).toString('base64url')}` });
    const { publicKey } = await initNodeIdentity(join(ws, 'state'), { nodeId: spec.nodeId, region: 'eu', jurisdiction: 'EU' });
    banks.push({ spec, ws, adminKey, publicKey, listen: await freePort() });
  }
  for (const b of banks) {
    federateBankWorkspace(b.ws, b.spec.nodeId, b.listen, b.adminKey, banks.filter((o) => o !== b).map((o) => ({ node: o.spec.nodeId, url: `https://127.0.0.1:${o.listen}`, publicKey: o.publicKey })));
  }
  try {
    const ports = await Promise.all(banks.map(async (b) => {
      const child = spawn(process.execPath, [ENTRY, '--served', b.ws, '{}'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, GATEHOUSE_KEY_PASSPHRASE: passphrase, ...(options.paillierBits ? { GATEHOUSE_PAILLIER_BITS: String(options.paillierBits) } : {}) },
      });
      children.push(child);
      let err = '';
      child.stderr!.on('data', (c: Buffer) => { err += c.toString(); options.log?.(`[${b.spec.nodeId}] ${c.toString().trimEnd()}`); });
      const line = await new Promise<string>((res, rej) => {
        createInterface({ input: child.stdout! }).once('line', res);
        child.once('exit', (code) => rej(new Error(`node ${b.spec.nodeId} exited during start-up (${code}): ${err.slice(-2000)}`)));
      });
      return JSON.parse(line) as { http: number; federation: number };
    }));
    const nodes: ServedBank[] = banks.map((b, i) => {
      const httpUrl = `http://127.0.0.1:${ports[i]!.http}`;
      return {
        nodeId: b.spec.nodeId, publicKey: b.publicKey, httpUrl, nodeUrl: `https://127.0.0.1:${b.listen}`, dir: b.ws, adminKey: b.adminKey,
        async call(method, path, body) {
          const res = await fetch(httpUrl + path, {
            method, headers: { authorization: `Bearer ${b.adminKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(600_000),
          });
          return { status: res.status, body: await res.json() };
        },
      };
    });
    return {
      nodes,
      node: (id) => { const n = nodes.find((x) => x.nodeId === id); if (!n) throw new Error(`no node ${id}`); return n; },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
