/**
 * StateBackend: everything a Gatehouse node keeps of its own state, opened in one call.
 *
 *   const state = await openEmbeddedState({ dir: 'workspace/state' });       // node:sqlite files, one node
 *   const state = await openPostgresState({ url, password, schema });       // PostgreSQL, shared by every node
 *   state.budgets       // the privacy-budget ledger (BudgetStore on the state's SQL driver)
 *   state.identity      // IdentitySql for the identity stores (PostgreSQL), or null: embedded identity
 *                       // stores keep one file each in the state directory (IdentityService's stateDir)
 *   state.governance    // the GovernanceStore (what GovernanceRuntime runs on)
 *   state.keys          // opens data keys and artefacts on this state
 *   state.logStorage    // the audit log's LogStorage (PostgreSQL), or null: the file log in its own directory
 *   await state.health()  // { ready, reason }: for the readiness route
 *   await state.close();                                                    // after everything that uses it
 *
 * Every store is written once on the SQL driver (src/sql/driver.ts); the two
 * functions differ only in which driver they open and where the tables live. Per-node memory
 * that is deliberately *not* here (login token buckets) is listed in docs/state-postgres.md.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LogStorage } from '../audit/store.ts';
import { GovernanceStore } from '../governance/store.ts';
import type { IdentitySql } from '../identity/sql.ts';
import { ArtefactStore } from '../keys/artefacts.ts';
import { DataKeyStore, type DataKeyStoreOptions } from '../keys/data-keys.ts';
import type { KeyEncryptionService } from '../keys/keyring.ts';
import { BudgetStore } from '../privacy/accounting/budget-store.ts';
import type { BudgetLedger } from './budget-ledger.ts';
import { StateConfigInvalid } from '../sql/errors.ts';
import type { Health } from '../sql/pg-health.ts';
import { identityStorageOf } from './identity.ts';
import { openPgArtefacts, openPgDataKeys } from './keys-pg.ts';
import { openPgGovernance } from './governance-pg.ts';
import { openPostgresState as openPostgresStateRaw, type PostgresStateOptions } from './postgres.ts';

/** Opens the data keys and artefacts of this state (the keyring is the node's, see src/keys/keyring.ts). */
export interface KeysBackend {
  dataKeys(kms: KeyEncryptionService, options?: DataKeyStoreOptions): DataKeyStore;
  artefacts(keys: DataKeyStore, now?: () => Date): ArtefactStore;
}

export interface StateBackend {
  readonly kind: 'embedded' | 'postgres';
  readonly budgets: BudgetLedger;
  /** The identity stores' storage (PostgreSQL); null when they keep their own files (embedded). */
  readonly identity: IdentitySql | null;
  readonly governance: GovernanceStore;
  readonly keys: KeysBackend;
  /** The audit log's storage (PostgreSQL); null when the log keeps its append-only files (embedded). */
  readonly logStorage: LogStorage | null;
  /**
   * Readiness for the HTTP readiness route: cheap (the last known state, or one ping bounded
   * to about a second). `ready: false` while PostgreSQL is unreachable; requests then fail
   * closed with 503, and succeed again once it is back (no restart needed).
   */
  health(): Promise<Health>;
  close(): Promise<void>;
}

export interface EmbeddedStateOptions {
  /** The state directory (created if needed): budgets.sqlite, governance.sqlite, data-keys.sqlite, artefacts/. */
  readonly dir: string;
  /** Clock for budget charges and governance operations (tests). */
  readonly clock?: () => Date;
}

/**
 * The embedded state: node:sqlite files in `dir`, with the names and tables earlier versions
 * wrote (an existing state directory opens as it is).
 */
export async function openEmbeddedState(options: EmbeddedStateOptions): Promise<StateBackend> {
  if (typeof options !== 'object' || options === null || typeof options.dir !== 'string' || options.dir.length === 0) {
    throw new StateConfigInvalid('openEmbeddedState needs { dir: <state directory> }');
  }
  const { dir } = options;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const budgets = await BudgetStore.open(join(dir, 'budgets.sqlite'), options.clock ? { clock: options.clock } : {});
  let governance: GovernanceStore;
  try {
    governance = GovernanceStore.open(join(dir, 'governance.sqlite'), options.clock ? { now: options.clock } : {});
  } catch (err) {
    await budgets.close();
    throw err;
  }
  let closed = false;
  return {
    kind: 'embedded', budgets, identity: null, governance, logStorage: null,
    keys: {
      dataKeys: (kms, o) => DataKeyStore.open(join(dir, 'data-keys.sqlite'), kms, o),
      artefacts: (keys, now) => {
        const at = join(dir, 'artefacts');
        mkdirSync(at, { recursive: true, mode: 0o700 });
        return ArtefactStore.open({ dir: at, keys, ...(now ? { now } : {}) });
      },
    },
    // Embedded files: ready while open (a failing disk shows up as STATE_UNAVAILABLE on use).
    health: async () => (closed ? { ready: false, reason: 'the state backend is closed' } : { ready: true, reason: null }),
    async close() {
      if (closed) return;
      closed = true;
      await governance.close();
      await budgets.close();
    },
  };
}

/**
 * The PostgreSQL state (src/state/postgres.ts opens the pool and migrates the schema) as a
 * StateBackend: every store on the one pool and driver.
 */
export async function openPostgresState(options: PostgresStateOptions): Promise<StateBackend & { readonly schema: string; readonly pool: import('pg').Pool; readonly driver: import('../sql/driver.ts').SqlDriver }> {
  const pg = await openPostgresStateRaw(options);
  const identity = identityStorageOf(pg);
  const governance = openPgGovernance(pg, options.clock ? { now: options.clock } : {});
  let closed = false;
  return {
    kind: 'postgres', schema: pg.schema, pool: pg.pool, driver: pg.driver, budgets: pg.budgets, identity, governance, logStorage: pg.auditStorage,
    keys: {
      dataKeys: (kms, o) => openPgDataKeys(pg, kms, o),
      artefacts: (keys, now) => openPgArtefacts(pg, keys, now),
    },
    health: () => pg.health(),
    async close() {
      if (closed) return;
      closed = true;
      await governance.close();
      await identity.close();
      await pg.close();
    },
  };
}
