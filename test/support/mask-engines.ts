/**
 * Shared by the mask kinds' tests: the demo workspace with extra masks in its obligations,
 * queried through the whole Gatehouse path on DuckDB; the true (unmasked) rows read from
 * the dataset file; and a mask rendered for DuckDB and for a real PostgreSQL server over
 * the same literal values, to show both engines give the same masked value.
 */
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { demoFixture, type Fixture } from '../helpers/workspace.ts';
import { startPostgres, type PgCluster } from './postgres.ts';
import type { ColumnType } from '../../src/model/types.ts';
import { duckdbDialect } from '../../src/query/render/duckdb.ts';
import { postgresDialect } from '../../src/query/render/postgres.ts';
import { lowerMask, parseMaskYaml, renderMask } from '../../src/query/masks/registry.ts';

/** A fixed workspace hash key, so keyed masks give the same values on every run. */
export const TEST_HASH_KEY = Buffer.from('5f1c0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d', 'hex');

/** The demo, with `masks` added to named obligation sets (obligation → column → YAML mask). */
export async function demoWithMasks(masks: Record<string, Record<string, unknown>>, patients = 300): Promise<Fixture> {
  delete process.env.GATEHOUSE_HASH_KEY;
  return demoFixture({
    patients,
    edit: (wsDir) => {
      writeFileSync(join(wsDir, 'secrets', 'hash.key'), TEST_HASH_KEY.toString('hex'));
      const file = join(wsDir, 'gatehouse.yaml');
      const doc = parse(readFileSync(file, 'utf8')) as { obligations: Record<string, { masks?: Record<string, unknown> }> };
      for (const [obligation, cols] of Object.entries(masks)) {
        doc.obligations[obligation]!.masks = { ...doc.obligations[obligation]!.masks, ...cols };
      }
      writeFileSync(file, stringify(doc));
    },
  });
}

/** Rows of `sql` over the demo's raw parquet files (`FROM patients` reads the true data), every cell as text. */
export async function truth(f: Fixture, sql: string): Promise<string[][]> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run(`CREATE VIEW patients AS SELECT * FROM read_parquet('${join(f.wsDir, 'data', 'patients.parquet').replace(/'/g, "''")}')`);
    const r = await c.runAndReadAll(sql);
    return r.getRowsJS().map((row) => row.map((v) => (v === null ? null : String(v))) as string[]);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

export function cellText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  return String(v);
}

/** Runs one mask over literal values on DuckDB and on a real PostgreSQL server. */
export interface TwoEngines {
  /** The masked values of `literals` (SQL literals of `type`) on each engine, as text. */
  masked(yamlMask: unknown, type: ColumnType, literals: readonly string[], scope?: { principal: string; dataset: string; column: string }): Promise<{ duckdb: (string | null)[]; postgres: (string | null)[] }>;
  close(): Promise<void>;
}

export async function twoEngines(): Promise<TwoEngines> {
  const cluster: PgCluster = await startPostgres();
  const client = new pg.Client({ connectionString: cluster.superuserUrl });
  await client.connect();
  const db = await DuckDBInstance.create(':memory:');
  const duck = await db.connect();
  const dialects = { duckdb: duckdbDialect({ sourceOf: () => 'none', hashKey: TEST_HASH_KEY }), postgres: postgresDialect({ sourceOf: () => 'none', hashKey: TEST_HASH_KEY }) };
  return {
    async masked(yamlMask, type, literals, scope = { principal: 'p', dataset: 'd', column: 'c' }) {
      const spec = parseMaskYaml(yamlMask);
      if (!spec) throw new Error('not a mask');
      const node = lowerMask(spec, { kind: 'raw', name: 'v', type }, { type, ...scope });
      if (node.kind !== 'mask') throw new Error('expected a mask node');
      const sqlFor = (d: 'duckdb' | 'postgres'): string => {
        const typeName = dialects[d].typeName(type);
        const rows = literals.map((l, i) => `SELECT ${i} AS i, CAST(${l} AS ${typeName}) AS "v"`).join(' UNION ALL ');
        return `SELECT CAST(${renderMask(node.mask, '"v"', type, dialects[d])} AS ${d === 'duckdb' ? 'VARCHAR' : 'TEXT'}) AS m FROM (${rows}) AS t ORDER BY i`;
      };
      const a = await duck.runAndReadAll(sqlFor('duckdb'));
      const b = await client.query({ text: sqlFor('postgres'), rowMode: 'array' });
      return {
        duckdb: a.getRowsJS().map((r) => (r[0] === null ? null : String(r[0]))),
        postgres: (b.rows as unknown[][]).map((r) => (r[0] === null ? null : String(r[0]))),
      };
    },
    async close() {
      duck.closeSync();
      db.closeSync();
      await client.end();
      await cluster.stop();
    },
  };
}
