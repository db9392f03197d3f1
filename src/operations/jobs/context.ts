/**
 * What the code-to-data operations keep per running node: the job store, the sandbox worker
 * (started on first use, one per node), the key broker and the airlock store. Held beside
 * the Runtime (a WeakMap keyed by it), so the kernel needs no field for them; closed with
 * `closeJobs(rt)`.
 *
 * Attestation mode: a demo node is a test node (the `sample` TEE is accepted); any other node
 * is production and refuses it. Roles: job approvers and airlock reviewers are the
 * `data-owners` and `output-checkers` groups and the administrator groups.
 */
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyBroker } from '../../attestation/key-broker.ts';
import { NitroVerifier } from '../../attestation/nitro.ts';
import { SampleVerifier } from '../../attestation/sample.ts';
import type { AttestationMode, Verifier } from '../../attestation/types.ts';
import { AirlockStore } from '../../airlock/store.ts';
import { GatehouseError } from '../../errors.ts';
import { JobStore } from '../../jobs/store.ts';
import { SandboxWorker } from '../../jobs/sandbox/worker-process.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { PrincipalDef } from '../../model/types.ts';
import type { KeyObject } from 'node:crypto';

export interface JobsConfig {
  /** The platform key of the sample TEE the demo and tests attest with (test mode only). */
  readonly samplePlatformKey?: KeyObject;
  /** A dataset's data key; default: derived from the node's enclave key-encryption key (see below). */
  readonly dataKey?: (dataset: string) => Promise<Uint8Array>;
  readonly mode?: AttestationMode;
}

export interface JobsContext {
  readonly jobs: JobStore;
  readonly airlock: AirlockStore;
  readonly broker: KeyBroker;
  readonly mode: AttestationMode;
  worker(): Promise<SandboxWorker>;
  /** Stops the worker if one was started. */
  stopWorker(): Promise<void>;
}

const CONTEXTS = new WeakMap<Runtime, JobsContext>();
const CONFIG = new WeakMap<Runtime, JobsConfig>();

/** Sets how this node attests and where its data keys come from (before the first job operation). */
export function configureJobs(rt: Runtime, config: JobsConfig): void {
  if (CONTEXTS.has(rt)) throw new GatehouseError('CONFLICT', 'jobs are already configured on this node');
  CONFIG.set(rt, config);
}

/**
 * The default data-key source: HKDF-SHA-256 of a node-local 256-bit key (state/jobs/enclave.kek,
 * mode 0600) with the dataset name as info. The lead's wiring replaces it with the node's
 * DataKeyStore (docs/code-to-data.md).
 */
function localDataKeys(dir: string): (dataset: string) => Promise<Uint8Array> {
  const file = join(dir, 'enclave.kek');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32), { mode: 0o600 });
  const kek = readFileSync(file);
  return async (dataset) => new Uint8Array(hkdfSync('sha256', kek, Buffer.alloc(0), `gatehouse.dataset-key:${dataset}`, 32));
}

export function jobsContext(rt: Runtime): JobsContext {
  const existing = CONTEXTS.get(rt);
  if (existing) return existing;
  const config = CONFIG.get(rt) ?? {};
  const dir = join(rt.stateDir, 'jobs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const jobs = JobStore.open(join(dir, 'jobs.sqlite'));
  const airlock = AirlockStore.open(join(dir, 'airlock.sqlite'));
  const mode: AttestationMode = config.mode ?? (rt.options.demo ? 'test' : 'production');
  const verifiers: Verifier[] = [new NitroVerifier()];
  if (config.samplePlatformKey) verifiers.push(new SampleVerifier(config.samplePlatformKey));
  const broker = new KeyBroker({
    verifiers, mode, now: () => rt.now(),
    approvedMeasurements: (d) => jobs.approvedMeasurements(d),
    approvedCodeHashes: (d) => jobs.approvedHashes(d),
    dataKey: config.dataKey ?? localDataKeys(dir),
  });
  let worker: Promise<SandboxWorker> | null = null;
  const ctx: JobsContext = {
    jobs, airlock, broker, mode,
    worker() {
      worker ??= SandboxWorker.start().catch((err: unknown) => {
        worker = null;
        throw new GatehouseError('UNAVAILABLE', 'the job sandbox could not start', { cause: err, hint: 'operators: read the server log' });
      });
      return worker;
    },
    async stopWorker() {
      const w = worker;
      worker = null;
      if (w) await (await w.catch(() => null))?.stop();
    },
  };
  CONTEXTS.set(rt, ctx);
  return ctx;
}

/** Stops the sandbox worker and closes the stores (the node's close calls it). */
export async function closeJobs(rt: Runtime): Promise<void> {
  const ctx = CONTEXTS.get(rt);
  if (!ctx) return;
  CONTEXTS.delete(rt);
  await ctx.stopWorker();
  ctx.jobs.close();
  ctx.airlock.close();
}

export const REVIEWER_GROUPS = ['data-owners', 'output-checkers'] as const;

/** Data owners, output checkers and administrators may approve jobs and review outputs. */
export function isOwnerOrReviewer(rt: Runtime, p: PrincipalDef): boolean {
  return rt.isAdmin(p) || p.groups.some((g) => (REVIEWER_GROUPS as readonly string[]).includes(g));
}

export function requireOwner(rt: Runtime, p: PrincipalDef, what: string): void {
  if (!isOwnerOrReviewer(rt, p)) {
    throw new GatehouseError('POLICY_DENIED', `${what} is reserved to data owners, output checkers and administrators`, { reasons: [`not a member of ${[...REVIEWER_GROUPS, ...rt.adminGroups()].join(', ')}`] });
  }
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
