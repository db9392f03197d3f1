/**
 * One bank's node as its own process, for `gatehouse cleanroom demo` and the multi-node
 * tests: a Gatehouse node on a synthetic bank workspace (its own policy, engine and
 * transparency log), a node identity (Ed25519 key and certificate), the node-to-node
 * listener (mutual TLS, pinned peers) and the clean-room routes on a loopback port.
 *
 * Peers' ports are known only once every node listens, so start-up is a short exchange of
 * JSON lines with the parent:
 *   → {"event":"identity","nodeId","publicKey"}          ← {"pins":[{node,publicKey}]}
 *   → {"event":"listening","port"}                        ← {"urls":{node:url}}
 *   → {"event":"ready","controlPort"}
 * Then the parent drives it over HTTP with the bearer token it gave in GATEHOUSE_NODE_TOKEN.
 * SIGTERM closes everything.
 *
 * `cleanroom-process.ts --served <workspace dir> [<attestation json>]` is the served node instead:
 * `startNode` with clean rooms on (identity in <workspace>/state, peers and the one node
 * listener from gatehouse.yaml, which also carries residency routing and federated learning,
 * the routes on the node's own HTTP API behind its administrators' credentials). It prints one
 * line {"http": port, "federation": port} when ready.
 *
 * Attestation (tests and the walkthrough, test mode only): `attesterSeed` (base64url, 32 bytes)
 * makes the node a compute node with the local sandbox attester, a sample TEE on that platform
 * key measuring the compute path; `samplePlatformKey` (base64 SPKI) lets the node, as a member,
 * accept that platform's evidence.
 */
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import { GatehouseError } from '../errors.ts';
import { FederationClient, PeerRegistry, initNodeIdentity, loadNodeIdentity, hasNodeIdentity, parsePublicKey, startNodeListener, type PeerPin } from '../federation/index.ts';
import { startNode } from './start.ts';
import { loadParser } from '../query/parse.ts';
import { registerCleanroomRoutes } from '../server/cleanroom-routes.ts';
import { transparencyLogAudit } from '../cleanroom/audit-log.ts';
import { writeBankWorkspace } from '../cleanroom/demo-bank.ts';
import { pipelineMemberData } from '../cleanroom/member-data.ts';
import { generateSealingKeys } from '../cleanroom/sealed-columns.ts';
import { CleanroomService, type MemberData } from '../cleanroom/service.ts';
import { FileCollaborationStore } from '../cleanroom/store.ts';
import { ProgressMeter, formatProgress } from '../psi/progress.ts';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { SampleTee } from '../attestation/sample.ts';
import { sandboxAttester, sandboxMeasurement, type ComputeAttester } from '../cleanroom/compute-attester.ts';

interface AttestationArgs {
  readonly samplePlatformKey?: string;
  readonly attesterSeed?: string;
}

/** The test-mode attestation a node process was given (none: production, no attester). */
function attestationOf(a: AttestationArgs): { platformKey: KeyObject | null; attester: ComputeAttester | null } {
  const platformKey = a.samplePlatformKey ? createPublicKey({ key: Buffer.from(a.samplePlatformKey, 'base64'), format: 'der', type: 'spki' }) : null;
  const attester = a.attesterSeed ? sandboxAttester(new SampleTee({ measurement: sandboxMeasurement(), seed: new Uint8Array(Buffer.from(a.attesterSeed, 'base64url')) })) : null;
  return { platformKey, attester };
}

interface Args extends AttestationArgs {
  readonly dir: string;
  readonly nodeId: string;
  readonly index: number;
  readonly accounts: number;
  readonly offset: number;
  readonly paillierBits?: number;
  /** Pacing for the walkthrough and the leave-mid-query test: each read of own data waits this long. */
  readonly readDelayMs?: number;
}

