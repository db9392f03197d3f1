/**
 * The demo workspace on PostgreSQL: loads the demo's Parquet data (read with DuckDB, never
 * through Gatehouse) into a fresh database of a throwaway cluster, creates a least-privilege
 * role (LOGIN, NOSUPERUSER, SELECT only on those tables, read-only by default), and rewrites
 * the workspace's gatehouse.yaml so the chosen datasets' sources are `postgres:` entries
 * (docs/postgres.md). Policies, masks, obligations, principals and the hash key are untouched,
 * so the same workspace answers the same questions from either engine.
 *
 *   const cluster = await startPostgres();
 *   await createDemoWorkspace(wsDir, { patients: 1500, keys });
 *   const demo = await createPgDemo(cluster, wsDir);           // every dataset
 *   const mixed = await createPgDemo(cluster, otherDir, { datasets: ['claims'] });
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import type { PgCluster } from './postgres.ts';

export interface PgDemoOptions {
  /** Datasets to move to PostgreSQL (default: every dataset of the workspace with a file source). */
  readonly datasets?: readonly string[];
  /** Database to create (default: a fresh random name, so several demos can share a cluster). */
  readonly database?: string;
  /** The environment variable that will hold the role's password (default: a fresh name, set in process.env). */
  readonly passwordEnv?: string;
}

export interface PgDemo {
  readonly database: string;
  readonly role: string;
  /** postgres://<role>@127.0.0.1:<port>/<database> (no password: it is in process.env[passwordEnv]). */
  readonly url: string;
  readonly passwordEnv: string;
  /** The role's password (also in process.env[passwordEnv] until Gatehouse reads it). */
  readonly password: string;
  /** Datasets now served by PostgreSQL, with their row counts. */
  readonly rows: Readonly<Record<string, number>>;
  /** A superuser connection string to the demo database (for tests that inspect it). */
  readonly adminUrl: string;
}

const PG_TYPE: Readonly<Record<string, string>> = {
  BIGINT: 'bigint', INTEGER: 'integer', VARCHAR: 'text', DATE: 'date', TIMESTAMP: 'timestamp', DOUBLE: 'double precision', BOOLEAN: 'boolean',
};

interface YamlColumn { type: string }
interface YamlDataset { source: Record<string, unknown>; columns: Record<string, YamlColumn> }

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

function pgType(t: string): string {
  const decimal = /^DECIMAL\((\d+),\s*(\d+)\)$/.exec(t);
  if (decimal) return `numeric(${decimal[1]},${decimal[2]})`;
  const pgt = PG_TYPE[t];
  if (!pgt) throw new Error(`createPgDemo: no PostgreSQL type for the declared type ${t}`);
  return pgt;
}

/** Reads one dataset file with DuckDB as JSON-ready objects, cast to the declared column types. */
async function readRows(file: string, kind: 'parquet' | 'csv', columns: Record<string, YamlColumn>): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const reader = kind === 'parquet' ? `read_parquet(${sqlString(file)})` : `read_csv_auto(${sqlString(file)})`;
    // Dates and timestamps as ISO text; everything else as the declared type (JSON numbers / strings).
    const select = Object.entries(columns).map(([name, col]) => {
      const expr = `CAST(${ident(name)} AS ${col.type})`;
      return /^(DATE|TIMESTAMP)$/.test(col.type) ? `CAST(${expr} AS VARCHAR) AS ${ident(name)}` : `${expr} AS ${ident(name)}`;
    }).join(', ');
    const names = Object.keys(columns);
    const rows = (await c.runAndReadAll(`SELECT ${select} FROM ${reader}`)).getRowsJS() as unknown[][];
    return rows.map((r) => Object.fromEntries(r.map((v, i) => [names[i]!, typeof v === 'bigint' ? Number(v) : v])));
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

/**
 * Loads the workspace's data into a new database of `cluster`, creates the reader role and
 * rewrites `wsDir/gatehouse.yaml` to point the datasets at it. Sets process.env[passwordEnv].
 */
export async function createPgDemo(cluster: PgCluster, wsDir: string, options: PgDemoOptions = {}): Promise<PgDemo> {
  const tag = randomBytes(4).toString('hex');
  const database = options.database ?? `gh_demo_${tag}`;
  const role = `gh_reader_${tag}`;
  const passwordEnv = options.passwordEnv ?? `GH_PG_DEMO_PASSWORD_${tag.toUpperCase()}`;
  const password = randomBytes(18).toString('base64url');
  const yamlPath = join(wsDir, 'gatehouse.yaml');
  const doc = parse(readFileSync(yamlPath, 'utf8')) as { datasets: Record<string, YamlDataset> };
  const chosen = options.datasets ?? Object.keys(doc.datasets).filter((n) => 'parquet' in doc.datasets[n]!.source || 'csv' in doc.datasets[n]!.source);

  const root = new pg.Client({ connectionString: cluster.superuserUrl });
  await root.connect();
  try {
    await root.query(`CREATE DATABASE ${ident(database)}`);
    await root.query(`CREATE ROLE ${ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE CONNECTION LIMIT 16 PASSWORD ${sqlString(password)}`);
    await root.query(`ALTER ROLE ${ident(role)} SET default_transaction_read_only = on`);
  } finally {
    await root.end();
  }
  const adminUrl = cluster.superuserUrl.replace(/\/postgres$/, `/${database}`);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const rows: Record<string, number> = {};
  try {
    // Nothing but what is granted below: no CREATE on public, no access by PUBLIC.
    await admin.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
    await admin.query(`REVOKE ALL ON DATABASE ${ident(database)} FROM PUBLIC`);
    await admin.query(`GRANT CONNECT ON DATABASE ${ident(database)} TO ${ident(role)}`);
    await admin.query(`GRANT USAGE ON SCHEMA public TO ${ident(role)}`);
    for (const name of chosen) {
      const ds = doc.datasets[name];
      if (!ds) throw new Error(`createPgDemo: the workspace has no dataset ${name}`);
      const kind = 'parquet' in ds.source ? 'parquet' : 'csv' in ds.source ? 'csv' : null;
      if (!kind) throw new Error(`createPgDemo: dataset ${name} has no file source to load`);
      const file = join(wsDir, String(ds.source[kind]));
      const columns = ds.columns;
      await admin.query(`CREATE TABLE public.${ident(name)} (${Object.entries(columns).map(([c, def]) => `${ident(c)} ${pgType(def.type)}`).join(', ')})`);
      const data = await readRows(file, kind, columns);
      // One statement per batch: the rows travel as one JSON parameter.
      for (let i = 0; i < data.length; i += 5000) {
        await admin.query(`INSERT INTO public.${ident(name)} SELECT * FROM json_populate_recordset(NULL::public.${ident(name)}, $1::json)`, [JSON.stringify(data.slice(i, i + 5000))]);
      }
      await admin.query(`ANALYZE public.${ident(name)}`);
      await admin.query(`GRANT SELECT ON public.${ident(name)} TO ${ident(role)}`);
      rows[name] = data.length;
      ds.source = { postgres: { url: `postgres://${role}@127.0.0.1:${cluster.port}/${database}`, table: `public.${name}`, passwordEnv } };
    }
  } finally {
    await admin.end();
  }
  process.env[passwordEnv] = password;
  writeFileSync(yamlPath, stringify(doc, { lineWidth: 0 }));
  return { database, role, url: `postgres://${role}@127.0.0.1:${cluster.port}/${database}`, passwordEnv, password, rows, adminUrl };
}
