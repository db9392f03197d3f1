/**
 * Starts several bank nodes (src/node/cleanroom-process.ts) as child processes on loopback ports, pins
 * each one's key at every other, and hands back a client per node. Used by
 * `gatehouse cleanroom demo` and the multi-node tests; every process is stopped by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';

export interface BankNode {
  readonly nodeId: string;
  readonly publicKey: string;
  readonly controlUrl: string;
  readonly nodeUrl: string;
  readonly dir: string;
  /** Calls one of the node's clean-room routes; resolves to {status, body}. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  readonly process: ChildProcess;
}

export interface Cluster {
  readonly nodes: readonly BankNode[];
  node(id: string): BankNode;
  stop(): Promise<void>;
}

interface Spec {
  readonly nodeId: string;
  readonly accounts: number;
  readonly offset: number;
  readonly readDelayMs?: number;
  /** Test mode only: this node accepts evidence of the sample TEE with this platform key (base64 SPKI). */
  readonly samplePlatformKey?: string;
  /** Test mode only: this node attests as a compute node with the local sandbox attester on this platform seed (base64url). */
  readonly attesterSeed?: string;
}

const ENTRY = resolve(import.meta.dirname, '..', 'node', 'cleanroom-process.ts');

export async function startCluster(dir: string, specs: readonly Spec[], options: { paillierBits?: number; log?: (line: string) => void } = {}): Promise<Cluster> {
  const token = randomBytes(24).toString('base64url');
  const started: { spec: Spec; child: ChildProcess; next: () => Promise<Record<string, unknown>> }[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map(({ child }) => new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) { res(); return; }
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, 10_000);
      child.once('exit', () => { clearTimeout(timer); res(); });
      child.kill('SIGTERM');
    })));
  };
  try {
    for (const [index, spec] of specs.entries()) {
      const child = spawn(process.execPath, [ENTRY, JSON.stringify({ dir: join(dir, spec.nodeId), nodeId: spec.nodeId, index, accounts: spec.accounts, offset: spec.offset, ...(spec.readDelayMs ? { readDelayMs: spec.readDelayMs } : {}), ...(spec.samplePlatformKey ? { samplePlatformKey: spec.samplePlatformKey } : {}), ...(spec.attesterSeed ? { attesterSeed: spec.attesterSeed } : {}), ...(options.paillierBits ? { paillierBits: options.paillierBits } : {}) })], {
        env: { ...process.env, GATEHOUSE_NODE_TOKEN: token }, stdio: ['pipe', 'pipe', 'pipe'],
      });
      const stderr: string[] = [];
      child.stderr!.on('data', (d: Buffer) => { stderr.push(d.toString()); options.log?.(`[${spec.nodeId}] ${d.toString().trimEnd()}`); });
      const rl = createInterface({ input: child.stdout! });
      const pending: string[] = [];
      const waiters: ((l: string) => void)[] = [];
      rl.on('line', (l) => { if (!l.startsWith('{')) { options.log?.(`[${spec.nodeId}] ${l}`); return; } const w = waiters.shift(); if (w) w(l); else pending.push(l); });
      const next = (): Promise<Record<string, unknown>> => new Promise((res, rej) => {
        const q = pending.shift();
        if (q !== undefined) { res(JSON.parse(q)); return; }
        const onExit = (): void => rej(new Error(`node ${spec.nodeId} exited during start-up: ${stderr.join('').slice(-2000)}`));
        child.once('exit', onExit);
        waiters.push((l) => { child.off('exit', onExit); res(JSON.parse(l)); });
      });
      started.push({ spec, child, next });
    }
    const identities = await Promise.all(started.map((s) => s.next()));
    const pins = identities.map((i) => ({ node: i.nodeId, publicKey: i.publicKey }));
    for (const s of started) s.child.stdin!.write(`${JSON.stringify({ pins })}\n`);
    const listening = await Promise.all(started.map((s) => s.next()));
    const urls = Object.fromEntries(started.map((s, i) => [s.spec.nodeId, `https://127.0.0.1:${listening[i]!.port}`]));
    for (const s of started) s.child.stdin!.write(`${JSON.stringify({ urls })}\n`);
    const ready = await Promise.all(started.map((s) => s.next()));
    const nodes: BankNode[] = started.map((s, i) => {
      const controlUrl = `http://127.0.0.1:${ready[i]!.controlPort}`;
      return {
        nodeId: s.spec.nodeId, publicKey: String(identities[i]!.publicKey), controlUrl, nodeUrl: urls[s.spec.nodeId]!, dir: join(dir, s.spec.nodeId), process: s.child,
        async call(method, path, body) {
          const res = await fetch(controlUrl + path, {
            method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
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