const lines = createInterface({ input: process.stdin });
const queue: string[] = [];
const waiters: ((l: string) => void)[] = [];
lines.on('line', (l) => { const w = waiters.shift(); if (w) w(l); else queue.push(l); });
const nextLine = (): Promise<Record<string, unknown>> => new Promise((resolve) => {
  const take = (l: string): void => resolve(JSON.parse(l) as Record<string, unknown>);
  const q = queue.shift();
  if (q !== undefined) take(q); else waiters.push(take);
});
const say = (o: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

function pinsOf(list: unknown, urls: Record<string, string>, self: string): PeerPin[] {
  return (list as { node: string; publicKey: string }[]).filter((p) => p.node !== self).map((p) => ({
    nodeId: p.node, region: 'eu', jurisdiction: 'EU', url: urls[p.node] ?? 'https://127.0.0.1:1', publicKey: p.publicKey, key: parsePublicKey(p.publicKey)!,
  }));
}

/** Long PSI phases as "elements done, rate, time left" lines on stderr (the operator's log). */
function progressLine(nodeId: string): (phase: string, done: number, total: number) => void {
  const meters = new Map<string, (done: number) => void>();
  const sink = (r: Parameters<typeof formatProgress>[0]): void => { process.stderr.write(`[${nodeId}] psi ${formatProgress(r)}\n`); };
  return (phase, done, total) => {
    let tick = meters.get(phase);
    if (!tick || done === 0) { tick = new ProgressMeter(sink, { intervalMs: 2000 }).start(phase, total); meters.set(phase, tick); }
    tick(done);
    if (done >= total) meters.delete(phase);
  };
}

function paced(data: MemberData, ms: number): MemberData {
  if (ms <= 0) return data;
  return { read: async (...a) => { await new Promise((r) => setTimeout(r, ms)); return data.read(...a); } };
}

/** The served node: what `gatehouse serve` runs, with clean rooms on. */
async function served(ws: string, options: AttestationArgs): Promise<void> {
  await loadParser();
  const { platformKey, attester } = attestationOf(options);
  const node = await startNode({
    workspaceDir: ws, auditDir: join(ws, 'audit'), engineOptions: { poolSize: 1, threads: 1 }, http: { port: 0 }, wire: null, tls: null,
    ...(platformKey ? { attestation: { allowSample: true, samplePlatformKey: platformKey } } : {}),
    cleanroom: { paillierBits: Number(process.env.GATEHOUSE_PAILLIER_BITS) || 2048, onProgress: progressLine(basename(ws)), ...(attester ? { attester } : {}) },
  });
  const { cleanroomOf } = await import('../cleanroom/node.ts');
  if (!cleanroomOf(node.gatehouse)) throw new Error('the node started without clean rooms');
  say({ http: node.http!.port, federation: node.residency!.port });
  const close = (): void => { void node.close().then(() => process.exit(0)); };
  process.on('SIGTERM', close);
  process.on('SIGINT', close);
}

async function main(): Promise<void> {
  if (process.argv[2] === '--served') return served(process.argv[3] ?? '.', JSON.parse(process.argv[4] ?? '{}') as AttestationArgs);
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const token = process.env.GATEHOUSE_NODE_TOKEN ?? '';
  if (token.length < 16) throw new Error('GATEHOUSE_NODE_TOKEN must be set (at least 16 characters)');
  const ws = join(args.dir, 'workspace');
  const apiKey = `cleanroom-${args.nodeId}-service-key-0123456789`;
  if (!existsSync(join(ws, 'gatehouse.yaml'))) writeBankWorkspace(ws, { bank: args.nodeId, index: args.index, accounts: args.accounts, offset: args.offset, apiKey });
  mkdirSync(join(args.dir, 'state'), { recursive: true });
  const identity = hasNodeIdentity(join(args.dir, 'state')) ? loadNodeIdentity(join(args.dir, 'state')) : await initNodeIdentity(join(args.dir, 'state'), { nodeId: args.nodeId, region: 'eu', jurisdiction: 'EU' });
  await loadParser();
  const node = await startNode({ workspaceDir: ws, auditDir: join(args.dir, 'audit'), demo: true, engineOptions: { poolSize: 1, threads: 1 }, http: null, wire: null, tls: null, setup: {}, federation: null });
  say({ event: 'identity', nodeId: identity.nodeId, publicKey: identity.publicKey });

  const { pins } = await nextLine();
  const sealing = await generateSealingKeys();
  const attestation = attestationOf(args);
  let service: CleanroomService | null = null;
  const listener = await startNodeListener({
    identity, peers: new PeerRegistry(pinsOf(pins, {}, identity.nodeId)), port: 0,
    handlers: new Proxy({}, {
      // Handlers exist once the service does (after the peers' addresses are known).
      has: (_t, op) => service !== null && typeof op === 'string' && op in service.handlers(),
      get: (_t, op) => (service === null || typeof op !== 'string' ? undefined : service.handlers()[op]),
      getOwnPropertyDescriptor: (_t, op) => (service !== null && typeof op === 'string' && op in service.handlers() ? { configurable: true, enumerable: true, value: service.handlers()[op] } : undefined),
    }),
  });
  say({ event: 'listening', port: listener.port });

  const { urls } = await nextLine();
  const peers = new PeerRegistry(pinsOf(pins, urls as Record<string, string>, identity.nodeId));
  const client = new FederationClient({ identity, peers, timeoutMs: 120_000 });
  service = new CleanroomService({
    identity, peers, client, sealing, store: new FileCollaborationStore(join(args.dir, 'cleanroom')),
    audit: transparencyLogAudit(node.audit), data: paced(pipelineMemberData(node.gatehouse, apiKey), args.readDelayMs ?? 0), budgets: node.gatehouse.budgets,
    ...(attestation.platformKey ? { attestation: { mode: 'test' as const, samplePlatformKey: attestation.platformKey } } : {}),
    ...(attestation.attester ? { attester: attestation.attester } : {}),
    ...(args.paillierBits ? { paillierBits: args.paillierBits } : {}),
    onProgress: progressLine(identity.nodeId),
  });

  const app = Fastify({ bodyLimit: 50 * 1024 * 1024 });
  const expected = Buffer.from(`Bearer ${token}`);
  await registerCleanroomRoutes(app, service, {
    authorize: (req) => {
      const got = Buffer.from(String(req.headers.authorization ?? ''));
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new GatehouseError('AUTH_REQUIRED', 'send the node token as a bearer credential');
    },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  say({ event: 'ready', controlPort: typeof address === 'object' && address ? address.port : 0 });

  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    client.close();
    await app.close();
    await listener.close();
    await node.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => { void close(); });
  process.on('SIGINT', () => { void close(); });
  lines.on('close', () => { void close(); });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
