/**
 * Versioned, idempotent migrations of Gatehouse's own state in PostgreSQL.
 *
 * Everything lives in one schema (default `gatehouse`). `schema_version` holds one row per
 * applied version. `migrate` runs under a transaction-scoped advisory lock keyed by the
 * schema name, so several nodes starting at once apply each migration exactly once; a
 * database whose version is newer than this code knows is refused before anything is
 * changed (StateSchemaTooNew).
 */
import type { PoolClient } from 'pg';
import { StateConfigInvalid, StateSchemaTooNew } from './errors.ts';
import type { Dialect } from './driver.ts';
import { pgDialect } from './postgres.ts';
import { budgetLossTables, budgetTables } from './tables/budgets.ts';
import { checkpointTables } from './tables/checkpoints.ts';
import { erasureTables } from './tables/erasure.ts';
import { governanceTables } from './tables/governance.ts';
import { identityTables } from './tables/identity.ts';
import { jobTables } from './tables/jobs.ts';
import { artefactBlobTable, artefactTables, dataKeyTables } from './tables/keys.ts';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name and returns it double-quoted for SQL. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema) || schema.startsWith('pg_')) {
    throw new StateConfigInvalid('schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters, not pg_*)');
  }
  return `"${schema}"`;
}

/**
 * One migration list for both backends. Migration i (1-based) brings a PostgreSQL schema to
 * version i; `ddl` gets the dialect (src/sql/driver.ts) and, for the PostgreSQL-only
 * parts still written as PostgreSQL text (the audit log's own tables), the quoted schema `S`.
 * Every other table is declared once in src/sql/tables/ and built for either engine by the
 * dialect. An embedded sqlite file applies the migrations of its `part` marked `sqlite: true`,
 * idempotently (`IF NOT EXISTS`), so files written by earlier versions open as they are; the
 * parts whose tables are spread over several embedded files (identity: one file per store;
 * governance: governance.db, data-keys.sqlite, artefacts.sqlite) have each store apply its own
 * declarations from src/sql/tables/ through the same dialect when it opens its file.
 */
export interface Migration {
  readonly part: StatePart;
  /** An embedded file of `part` applies this migration as a whole (written through the dialect). */
  readonly sqlite: boolean;
  ddl(d: Dialect, S: string): string;
}

export type StatePart = 'budgets' | 'audit' | 'identity' | 'governance';

export const MIGRATIONS: readonly Migration[] = [
  // 1: privacy budgets (src/sql/tables/budgets.ts), and the append-only trigger function.
  {
    part: 'budgets', sqlite: true,
    ddl: (d, S) => `${d.name === 'postgres' ? `CREATE FUNCTION ${S}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;` : ''}
${budgetTables(d)}`,
  },
  { part: 'audit', sqlite: false, ddl: (_d, S) => `
CREATE TABLE ${S}.audit_entries (
  idx        bigint NOT NULL PRIMARY KEY CHECK (idx >= 0),
  payload    bytea  NOT NULL,
  leaf_hash  bytea  NOT NULL CHECK (length(leaf_hash) = 32),
  written_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON ${S}.audit_entries
  FOR EACH ROW EXECUTE FUNCTION ${S}.append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON ${S}.audit_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ${S}.append_only();
-- One row: the next index. Appenders lock it (SELECT ... FOR UPDATE): one writer at a time.
CREATE TABLE ${S}.audit_head (
  id         integer PRIMARY KEY CHECK (id = 1),
  next_index bigint  NOT NULL CHECK (next_index >= 0)
);
INSERT INTO ${S}.audit_head (id, next_index) VALUES (1, 0);
-- One row: the signed checkpoint of the largest size any node stored.
CREATE TABLE ${S}.audit_checkpoint (
  id         integer PRIMARY KEY CHECK (id = 1),
  size       bigint  NOT NULL CHECK (size >= 0),
  note       text    NOT NULL,
  stored_at  timestamptz NOT NULL DEFAULT now()
);
`, },
  // 3: identity (src/sql/tables/identity.ts: the tables of src/identity/*, plus the session
  // signing keys, which an embedded node keeps in files beside its sqlite stores).
  { part: 'identity', sqlite: false, ddl: (d) => identityTables(d) },
  // 4: contractor governance (src/sql/tables/governance.ts), data keys, artefacts and their
  //    ciphertext (src/sql/tables/keys.ts).
  { part: 'governance', sqlite: false, ddl: (d) => `
${governanceTables(d)}
${dataKeyTables(d)}
${artefactTables(d)}
${artefactBlobTable(d)}
`, },
  // 5: the audit log's checkpoint anchor (src/sql/tables/checkpoints.ts): the latest
  // checkpoint kept outside the log, so a rolled-back log is refused at start.
  { part: 'audit', sqlite: true, ddl: (d) => checkpointTables(d) },
  // 6: tight privacy accounting (src/sql/tables/budgets.ts): (ε, δ) targets and per-charge privacy losses.
  { part: 'budgets', sqlite: true, ddl: (d) => budgetLossTables(d) },
  // 7: erasures and consent withdrawals (src/sql/tables/erasure.ts, issue 23).
  { part: 'governance', sqlite: false, ddl: (d) => erasureTables(d) },
  // 8: code to data (src/sql/tables/jobs.ts, issue 18): jobs, approvals, runs, the airlock, key-broker challenges.
  { part: 'governance', sqlite: false, ddl: (d) => jobTables(d) },
];

/** The newest schema version this code knows. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings `schema` to SCHEMA_VERSION (creating it if needed). Idempotent and safe to run
 * from many nodes at once. Returns the version found before and after.
 */
export async function migrate(client: PoolClient, schema: string): Promise<{ from: number; to: number }> {
  const S = quoteSchema(schema);
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gatehouse-migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${S}.schema_version (
      version    integer PRIMARY KEY CHECK (version > 0),
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const r = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${S}.schema_version`);
    const from = r.rows[0]?.v ?? 0;
    if (from > SCHEMA_VERSION) throw new StateSchemaTooNew(schema, from, SCHEMA_VERSION);
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v - 1]!.ddl(pgDialect(schema), S));
      await client.query(`INSERT INTO ${S}.schema_version (version) VALUES ($1)`, [v]);
    }
    await client.query('COMMIT');
    return { from, to: SCHEMA_VERSION };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * Brings an embedded sqlite file of `part` up to date: the part's dialect-neutral migrations,
 * each idempotent (`IF NOT EXISTS`), so a file written by any earlier version opens as it is.
 */
export async function migrateFile(driver: { readonly dialect: Dialect; exec(ddl: string): Promise<void> }, part: StatePart): Promise<void> {
  for (const m of MIGRATIONS) if (m.part === part && m.sqlite) await driver.exec(m.ddl(driver.dialect, ''));
}
