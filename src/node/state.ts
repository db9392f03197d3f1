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
import { join } from 'node:path';
import { openTransparencyLog } from '../audit/index.ts';
import { TransparencyLog } from '../audit/log.ts';
import type { GatehouseOptions } from '../pipeline/gatehouse.ts';
import type { StateConfig } from './config.ts';

export interface OpenedState {
  readonly log: TransparencyLog;
  /** The state part of `Gatehouse.open`'s options. */
  readonly pipeline: Pick<GatehouseOptions, 'stateDir' | 'state'>;
  /** For the operator: where shared state lives (never a password), or null for files. */
  readonly description: string | null;
  /** Closes the log (flushing it) and then the shared state. */
  close(): Promise<void>;
}

export async function openState(options: { readonly state: StateConfig; readonly auditDir: string; readonly demo: boolean }): Promise<OpenedState> {
  const { state, auditDir, demo } = options;
  if (state.kind === 'files') {
    const log = openTransparencyLog(auditDir, { demo });
    return { log, pipeline: state.dir ? { stateDir: state.dir } : {}, description: null, close: () => log.close() };
  }
  const { openPostgresState } = await import('../state/backend.ts');
  const shared = await openPostgresState({ url: state.url, ...(state.password ? { password: state.password } : {}), ...(state.maxConnections ? { maxConnections: state.maxConnections } : {}) });
  try {
    const log = await TransparencyLog.openOn(shared.logStorage!, { keyDir: join(auditDir, 'keys'), pseudonymKeyDir: join(auditDir, 'pseudonym-keys'), demo });
    return {
      log,
      pipeline: { state: shared, ...(state.dir ? { stateDir: state.dir } : {}) },
      description: `shared state in PostgreSQL (schema ${shared.schema}): audit log, privacy budgets, identity, governance, data keys and saved results (every node needs the same keyring.json and GATEHOUSE_KEY_PASSPHRASE)`,
      async close() {
        try { await log.close(); } finally { await shared.close(); }
      },
    };
  } catch (err) {
    await shared.close();
    throw err;
  }
}
