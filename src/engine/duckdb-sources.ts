/**
 * File datasets queried where they lie. Each Parquet, CSV or DuckDB-file dataset becomes a
 * view `memory.main.gh_ds_<name>` over its files — nothing is copied at start, so opening
 * costs the same for 1 GB as for 100 GB (it reads each file list and one schema), and a
 * dataset larger than memory can be served: DuckDB streams it, keeping only what a query
 * needs (docs/engines.md).
 *
 * The view selects exactly the declared columns, each as its declared type. A type
 * conversion that could fail on some value (VARCHAR to BIGINT, BIGINT to INTEGER, DOUBLE
 * to BIGINT) is refused when the engine opens, with the dataset and column named, so no
 * query ever fails on a value it may not see (invariant 11). A CSV file has no types of its
 * own: the reader parses each declared column as its declared type (`types = {...}`); a
 * value that does not parse is caught on a sample at open and, past the sample, at the
 * first query that reads it, as a clear error naming the dataset, column and line but
 * never the value (`csvParseError`).
 *
 * Which files: a glob is expanded once, here, into the exact list the view reads and the
 * engine is allowed to open (`allowed_paths`, src/engine/duckdb.ts). Files added later are
 * not read until the engine reopens (a reload): the set of files is a snapshot, and the
 * permission list never names a folder.
 *
 * Hive partitioning (`hivePartitioning: true`): `key=value` folders become columns
 * (typed as declared, `hive_types`), and a filter on one skips whole files before they are
 * opened — DuckDB's file filter pushdown, visible as "Scanning Files: k/n" in EXPLAIN
 * ANALYZE. Parquet row-group statistics (min/max) do the same inside a file for filters on
 * the other columns.
 *
 * Erased copies (issue 23, src/governance/erasure/copies.ts): a dataset with erased subjects
 * may be read from a Parquet copy without their rows, built once per erasure version; its
 * view then reads that one file instead of the source, with the same columns and types.
 */
import { globSync, statSync } from 'node:fs';
import { basename, relative, dirname } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent, quoteString } from '../query/render/sql.ts';
import { isGlob, type ColumnType, type DatasetDef } from '../model/types.ts';

type FileSource = Extract<DatasetDef['source'], { kind: 'parquet' | 'csv' | 'duckdb' }>;

/** A copy of a file dataset without some subjects' rows, and exactly which subjects it lacks. */
export interface ErasedCopyFile {
  readonly file: string;
  readonly unit: string;
  readonly values: ReadonlySet<string>;
  readonly version: string;
}

/** The files a view reads: the erased copy's when there is one, else the source's. */
export function viewFilesOf(ds: DatasetDef, copy?: ErasedCopyFile): string[] {
  if (copy) return [copy.file];
  return filesOf(ds.source as FileSource);
}

/** A problem with one dataset's source, reported by DuckDbEngine.open as a workspace problem. */
export class SourceProblem extends Error {}

/** The engine type a declared column has (DECIMAL is computed in DOUBLE, as always). */
export function engineType(t: ColumnType): string {
  return t === 'DECIMAL' ? 'DOUBLE' : t;
}

const INTS = ['TINYINT', 'SMALLINT', 'INTEGER', 'UTINYINT', 'USMALLINT'];
const NUMERIC = [...INTS, 'BIGINT', 'UINTEGER', 'UBIGINT', 'HUGEINT', 'UHUGEINT', 'FLOAT', 'DOUBLE'];

/**
 * Source types whose every value converts to the declared type without error (widening,
 * or to text). Anything else could fail on some row — refused at open.
 */
