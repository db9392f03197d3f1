/**
 * The contractor-governance store on PostgreSQL: the one governance Core (governance-core.ts)
 * on the state's PostgreSQL driver, so several Gatehouse nodes share one set of agreements,
 * grants, vendors, acknowledgements, training, retention rules, holds, findings and
 * classification decisions.
 *
 *   const state = await openPostgresState({ url, password });
 *   const gov = openPgGovernance(state);              // a GovernanceStore, same API as the embedded one
 *   await gov.evaluate({ principal, dataset, purpose });
 *
 * Text columns use the "C" collation, so ISO times and ids compare and sort as in SQLite.
 * If PostgreSQL cannot be reached the call fails with STATE_UNAVAILABLE (the request fails
 * closed; nothing was changed); a writer that keeps losing races gets STATE_BUSY.
 */
import type { Pool } from 'pg';
import { GovernanceStore } from '../governance/store.ts';
import { DriverCore } from '../governance/core.ts';
import type { PostgresState } from './postgres.ts';
import { PgDriver } from '../sql/postgres.ts';

export interface PgGovernanceOptions {
  /** Schema holding the gov_* tables (created by openPostgresState / migrate). Default "gatehouse". */
  readonly schema?: string;
  /** Clock for operations that take no explicit time (default: the system clock). */
  readonly now?: () => Date;
  /** Re-runs of a transaction after serialization failures or deadlocks (default 30). */
  readonly maxRetries?: number;
}

/** The lock key every node uses for one governance writer at a time (unchanged since the first PostgreSQL core). */
export const governanceLockKey = (schema: string): string => `gatehouse-governance:${schema}`;

/** The governance Core on a pool and schema (the pool is not owned). */
export class PgCore extends DriverCore {
  readonly schema: string;
  constructor(pool: Pool, options: PgGovernanceOptions = {}) {
    const schema = options.schema ?? 'gatehouse';
    super(new PgDriver(pool, { schema, ...(options.maxRetries !== undefined ? { retry: { maxRetries: options.maxRetries } } : {}) }), {
      ...(options.now ? { now: options.now } : {}), lockKey: governanceLockKey(schema), owns: false,
    });
    this.schema = schema;
  }
}

/** A GovernanceStore on the state's PostgreSQL database (tables created by its migrations). */
export function openPgGovernance(state: Pick<PostgresState, 'pool' | 'schema'>, options: Omit<PgGovernanceOptions, 'schema'> = {}): GovernanceStore {
  return GovernanceStore.onCore(new PgCore(state.pool, { ...options, schema: state.schema }));
}
