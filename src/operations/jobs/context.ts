/**
 * What the code-to-data operations keep per running node: the job store, the airlock store
 * and the key broker's challenges on the node's state (src/sql/tables/jobs.ts: the shared
 * PostgreSQL driver when the node has one, else `state/code-to-data.sqlite`), and the sandbox
 * worker (started on first use, one per node). Held beside the Runtime (a WeakMap keyed by
 * it), so the kernel needs no field for them; closed with `closeJobs(rt)`.
 *
 * Attestation mode is explicit: only a node configured with `allowSample: true` (the node
 * config's `attestation`, set by `serve --demo` and by tests) is a test node that accepts the
 * `sample` TEE; every other node, a demo workspace included, is production and refuses it.
 * Released data keys are the datasets' own keys from the node's governance vault (the
 * DataKeyStore that encrypts them at rest, src/kernel/governance-runtime.ts).
 *
 * Roles: job approvers and airlock reviewers are the `data-owners` and `output-checkers`
 * groups and the administrator groups.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { SqlChallengeStore } from '../../attestation/challenge-store.ts';
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
import type { SqlDriver } from '../../sql/driver.ts';
import { SqliteDriver, sqliteDialect } from '../../sql/sqlite.ts';
import { jobTables } from '../../sql/tables/jobs.ts';

export interface JobsConfig {
  /** Test mode: accept the software `sample` TEE. Absent or false: production, refused. */
  readonly allowSample?: boolean;
  /** The platform key of the sample TEE (used only with allowSample). */
  readonly samplePlatformKey?: KeyObject;
  /** A dataset's data key; default: the node's DataKeyStore (the dataset's live key). */
  readonly dataKey?: (dataset: string) => Promise<Uint8Array>;
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

const CONTEXTS = new WeakMap<Runtime, JobsContext & { close(): Promise<void> }>();
const CONFIG = new WeakMap<Runtime, JobsConfig>();

/** Sets how this node attests (before the first job operation; a later call replaces an earlier one). */
export function configureJobs(rt: Runtime, config: JobsConfig): void {
  if (CONTEXTS.has(rt)) throw new GatehouseError('CONFLICT', 'jobs are already configured on this node');
  CONFIG.set(rt, config);
}

/** The dataset's live data key from the node's vault; a dataset without one cannot be released to an enclave. */
function vaultDataKeys(rt: Runtime): (dataset: string) => Promise<Uint8Array> {
  return async (dataset) => {
    try {
      return new Uint8Array(await rt.governance.datasetKey(dataset));
    } catch (err) {
      throw new GatehouseError('NOT_FOUND', `dataset "${dataset}" has no data key to release to an enclave: ${(err as Error).message}`, {
        cause: err, hint: 'key release is for datasets stored encrypted (`gatehouse ingest`); an enclave reads other datasets through the governed query path',
      });
    }
  };
}

export function jobsContext(rt: Runtime): JobsContext {
  const existing = CONTEXTS.get(rt);
  if (existing) return existing;
  const config = CONFIG.get(rt) ?? {};
  const shared = (rt.backend as { driver?: SqlDriver }).driver;
  const owns = !(rt.backend.kind === 'postgres' && shared);
  const sql: SqlDriver = owns
    ? SqliteDriver.openSync(join(rt.stateDir, 'code-to-data.sqlite'), { busyTimeoutMs: 5000, schema: jobTables(sqliteDialect()) })
    : shared!;
  const jobs = new JobStore(sql);
  const airlock = new AirlockStore(sql);
  const mode: AttestationMode = config.allowSample === true ? 'test' : 'production';
  const verifiers: Verifier[] = [new NitroVerifier()];
  if (config.samplePlatformKey) verifiers.push(new SampleVerifier(config.samplePlatformKey));
  const broker = new KeyBroker({
    verifiers, mode, now: () => rt.now(),
    challenges: new SqlChallengeStore(sql),
    approvedMeasurements: (d) => jobs.approvedMeasurements(d),
    approvedCodeHashes: (d) => jobs.approvedHashes(d),
    dataKey: config.dataKey ?? vaultDataKeys(rt),
  });
  let worker: Promise<SandboxWorker> | null = null;
  const ctx = {
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
    async close() {
      await ctx.stopWorker();
      if (owns) await sql.close();
    },
  };
  CONTEXTS.set(rt, ctx);
  return ctx;
}

/** Stops the sandbox worker and closes an embedded store (a shared PostgreSQL driver belongs to the state). */
export async function closeJobs(rt: Runtime): Promise<void> {
  const ctx = CONTEXTS.get(rt);
  if (!ctx) return;
  CONTEXTS.delete(rt);
  await ctx.close();
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