function convertsSafely(source: string, declared: string): boolean {
  if (source === declared || declared === 'VARCHAR') return true;
  switch (declared) {
    case 'BIGINT': return [...INTS, 'UINTEGER'].includes(source);
    case 'INTEGER': return ['TINYINT', 'SMALLINT', 'UTINYINT', 'USMALLINT'].includes(source);
    case 'DOUBLE': return NUMERIC.includes(source) || source.startsWith('DECIMAL');
    case 'TIMESTAMP': return ['DATE', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS'].includes(source);
    default: return false;
  }
}

/** The files a Parquet or CSV source names, in a fixed order (a glob is expanded now). */
export function filesOf(src: FileSource): string[] {
  if (src.kind === 'duckdb' || !isGlob(src.path)) return [src.path];
  const files = globSync(src.path).filter((f) => statSync(f).isFile()).sort();
  if (files.length === 0) throw new SourceProblem(`no file matches ${basename(src.path)} any more`);
  return files;
}

/** `key=value` folder names between the glob's fixed part and the first file: the partition keys. */
function partitionKeys(pattern: string, firstFile: string): string[] {
  const fixed = pattern.slice(0, pattern.search(/[*?[]/));
  const base = fixed.endsWith('/') ? fixed : dirname(fixed);
  return relative(base, dirname(firstFile)).split('/').map((seg) => /^([^=/]+)=/.exec(seg)?.[1]).filter((k): k is string => k !== undefined);
}

function list(files: readonly string[]): string {
  return `[${files.map(quoteString).join(', ')}]`;
}

/** The table function that reads a Parquet or CSV source, with the declared types where the format needs them. */
function readerOf(ds: DatasetDef, src: Extract<FileSource, { kind: 'parquet' | 'csv' }>, files: readonly string[]): string {
  if (src.kind === 'csv') {
    const types = ds.columns.map((c) => `${quoteString(c.name)}: ${quoteString(engineType(c.type))}`).join(', ');
    return `read_csv(${list(files)}, header = true, types = {${types}})`;
  }
  if (!src.hivePartitioning) return `read_parquet(${list(files)}, hive_partitioning = false)`;
  const keys = new Set(partitionKeys(src.path, files[0]!));
  const hiveTypes = ds.columns.filter((c) => keys.has(c.name)).map((c) => `${quoteString(c.name)}: ${quoteString(engineType(c.type))}`);
  return `read_parquet(${list(files)}, hive_partitioning = true${hiveTypes.length > 0 ? `, hive_types = {${hiveTypes.join(', ')}}` : ''})`;
}

/**
 * Creates `view` over the dataset's source: exactly its declared columns as their declared
 * types. Run before the engine is locked down (it attaches a DuckDB file and reads schemas).
 * Returns the files the view reads: the engine may open these and nothing else.
 */
export async function defineSourceView(conn: DuckDBConnection, ds: DatasetDef, view: string, copy?: ErasedCopyFile): Promise<string[]> {
  const src = ds.source;
  if (src.kind !== 'parquet' && src.kind !== 'csv' && src.kind !== 'duckdb') throw new Error(`${src.kind} is not a file source`);
  const files = viewFilesOf(ds, copy);
  let from: string;
  if (copy) from = `read_parquet(${list(files)}, hive_partitioning = false)`;
  else if (src.kind === 'duckdb') {
    const alias = quoteIdent(`gh_src_${ds.name}`);
    await conn.run(`ATTACH ${quoteString(src.path)} AS ${alias} (READ_ONLY)`);
    from = `${alias}.${src.table.split('.').map(quoteIdent).join('.')}`;
  } else from = readerOf(ds, src, files);
  const described = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`);
  const actual = new Map(described.getRowsJS().map((r) => [String(r[0]), String(r[1])]));
  const problems: string[] = [];
  const cols = ds.columns.map((c) => {
    const declared = engineType(c.type);
    const has = actual.get(c.name);
    if (has === undefined) { problems.push(`column ${c.name} is declared but the source has no such column`); return ''; }
    if (has === declared) return quoteIdent(c.name);
    if (!convertsSafely(has, declared)) problems.push(`column ${c.name} is declared ${c.type} but is ${has} in the source, and not every ${has} value converts to ${c.type}: declare it as ${has === 'VARCHAR' ? 'VARCHAR' : 'a wider type'} or convert the file`);
    return `CAST(${quoteIdent(c.name)} AS ${declared}) AS ${quoteIdent(c.name)}`;
  });
  if (problems.length > 0) throw new SourceProblem(problems.join('; '));
  await conn.run(`CREATE VIEW ${view} AS SELECT ${cols.join(', ')} FROM ${from}`);
  if (src.kind === 'csv' && !copy) {
    // A sample at open: a type declared wrongly shows now, not at a partner's first query.
    const probe = ds.columns.map((c) => `count(${quoteIdent(c.name)})`).join(', ');
    try {
      await conn.run(`SELECT ${probe} FROM (SELECT * FROM ${view} LIMIT 2048)`);
    } catch (err) {
      const e = csvParseError(String((err as Error).message), [ds.name]);
      throw new SourceProblem(e ?? 'the CSV file cannot be read as declared');
    }
  }
  return files;
}

/**
 * DuckDB's CSV conversion error ("CSV Error on Line: 3 / Original Line: … / Error when
 * converting column "amount". Could not convert string "abc" to 'INTEGER'") as a message
 * that names the dataset, column, line and type but never the line's text or the value.
 * Null if the message is not a CSV conversion error.
 */
export function csvParseError(message: string, datasets: readonly string[]): string | null {
  const line = /CSV Error on Line: (\d+)/.exec(message)?.[1];
  if (line === undefined) return null;
  const column = /converting column "([a-z_][a-z0-9_]*)"/.exec(message)?.[1];
  const type = /to '([A-Z][A-Z0-9_]*)'/.exec(message)?.[1];
  const which = datasets.length === 1 ? `dataset ${datasets[0]}` : `one of the datasets ${datasets.join(', ')}`;
  return `the CSV source of ${which} does not match its declared types: ${column ? `column ${column}` : 'a column'} on line ${line} does not parse as ${type ?? 'the declared type'}`;
}
