/**
 * Gatehouse's own state in PostgreSQL: the production option beside the embedded default
 * (node:sqlite budgets, file-backed audit log). Several Gatehouse nodes pointed at the same
 * database and schema share one budget ledger and one transparency log.
 *
 *   const state = await openPostgresState({ url: 'postgres://gatehouse@db:5432/gatehouse', password });
 *   state.budgets       // BudgetLedger (BudgetStore on the state's PgDriver)
 *   state.auditStorage  // LogStorage (PgLogStorage): TransparencyLog.openOn(state.auditStorage, { keyDir, pseudonymKeyDir })
 *   await state.close();
 *
 * Opening creates or upgrades the schema (versioned, idempotent migrations, see
 * migrations.ts) and refuses a schema newer than this code knows, and a server whose settings
 * make a durable commit impossible (fsync or full_page_writes off). The pool is bounded, and a
 * lost connection fails the request in flight (503) without taking the node down.
 * See docs/state-postgres.md.
 */
import pg from 'pg';
import type { BudgetLedger } from './budget-ledger.ts';
import { StateConfigInvalid, StateError, StateUnavailable } from '../sql/errors.ts';
import { migrate, quoteSchema, SCHEMA_VERSION } from '../sql/migrations.ts';
import { BudgetStore } from '../privacy/accounting/budget-store.ts';
import { PgDriver } from '../sql/postgres.ts';
import { PgLogStorage } from './pg-log-storage.ts';
import { guardPool, PgHealth, safeReason, type Health } from '../sql/pg-health.ts';

export interface PostgresStateOptions {
  /** postgres://user@host:port/database (a password in the URL works, but prefer `password`). */
  readonly url: string;
  /** The password, kept out of the URL (and out of every message). */
  readonly password?: string;
  /** Schema holding Gatehouse's tables. Default "gatehouse". */
  readonly schema?: string;
  /** Largest number of connections this node opens (default 10, at most 100). */
  readonly maxConnections?: number;
  /** Longest wait for a connection, ms (default 5000): after it the request fails closed. */
  readonly connectTimeoutMs?: number;
  /** Server-side statement timeout, ms (default 15000). */
  readonly statementTimeoutMs?: number;
  /** Clock for budget charges (tests). */
  readonly clock?: () => Date;
  /** Budget row-lock wait per attempt, ms (default 2000), and retries (default 20). */
  readonly budgetLockTimeoutMs?: number;
  readonly budgetMaxRetries?: number;
  /**
   * Open even when the server cannot keep a commit through a crash (fsync or
   * full_page_writes off). Only for tests that say so; never in production.
   */
  readonly allowUnsafeDurability?: boolean;
}

export interface PostgresState {
  readonly schema: string;
  readonly schemaVersion: number;
  readonly budgets: BudgetLedger;
  readonly auditStorage: PgLogStorage;
  /** The SQL driver every store of this state runs on (src/sql/postgres.ts). */
  readonly driver: PgDriver;
  /** The bounded pool (for health checks); do not end it yourself: call close(). */
  readonly pool: pg.Pool;
  /** Readiness: the last known state of the connection, or a bounded ping (pg-health.ts). */
  health(): Promise<Health>;
  close(): Promise<void>;
}

/**
 * Server settings with which no commit survives a crash of the machine, whatever Gatehouse
 * asks per transaction: fsync=off loses or corrupts committed data on an OS crash or power
 * loss, full_page_writes=off leaves torn pages that WAL replay cannot repair (PostgreSQL
 * manual, §20.5.1 "Settings"). synchronous_commit is not here: Gatehouse overrides it per
 * transaction (DURABLE in sql/postgres.ts).
 */
export const UNSAFE_SETTINGS: readonly { readonly name: string; readonly unsafe: string }[] = [
  { name: 'fsync', unsafe: 'off' },
  { name: 'full_page_writes', unsafe: 'off' },
];

