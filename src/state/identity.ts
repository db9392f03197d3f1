/**
 * Identity state on the PostgreSQL state backend: the storage `IdentityService.open`
 * (src/identity/service.ts) and `Gatehouse.open` (option `identityStorage`) take to keep
 * users, sessions, session signing keys, API keys, connection passwords and elevations in
 * the database that `openPostgresState` opened and migrated (migration 3), shared by every
 * node pointed at it.
 *
 *   const state = await openPostgresState({ url, password, schema });
 *   const identityStorage = identityStorageOf(state);
 *   const gh = await Gatehouse.open({ workspaceDir, audit, budgets: state.budgets, identityStorage, … });
 *   …
 *   await gh.close(); await state.close();     // the state owns the pool
 *
 * Every node must be given the same key passphrase (GATEHOUSE_KEY_PASSPHRASE): it seals the
 * session signing keys and the TOTP secrets stored here.
 */
import type pg from 'pg';
import { PgIdentitySql } from './identity-sql.ts';

export { PgIdentitySql };

/** Identity storage on an opened (migrated) PostgreSQL state; closing the state ends it. */
export function identityStorageOf(state: { readonly pool: pg.Pool; readonly schema: string }, options: { maxRetries?: number } = {}): PgIdentitySql {
  return new PgIdentitySql(state.pool, { schema: state.schema, ...options });
}
