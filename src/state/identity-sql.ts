/**
 * Identity state in PostgreSQL: the identity stores' interface (src/identity/sql.ts) on the
 * state's PostgreSQL driver, for several Gatehouse nodes sharing users, sessions, signing keys,
 * API keys, connection passwords and elevations (tables of migration 3, src/sql/migrations.ts).
 * Transactions, retries and error mapping are the driver's and the adapter's: there is no
 * PostgreSQL-specific identity code left.
 */
import type pg from 'pg';
import { DriverIdentitySql } from '../identity/sql.ts';
import { IdentityStoreUnavailable } from '../identity/session.ts';
import { PgDriver } from '../sql/postgres.ts';

export interface PgIdentitySqlOptions {
  readonly schema: string;
  /** Re-runs of a write transaction that lost a conflict (default: the driver's policy, 30). */
  readonly maxRetries?: number;
}

/** The identity stores' storage on a pool and schema (the pool is not owned). */
export class PgIdentitySql extends DriverIdentitySql {
  readonly schema: string;
  constructor(pool: pg.Pool, options: PgIdentitySqlOptions) {
    super(new PgDriver(pool, { schema: options.schema, ...(options.maxRetries !== undefined ? { retry: { maxRetries: options.maxRetries } } : {}) }), {
      unavailable: (what, cause) => new IdentityStoreUnavailable(
        what === 'busy or unavailable' && (cause as { code?: unknown } | null)?.code === 'STATE_BUSY'
          ? 'the identity store is busy: too many concurrent changes, try again'
          : `the identity store in PostgreSQL is unavailable (${what})`, { cause }),
    });
    this.schema = options.schema;
  }
}
