/**
 * The node's own state, opened in ONE place: the transparency log and what the pipeline
 * keeps (privacy budgets, identity, governance, data keys, saved results).
 *
 * - files (default): the log in an append-only directory, the rest in node:sqlite files in
 *   the state directory (the pipeline opens those itself);
 * - postgres: the log's entries, budgets, identity and governance in one PostgreSQL schema
 *   shared by several stateless nodes (docs/state-postgres.md); the log's signing and
 *   pseudonym keys stay in the audit directory.
 *
 * The pipeline takes one StateBackend (src/state/backend.ts); this function is the only code
 * that opens it for a node.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SqliteCheckpointAnchor } from '../audit/anchor.ts';
import { startLocalWitness, witnessOptions } from '../audit/cli.ts';
import { TransparencyLog, type TransparencyLogOptions } from '../audit/log.ts';
import { SqlCheckpointAnchor } from '../sql/tables/checkpoints.ts';
import type { GatehouseOptions } from '../pipeline/gatehouse.ts';
import type { StateConfig, WitnessConfig } from './config.ts';

export interface OpenedState {
  readonly log: TransparencyLog;
  /** The state part of `Gatehouse.open`'s options. */
  readonly pipeline: Pick<GatehouseOptions, 'stateDir' | 'state'>;
  /** For the operator: where shared state lives (never a password), or null for files. */
  readonly description: string | null;
  /** Closes the log (flushing it) and then the shared state. */
  close(): Promise<void>;
}

const ORIGIN = 'gatehouse.local/audit';

/**
 * The witnesses a node's log must satisfy: remote ones pinned by key, and the demo's local
 * one (started here, closed with the state).
 */
async function witnessesOf(w: WitnessConfig, auditDir: string, stateDir: string, demo: boolean): Promise<{ options: Pick<TransparencyLogOptions, 'witnesses' | 'witnessQuorum'>; close(): Promise<void> }> {
  const remote = w.remote ?? [];
  const fixed = witnessOptions(remote.map((r) => r.url), remote.map((r) => r.key), w.quorum);
  if (!w.local) return { options: fixed, close: async () => {} };
  const local = await startLocalWitness({ auditDir, stateDir: join(stateDir, 'witness'), demo, origin: ORIGIN });
  const witnesses = [...(fixed.witnesses ?? []), ...(local.options.witnesses ?? [])];
  return { options: { witnesses, witnessQuorum: w.quorum ?? witnesses.length }, close: () => local.close() };
}

export async function openState(options: { readonly state: StateConfig; readonly workspaceDir: string; readonly auditDir: string; readonly demo: boolean; readonly witnesses?: WitnessConfig }): Promise<OpenedState> {
  const { state, auditDir, demo } = options;
  const stateDir = state.dir ?? join(options.workspaceDir, 'state');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const w = await witnessesOf(options.witnesses ?? {}, auditDir, stateDir, demo);
  try {
    if (state.kind === 'files') {
      // The latest checkpoint is anchored in the state directory as well as in the log's own
      // files, and the log refuses to start unless it extends it (and every witness's).
      // Keyed by the log's directory: pointing a node at another directory is the operator's
      // explicit act; replacing or rolling back the files of this one is refused.
      const log = await TransparencyLog.start(auditDir, { demo, ...w.options, anchor: SqliteCheckpointAnchor.open(join(stateDir, 'checkpoints.sqlite'), `${ORIGIN} ${resolve(auditDir)}`) });
      return { log, pipeline: state.dir ? { stateDir: state.dir } : {}, description: null, close: async () => { try { await log.close(); } finally { await w.close(); } } };
    }
    return await openShared(state, auditDir, demo, w);
  } catch (err) {
    await w.close();
    throw err;
  }
}

async function openShared(state: Extract<StateConfig, { kind: 'postgres' }>, auditDir: string, demo: boolean, w: { options: Pick<TransparencyLogOptions, 'witnesses' | 'witnessQuorum'>; close(): Promise<void> }): Promise<OpenedState> {
  const { openPostgresState } = await import('../state/backend.ts');
  const shared = await openPostgresState({ url: state.url, ...(state.password ? { password: state.password } : {}), ...(state.maxConnections ? { maxConnections: state.maxConnections } : {}) });
  try {
    const anchor = await SqlCheckpointAnchor.open(shared.driver, ORIGIN);
    const log = await TransparencyLog.openOn(shared.logStorage!, { keyDir: join(auditDir, 'keys'), pseudonymKeyDir: join(auditDir, 'pseudonym-keys'), demo, ...w.options, anchor });
    return {
      log,
      pipeline: { state: shared, ...(state.dir ? { stateDir: state.dir } : {}) },
      description: `shared state in PostgreSQL (schema ${shared.schema}): audit log, privacy budgets, identity, governance, data keys and saved results (every node needs the same keyring.json and GATEHOUSE_KEY_PASSPHRASE)`,
      async close() {
        try { await log.close(); } finally { try { await shared.close(); } finally { await w.close(); } }
      },
    };
  } catch (err) {
    await shared.close();
    throw err;
  }
}