/** Refuses a server whose settings make durability impossible (see UNSAFE_SETTINGS). */
async function checkDurability(client: pg.PoolClient, where: string): Promise<void> {
  const r = await client.query<{ name: string; setting: string }>(
    'SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY($1::text[])', [UNSAFE_SETTINGS.map((u) => u.name)]);
  for (const u of UNSAFE_SETTINGS) {
    const found = r.rows.find((row) => row.name === u.name)?.setting;
    if (found === u.unsafe) {
      throw new StateConfigInvalid(
        `PostgreSQL at ${where} runs with ${u.name}=${u.unsafe}: a crash could lose or corrupt committed audit entries and budget charges, so Gatehouse will not store its state there. ` +
        `Set ${u.name} = on in postgresql.conf (or ALTER SYSTEM SET ${u.name} = on; SELECT pg_reload_conf()) and start Gatehouse again`);
    }
  }
}

/** "host:port/database" of a URL, for messages (never the user's password). */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

export async function openPostgresState(options: PostgresStateOptions): Promise<PostgresState> {
  if (typeof options !== 'object' || options === null) throw new StateConfigInvalid('options must be an object');
  const { url } = options;
  if (typeof url !== 'string' || !/^postgres(ql)?:\/\//.test(url)) throw new StateConfigInvalid('url must be a postgres:// or postgresql:// URL');
  try { new URL(url); } catch { throw new StateConfigInvalid('url is not a valid URL'); }
  const schema = options.schema ?? 'gatehouse';
  quoteSchema(schema);
  const max = options.maxConnections ?? 10;
  if (!Number.isInteger(max) || max < 1 || max > 100) throw new StateConfigInvalid('maxConnections must be an integer in [1, 100]');
  const connectTimeout = options.connectTimeoutMs ?? 5000;
  const statementTimeout = options.statementTimeoutMs ?? 15_000;
  for (const [k, v] of [['connectTimeoutMs', connectTimeout], ['statementTimeoutMs', statementTimeout]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new StateConfigInvalid(`${k} must be a positive integer`);
  }
  if (options.password !== undefined && typeof options.password !== 'string') throw new StateConfigInvalid('password must be a string');

  // node-postgres lets the connection string win over a separate `password`: put it in the URL.
  let connectionString = url;
  if (options.password !== undefined) {
    const u = new URL(url);
    u.password = encodeURIComponent(options.password);
    connectionString = u.toString();
  }
  const pool = new pg.Pool({
    connectionString,
    // Session default as well as SET LOCAL in every write (DURABLE): covers single statements.
    options: '-c synchronous_commit=on',
    max,
    connectionTimeoutMillis: connectTimeout,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeout,
    application_name: 'gatehouse',
  });
  // A connection dropped by the server (idle or in use) must not crash the node: the
  // request in flight fails closed, the next one gets a new connection (pg-health.ts).
  const health = new PgHealth(pool);
  guardPool(pool, (err) => health.lost(err));

  let version: number;
  try {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (e) {
      throw new StateUnavailable(`cannot connect to PostgreSQL at ${describeUrl(url)}: ${safeReason(e)}`);
    }
    try {
      if (options.allowUnsafeDurability !== true) await checkDurability(client, describeUrl(url));
      version = (await migrate(client, schema)).to;
    } catch (e) {
      if (e instanceof StateError) throw e;
      throw new StateUnavailable(`cannot prepare schema "${schema}" in PostgreSQL at ${describeUrl(url)}: ${safeReason(e)}`, { cause: e });
    } finally {
      client.release();
    }
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw e;
  }

  if (options.budgetLockTimeoutMs !== undefined && (!Number.isInteger(options.budgetLockTimeoutMs) || options.budgetLockTimeoutMs < 1)) {
    await pool.end().catch(() => undefined);
    throw new StateConfigInvalid('budgetLockTimeoutMs must be a positive integer');
  }
  const driver = new PgDriver(pool, { schema, ...(options.budgetLockTimeoutMs !== undefined ? { lockTimeoutMs: options.budgetLockTimeoutMs } : {}) });
  const budgets = BudgetStore.on(driver, {
    ...(options.clock ? { clock: options.clock } : {}),
    maxRetries: options.budgetMaxRetries ?? 20,
  });
  const auditStorage = new PgLogStorage(pool, { schema });
  let closed = false;
  return {
    schema, schemaVersion: version, budgets, auditStorage, pool, driver,
    health: () => health.health(),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      health.close();
      await budgets.close();
      await auditStorage.close();
      await driver.close();
      await pool.end();
    },
  };
}

export { SCHEMA_VERSION };
