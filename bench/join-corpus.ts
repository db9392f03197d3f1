/**
 * Benchmark, issue 15 ("Joins written in WHERE turn into cross joins"): a public SQL corpus
 * of multi-table SELECTs whose joins are written in WHERE (`FROM t1, t2, t3 WHERE a1 = b2
 * AND ...`), each query run through Gatehouse and on raw DuckDB over the same Parquet, in
 * the same run, interleaved. Goal: governed ÷ raw ≤ 1.5× in total, no query over 10×.
 *
 * Corpus: SQLite's sqllogictest `select4.test` (9 tables of ~110 rows; 2,832 queries, 1,814
 * of them over 2–8 tables, plus single-table and UNION/EXCEPT/INTERSECT queries) and
 * `select5.test` (64 tables of 10 rows; 732 joins of 4 to 64 tables, all written in WHERE),
 * vendored unchanged (gzip) under bench/data/sqllogictest/ with their provenance. The
 * `statement ok` records build the tables in a scratch DuckDB, which writes each as Parquet
 * into a temporary workspace, each single-column PRIMARY KEY declared `unique: true` (the
 * join cost bound then gives an equi-join on it a fan-out of 1); the `query` records are the
 * corpus.
 *
 * Paths, per query, interleaved (alternating order):
 *   governed  `Gatehouse.query` in process (startNode: authenticate, Cedar decision, bind,
 *             govern, render, the engine, output protections, the audit append with fsync),
 *             principal `plain`: every table, no obligation;
 *   raw       the same SQL on a separate DuckDB with each table as a view over the same
 *             Parquet file with the engine's casts (as bench/query.ts does);
 *   rendered  the SQL Gatehouse renders for `plain`, run on the raw instance: the cost of
 *             the rewrite alone, without the pipeline and the audit append;
 * and once per query, not timed against the goal, principal `governed` (a row filter and a
 * keyed-hash mask on every table) through Gatehouse. EXPLAIN of the raw SQL and of both
 * rendered forms is compared operator by operator (joins, cross products): governance must
 * not change the join plan. Results of `plain` are compared with raw DuckDB's (as multisets).
 *
 * A refusal (unsupported SQL, the join cost bound, a timeout) is not a timing: it is counted
 * apart, with its error code and message (messages never carry data values).
 *
 *   node bench/join-corpus.ts [--quick] [--only=select4|select5]
 *   (BENCH_RUNS=n: timed runs per query and path, default 3; --quick: every 25th query, 3 runs: one
 *   run per query let a single stall of a 2 ms query on a loaded CI machine read as a 20× query)
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TimedSink } from './timed-sink.ts';
import { startNode } from '../src/node/start.ts';
import { bindQuery } from '../src/query/bind.ts';
import { govern } from '../src/query/govern/index.ts';
import { parseSql } from '../src/query/parse.ts';
import { duckdbDialect } from '../src/query/render/duckdb.ts';
import { quoteIdent, quoteString, renderSelect } from '../src/query/render/sql.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { BENCH_DIR, isMain, profilePath, startCpuProfile, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'join-corpus';
const CORPUS_DIR = join(BENCH_DIR, 'data', 'sqllogictest');
const FILES = ['select4', 'select5'] as const;
const KEYS = { plain: 'jc-plain-0123456789abcdef0123456789', governed: 'jc-governed-0123456789abcdef012345' } as const;
const PURPOSE = 'bench';
const TIMEOUT_MS = 5_000;
const THREADS = 2;

// ---- the sqllogictest format (https://sqlite.org/sqllogictest/doc/trunk/about.wiki) ------

export interface SltRecord {
  readonly kind: 'statement' | 'query';
  readonly sql: string;
  /** 1-based line of the record's first line in the file. */
  readonly line: number;
  /** `query` only: the label after the sort mode, if any. */
  readonly label?: string;
}

/**
 * The records of a sqllogictest script: `statement ok|error` and `query <types> <sort>
 * [label]`, each followed by its SQL up to a blank line (statement) or `----` (query, whose
 * expected results follow up to a blank line). Records under `onlyif <engine>` for an
 * engine other than DuckDB, or `skipif duckdb`, are left out; `hash-threshold` and
 * comments are ignored.
 */
export function parseSlt(text: string): SltRecord[] {
  const lines = text.split(/\r?\n/);
  const out: SltRecord[] = [];
  let skip = false;
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i]!.trim();
    if (head === '' || head.startsWith('#') || head.startsWith('hash-threshold')) continue;
    const word = head.split(/\s+/);
    if (word[0] === 'onlyif') { skip ||= word[1] !== 'duckdb'; continue; }
    if (word[0] === 'skipif') { skip ||= word[1] === 'duckdb'; continue; }
    if (word[0] === 'halt') break;
    if (word[0] !== 'statement' && word[0] !== 'query') throw new Error(`line ${i + 1}: unexpected "${head}"`);
    const start = i + 1;
    const sql: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== '' && lines[i] !== '----'; i++) sql.push(lines[i]!);
    if (lines[i] === '----') while (i < lines.length && lines[i]!.trim() !== '') i++;
    if (!skip && (word[0] === 'query' || word[1] === 'ok')) {
      out.push({ kind: word[0], sql: sql.join('\n'), line: start, ...(word[0] === 'query' && word[3] ? { label: word[3] } : {}) });
    }
    skip = false;
  }
  return out;
}

/** How many tables a query's outermost FROM lists (`FROM t1, t7, t3` → 3); 0 when unsure. */
export function tablesInFrom(sql: string): number {
  const m = /\bFROM\s+((?:\w+\s*,\s*)*\w+)/i.exec(sql);
  return m ? m[1]!.split(',').length : 0;
}

// ---- set-up: tables → Parquet → a workspace ----------------------------------------------

/** `unique`: the column alone is the table's PRIMARY KEY or UNIQUE, declared `unique: true` in the workspace. */
interface Table { readonly name: string; readonly columns: readonly { name: string; type: 'INTEGER' | 'BIGINT' | 'VARCHAR' | 'DOUBLE'; unique: boolean }[]; readonly rows: number }

async function buildTables(statements: readonly SltRecord[], dataDir: string): Promise<Table[]> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    for (const s of statements) if (!/^\s*CREATE\s+(UNIQUE\s+)?INDEX/i.test(s.sql)) await c.run(s.sql);
    const names = (await c.runAndReadAll("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name")).getRowsJS().map((r) => String(r[0]));
    const tables: Table[] = [];
    for (const name of names) {
      // Single-column keys only: each column of a composite key may repeat on its own.
      const keys = new Set((await c.runAndReadAll(`SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = ${quoteString(name)} AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')`)).getRowsJS()
        .map(([k]) => k as unknown[]).filter((k) => k.length === 1).map((k) => String(k[0])));
      const cols = (await c.runAndReadAll(`SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ${quoteString(name)} ORDER BY column_index`)).getRowsJS()
        .map(([n, t]) => ({ name: String(n), type: /^VARCHAR/.test(String(t)) ? 'VARCHAR' as const : String(t) === 'INTEGER' ? 'INTEGER' as const : String(t) === 'BIGINT' ? 'BIGINT' as const : 'DOUBLE' as const, unique: keys.has(String(n)) }));
      const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM ${quoteIdent(name)}`)).getRowsJS()[0]![0]);
      await c.run(`COPY ${quoteIdent(name)} TO ${quoteString(join(dataDir, `${name}.parquet`))} (FORMAT parquet)`);
      tables.push({ name, columns: cols, rows });
    }
    return tables;
  } finally { c.closeSync(); db.closeSync(); }
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * A workspace serving every table: `plain` may query all of them with no obligation;
 * `governed` gets, per table, a row filter on its second column and a keyed-hash mask on
 * its text column (one obligation set and one policy per table).
 */
function writeWorkspace(dir: string, tables: readonly Table[]): void {
  mkdirSync(join(dir, 'policies'), { recursive: true });
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  writeFileSync(join(dir, 'secrets', 'hash.key'), `${'5a'.repeat(32)}\n`);
  const y: string[] = ['version: 1', 'name: join-corpus', 'secrets:', '  hashKeyFile: secrets/hash.key',
    // Large enough that no corpus answer is truncated (results are compared with raw DuckDB's).
    'defaults:', `  rowCap: 1000000`, `  statementTimeoutMs: ${TIMEOUT_MS}`, "  memoryLimit: '1GB'", 'datasets:'];
  for (const t of tables) {
    y.push(`  ${t.name}:`, `    source: { parquet: data/${t.name}.parquet }`, '    classification: internal', `    purposes: [${PURPOSE}]`, '    columns:');
    for (const c of t.columns) y.push(`      ${c.name}: { type: ${c.type}, classification: internal${c.unique ? ', unique: true' : ''} }`);
  }
  y.push('obligations:');
  const policies: string[] = [
    '@id("plain-all")', '@reason("the benchmark\'s plain principal reads every table")',
    `permit (principal in Group::"plain", action == Action::"query", resource) when { context.purpose == "${PURPOSE}" };`, ''];
  for (const t of tables) {
    const filterCol = t.columns.find((c, i) => i > 0 && c.type !== 'VARCHAR') ?? t.columns[0]!;
    const text = t.columns.find((c) => c.type === 'VARCHAR');
    y.push(`  gov-${t.name}:`, `    rowFilter: "${filterCol.name} > principal.floor"`, ...(text ? [`    masks: { ${text.name}: hash }`] : []));
    policies.push(`@id("governed-${t.name}")`, `@obligations("gov-${t.name}")`,
      `permit (principal in Group::"governed", action == Action::"query", resource == Dataset::"${t.name}") when { context.purpose == "${PURPOSE}" };`, '');
  }
  y.push('principals:',
    '  plain:', '    groups: [plain]', '    attributes: { floor: 1 }', `    apiKeySha256: [${sha256(KEYS.plain)}]`,
    '  governed:', '    groups: [governed]', '    attributes: { floor: 1 }', `    apiKeySha256: [${sha256(KEYS.governed)}]`);
  writeFileSync(join(dir, 'gatehouse.yaml'), `${y.join('\n')}\n`);
  writeFileSync(join(dir, 'policies', 'bench.cedar'), policies.join('\n'));
  writeFileSync(join(dir, 'schema.cedarschema'), `entity Group;
entity Principal in [Group] { floor: Long };
entity Dataset { purposes: Set<String> };
action query appliesTo { principal: Principal, resource: Dataset, context: { purpose: String } };
`);
}

// ---- running and comparing ----------------------------------------------------------------


type Rows = readonly (readonly unknown[])[];

/** Rows as a sorted multiset of canonical strings (sqllogictest's rowsort/valuesort compare the same way). */
function canonical(rows: Rows): string[] {
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return 'NULL';
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(12);
    if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return Number.isInteger(Number(v)) ? String(Number(v)) : Number(v).toPrecision(12);
    return String(v);
  };
  return rows.map((r) => r.map(cell).join('|')).sort();
}

const sameRows = (a: Rows, b: Rows): boolean => {
  const x = canonical(a), y = canonical(b);
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/** A DuckDB statement with a deadline: interrupted (repeatedly, as the engine does) once it passes. */
async function runRaw(conn: DuckDBConnection, sql: string): Promise<{ ms: number; rows: Rows }> {
  let again: ReturnType<typeof setInterval> | undefined;
  const timer = setTimeout(() => { conn.interrupt(); again = setInterval(() => conn.interrupt(), 50); }, TIMEOUT_MS);
  const t = performance.now();
  try {
    const reader = await conn.runAndReadAll(sql);
    const rows = reader.getRowsJS();
    return { ms: performance.now() - t, rows };
  } finally { clearTimeout(timer); clearInterval(again); }
}

const JOIN_OPERATORS = /HASH_JOIN|CROSS_PRODUCT|NESTED_LOOP_JOIN|BLOCKWISE_NL_JOIN|PIECEWISE_MERGE_JOIN|DELIM_JOIN|POSITIONAL_SCAN/g;

/** The join operators of a statement's physical plan, counted (`HASH_JOIN×3 CROSS_PRODUCT×1`). */
async function joinShape(conn: DuckDBConnection, sql: string): Promise<string> {
  const plan = (await conn.runAndReadAll(`EXPLAIN ${sql}`)).getRowsJS().map((r) => r.join('\n')).join('\n');
  // A row filter can let DuckDB prove a join empty from the query's constants (b19 = a37 AND
  // a37 = 1 with the filter b19 > 1): a different plan, for a good reason; counted apart.
  if (plan.includes('EMPTY_RESULT')) return 'EMPTY_RESULT';
  const counts = new Map<string, number>();
  for (const m of plan.match(JOIN_OPERATORS) ?? []) counts.set(m, (counts.get(m) ?? 0) + 1);
  return [...counts].sort().map(([k, n]) => `${k}×${n}`).join(' ') || 'none';
}

/** Cross products and nested-loop joins in a join shape (the operators a hash join avoids). */
function products(shape: string): number {
  let n = 0;
  for (const m of shape.matchAll(/(CROSS_PRODUCT|NESTED_LOOP_JOIN|BLOCKWISE_NL_JOIN)×(\d+)/g)) n += Number(m[2]);
  return n;
}

interface QueryFigure {
  readonly file: string; readonly line: number; readonly tables: number; readonly sql: string;
  readonly governedMs: number; readonly rawMs: number; readonly renderedMs: number; readonly governedColdMs: number; readonly rawColdMs: number;
  readonly ratio: number; readonly renderedRatio: number; readonly sameResult: boolean; readonly rows: number;
}

interface Refusal { readonly file: string; readonly line: number; readonly tables: number; readonly code: string; readonly message: string; readonly rawMs: number | null; readonly renderedMs?: number | null }

const errorInfo = (err: unknown): { code: string; message: string } => {
  const e = err as { code?: string; message?: string };
  return { code: typeof e.code === 'string' ? e.code : 'ERROR', message: String(e.message ?? err).split('\n')[0]!.slice(0, 200) };
};

/** The error reason a refusal is counted under: its code and message with numbers and names generalised. */
const reasonOf = (r: { code: string; message: string }): string => `${r.code}: ${r.message.replace(/"[^"]*"/g, '"…"').replace(/\b(t\d+|[a-e]\d+|x\d+)\b/g, '…').replace(/\d[\d,.]*/g, 'N')}`;

async function runFile(file: string, quick: boolean, runs: number): Promise<{ figures: QueryFigure[]; refusals: Refusal[]; rawErrors: Refusal[]; auditAppendMs: unknown; governedRun: Record<string, unknown>; plans: Record<string, unknown>; setup: Record<string, unknown> }> {
  const text = gunzipSync(readFileSync(join(CORPUS_DIR, `${file}.test.gz`))).toString('utf8');
  const records = parseSlt(text);
  const statements = records.filter((r) => r.kind === 'statement');
  const queries = records.filter((r) => r.kind === 'query').filter((_, i) => !quick || i % 25 === 0);
  const work = mkdtempSync(join(tmpdir(), `gh-join-corpus-${file}-`));
  const wsDir = join(work, 'ws');
  mkdirSync(join(wsDir, 'data'), { recursive: true });
  let t = performance.now();
  const tables = await buildTables(statements, join(wsDir, 'data'));
  writeWorkspace(wsDir, tables);
  const buildS = (performance.now() - t) / 1000;
  log(NAME, `${file}: ${tables.length} tables (${tables.reduce((s, x) => s + x.rows, 0)} rows) as Parquet, ${queries.length} queries, in ${buildS.toFixed(1)} s`);

  t = performance.now();
  let sink!: TimedSink;
  const node = await startNode({
    workspaceDir: wsDir, auditDir: join(work, 'audit'), state: { kind: 'files', dir: join(work, 'state') }, demo: true, engineOptions: { threads: THREADS },
    auditSink: (auditLog) => (sink = new TimedSink(auditLog)),
  });
  const openS = (performance.now() - t) / 1000;
  const gh = node.gatehouse;
  const loaded = await loadWorkspace(wsDir);
  const ws = loaded.workspace;
  const raw = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
  const conn = await raw.connect();
  await conn.run(`SET memory_limit = ${quoteString(ws.defaults.memoryLimit)}`);
  for (const tb of tables) {
    const cols = tb.columns.map((c) => `CAST(${quoteIdent(c.name)} AS ${c.type}) AS ${quoteIdent(c.name)}`).join(', ');
    await conn.run(`CREATE VIEW ${quoteIdent(tb.name)} AS SELECT ${cols} FROM read_parquet(${quoteString(join(wsDir, 'data', `${tb.name}.parquet`))})`);
  }
  const dialect = duckdbDialect({ hashKey: ws.hashKey, sourceOf: (n) => quoteIdent(n) });
  /** The SQL Gatehouse renders for `who`, pointed at the raw instance's views (bench/query.ts does the same). */
  const renderedFor = (who: keyof typeof KEYS, sql: string): string => {
    const principal = ws.principals.get(who)!;
    const bound = bindQuery(parseSql(sql), { dataset: (n) => ws.datasets.get(n) });
    const ctx = { purpose: PURPOSE, sourceIp: '127.0.0.1', channel: 'bench', time: new Date() };
    const decisions = bound.datasets.map((n) => loaded.policy.decide(principal, ws.datasets.get(n)!, ctx));
    const g = govern(bound, { principal, datasets: ws.datasets, defaultRowCap: ws.defaults.rowCap, rowFilters: loaded.rowFilters, obligations: new Map(decisions.map((d) => [d.dataset, d.obligations])), columnsUsed: new Set(bound.columns) });
    return renderSelect(g.query, dialect);
  };
  const viaGatehouse = async (who: keyof typeof KEYS, sql: string): Promise<{ ms: number; rows: Rows }> => {
    const t0 = performance.now();
    const res = await gh.query({ credential: KEYS[who], sql, purpose: PURPOSE, source: '127.0.0.1', channel: 'bench' });
    return { ms: performance.now() - t0, rows: res.rows };
  };

  const figures: QueryFigure[] = [];
  const refusals: Refusal[] = [];
  const rawErrors: Refusal[] = [];
  const governedRefusals: Refusal[] = [];
  const governedMs: number[] = [];
  const planDiffs: { line: number; tables: number; raw: string; plain: string; governed: string }[] = [];
  let plansCompared = 0, provablyEmpty = 0, plainDiffering = 0, moreProducts = 0;
  const started = performance.now();
  try {
    // BENCH_PROFILE=file.cpuprofile: a CPU profile of the governed path alone on the file's first join query.
    const profileFile = process.env.BENCH_PROFILE;
    const first = queries.find((q) => tablesInFrom(q.sql) >= 3);
    if (profileFile && first) await profilePath(NAME, profileFile.replace(/(\.cpuprofile)?$/, `-${file}.cpuprofile`), () => viaGatehouse('plain', first.sql));
    // BENCH_PROFILE_RUN=file.cpuprofile: a CPU profile of the whole corpus loop (all paths).
    const whole = process.env.BENCH_PROFILE_RUN ? await startCpuProfile(200) : null;
    for (const [qi, q] of queries.entries()) {
      const tablesN = tablesInFrom(q.sql);
      // Raw first: a query DuckDB itself rejects (a SQLite dialect difference) is not in the comparison.
      let rawFirst: { ms: number; rows: Rows };
      try { rawFirst = await runRaw(conn, q.sql); } catch (err) { rawErrors.push({ file, line: q.line, tables: tablesN, ...errorInfo(err), rawMs: null }); continue; }
      let cold: { ms: number; rows: Rows };
      try { cold = await viaGatehouse('plain', q.sql); } catch (err) {
        // Refused before it ran: what would the engine have paid? The SQL Gatehouse would
        // render (the cost bound does not change it) against the same SQL, on raw DuckDB.
        const info = errorInfo(err);
        let engine: { rawMs: number; renderedMs: number } | null = null;
        if (info.code === 'QUERY_TOO_COSTLY') {
          try {
            const rendered = renderedFor('plain', q.sql);
            const r: number[] = [], w: number[] = [];
            for (let i = 0; i < runs; i++) { r.push((await runRaw(conn, q.sql)).ms); w.push((await runRaw(conn, rendered)).ms); }
            engine = { rawMs: round(summarize(r, 6).p50, 3), renderedMs: round(summarize(w, 6).p50, 3) };
          } catch { /* counted without engine figures */ }
        }
        refusals.push({ file, line: q.line, tables: tablesN, ...info, rawMs: engine?.rawMs ?? round(rawFirst.ms, 3), renderedMs: engine?.renderedMs ?? null });
        continue;
      }
      const rendered = renderedFor('plain', q.sql);
      const g: number[] = [], r: number[] = [], w: number[] = [];
      let lastGoverned = cold, lastRaw = rawFirst;
      for (let i = 0; i < runs; i++) {
        // Alternate the order so neither path always runs on a warmer cache.
        if ((qi + i) % 2 === 0) { lastGoverned = await viaGatehouse('plain', q.sql); lastRaw = await runRaw(conn, q.sql); }
        else { lastRaw = await runRaw(conn, q.sql); lastGoverned = await viaGatehouse('plain', q.sql); }
        g.push(lastGoverned.ms); r.push(lastRaw.ms);
        w.push((await runRaw(conn, rendered)).ms);
      }
      const med = (xs: number[]): number => summarize(xs, 6).p50;
      const gm = med(g), rm = med(r), wm = med(w);
      figures.push({ file, line: q.line, tables: tablesN, sql: q.sql.replace(/\s+/g, ' ').trim(), governedMs: round(gm, 3), rawMs: round(rm, 3), renderedMs: round(wm, 3), governedColdMs: round(cold.ms, 3), rawColdMs: round(rawFirst.ms, 3), ratio: round(gm / rm, 3), renderedRatio: round(wm / rm, 3), sameResult: sameRows(lastGoverned.rows, lastRaw.rows), rows: lastRaw.rows.length });
      // The governed principal (row filter + mask): once, for refusals and timing, not for equality.
      try { governedMs.push((await viaGatehouse('governed', q.sql)).ms); } catch (err) { governedRefusals.push({ file, line: q.line, tables: tablesN, ...errorInfo(err), rawMs: round(rm, 3) }); }
      // Plan shapes of multi-table queries: raw, rendered for plain, rendered with the row filter and mask.
      if (tablesN >= 2) {
        const shapes = { raw: await joinShape(conn, q.sql), plain: await joinShape(conn, rendered), governed: await joinShape(conn, renderedFor('governed', q.sql)) };
        plansCompared++;
        if (shapes.governed === 'EMPTY_RESULT' && shapes.raw !== 'EMPTY_RESULT') provablyEmpty++;
        else if (shapes.raw !== shapes.plain || shapes.raw !== shapes.governed) {
          planDiffs.push({ line: q.line, tables: tablesN, ...shapes });
          if (shapes.raw !== shapes.plain) plainDiffering++;
          // A difference that adds a cross product or nested loop the raw plan does not have.
          if (products(shapes.governed) > products(shapes.raw) || products(shapes.plain) > products(shapes.raw)) moreProducts++;
        }
      }
      if ((qi + 1) % 250 === 0) log(NAME, `${file}: ${qi + 1}/${queries.length} queries, ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
    await whole?.stopInto(process.env.BENCH_PROFILE_RUN!.replace(/(\.cpuprofile)?$/, `-${file}.cpuprofile`));
  } finally {
    conn.closeSync();
    raw.closeSync();
    await node.close();
    rmSync(work, { recursive: true, force: true });
  }
  const byReason = (rs: readonly Refusal[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const x of rs) out[reasonOf(x)] = (out[reasonOf(x)] ?? 0) + 1;
    return out;
  };
  return {
    figures, refusals, rawErrors,
    auditAppendMs: summarize(sink.samples),
    governedRun: { queries: governedMs.length + governedRefusals.length, answered: governedMs.length, governedMs: summarize(governedMs), refused: governedRefusals.length, refusedByReason: byReason(governedRefusals) },
    plans: { compared: plansCompared, differing: planDiffs.length, plainDiffering, withMoreProducts: moreProducts, governedProvablyEmpty: provablyEmpty, examples: planDiffs.slice(0, 10) },
    setup: { tables: tables.length, rows: tables.reduce((s, x) => s + x.rows, 0), queries: queries.length, buildS: round(buildS, 1), gatehouseOpenS: round(openS, 1) },
  };
}

/** The five queries with the highest ratio of one kind, with their timings and SQL. */
function worst(figures: readonly QueryFigure[], k: 'ratio' | 'renderedRatio'): unknown[] {
  return [...figures].sort((a, b) => b[k] - a[k]).slice(0, 5).map((f) => ({ file: f.file, line: f.line, tables: f.tables, [k]: f[k], governedMs: f.governedMs, rawMs: f.rawMs, renderedMs: f.renderedMs, sql: f.sql.slice(0, 300) }));
}

function aggregate(figures: readonly QueryFigure[]): Record<string, unknown> {
  const sum = (k: 'governedMs' | 'rawMs' | 'renderedMs'): number => figures.reduce((s, f) => s + f[k], 0);
  const ratios = figures.map((f) => f.ratio);
  const over10 = figures.filter((f) => f.ratio > 10);
  return {
    queries: figures.length,
    totalGovernedMs: round(sum('governedMs'), 1), totalRawMs: round(sum('rawMs'), 1), totalRenderedMs: round(sum('renderedMs'), 1),
    totalRatio: round(sum('governedMs') / sum('rawMs'), 3),
    totalRenderedRatio: round(sum('renderedMs') / sum('rawMs'), 3),
    perQueryRatio: summarize(ratios),
    perQueryRenderedRatio: summarize(figures.map((f) => f.renderedRatio)),
    governedMs: summarize(figures.map((f) => f.governedMs)), rawMs: summarize(figures.map((f) => f.rawMs)),
    governedMinusRawMs: summarize(figures.map((f) => f.governedMs - f.rawMs)),
    over10x: over10.length,
    over10xExamples: over10.slice(0, 10).map((f) => ({ file: f.file, line: f.line, tables: f.tables, governedMs: f.governedMs, rawMs: f.rawMs, renderedMs: f.renderedMs })),
    totalGovernedColdMs: round(figures.reduce((s, f) => s + f.governedColdMs, 0), 1),
    totalRawColdMs: round(figures.reduce((s, f) => s + f.rawColdMs, 0), 1),
    // Each query's first run on each side (Gatehouse's parse/plan caches empty for it; DuckDB has none).
    totalColdRatio: round(figures.reduce((s, f) => s + f.governedColdMs, 0) / figures.reduce((s, f) => s + f.rawColdMs, 0), 3),
    worstByRatio: worst(figures, 'ratio'), worstByRenderedRatio: worst(figures, 'renderedRatio'),
    resultsCompared: figures.length, resultsNonEmpty: figures.filter((f) => f.rows > 0).length, resultRows: summarize(figures.map((f) => f.rows), 0),
    resultsDiffer: figures.filter((f) => !f.sameResult).length,
    resultsDifferExamples: figures.filter((f) => !f.sameResult).slice(0, 10).map((f) => `${f.file}:${f.line}`),
  };
}

export async function runJoinCorpusBench(quick: boolean): Promise<BenchResult> {
  const runs = Number(process.env.BENCH_RUNS ?? 0) || 3;
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
  const load = loadavg();
  const all: QueryFigure[] = [];
  const refusals: Refusal[] = [];
  const rawErrors: Refusal[] = [];
  const figures: Record<string, unknown> = { runsPerQueryAndPath: runs, timeoutMs: TIMEOUT_MS, threads: THREADS, loadAverageAtStart: load.map((x) => round(x, 2)) };
  for (const file of FILES.filter((f) => !only || only.includes(f))) {
    const r = await runFile(file, quick, runs);
    all.push(...r.figures); refusals.push(...r.refusals); rawErrors.push(...r.rawErrors);
    const joins = r.figures.filter((f) => f.tables >= 2);
    figures[file] = {
      setup: r.setup, all: aggregate(r.figures), joinsInWhere: aggregate(joins),
      refused: r.refusals.length, rawErrors: r.rawErrors.length, auditAppendMs: r.auditAppendMs, governedPrincipal: r.governedRun, plans: r.plans,
    };
    log(NAME, `${file}: ${r.figures.length} compared, total ratio ${(figures[file] as { all: { totalRatio: number } }).all.totalRatio}, ${r.refusals.length} refused, ${r.rawErrors.length} raw errors`);
  }
  const byReason = (rs: readonly Refusal[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const x of rs) out[reasonOf(x)] = (out[reasonOf(x)] ?? 0) + 1;
    return out;
  };
  const joins = all.filter((f) => f.tables >= 2);
  const total = aggregate(all);
  const joinsTotal = aggregate(joins);
  Object.assign(figures, {
    total, joinsInWhere: joinsTotal,
    refused: refusals.length, refusedByReason: byReason(refusals), refusedByTables: countBy(refusals.map((r) => r.tables)),
    refusedExamples: refusals.slice(0, 10),
    refusedByCostBoundEngineSide: costBoundEngineSide(refusals), rawErrors: rawErrors.length, rawErrorsByReason: byReason(rawErrors),
    loadAverageAtEnd: loadavg().map((x) => round(x, 2)),
  });
  const q = quick ? ` [quick: every 25th query, ${runs} runs]` : '';
  const jt = joinsTotal as { queries: number; totalRatio: number; totalRenderedRatio: number; perQueryRatio: { p50: number; max: number }; over10x: number };
  return {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), figures,
    goals: {
      joinCorpusTotal: { goal: '≤ 1.5× in total (governed ÷ raw DuckDB, multi-way joins written in WHERE, a public corpus)', measured: `${jt.totalRatio}× over ${jt.queries} join queries (rendered SQL on raw ÷ raw ${jt.totalRenderedRatio}×); median per query ${jt.perQueryRatio.p50}×; ${refusals.length} refused (counted apart)${q}`, met: jt.totalRatio <= 1.5 },
      joinCorpusWorstQuery: { goal: 'no query over 10× (governed ÷ raw DuckDB)', measured: `${total.over10x as number} of ${all.length} over 10×; max ${(total.perQueryRatio as { max: number }).max}×${q}`, met: (total.over10x as number) === 0 },
      joinCorpusResults: { goal: 'the plain policy answers as raw DuckDB does', measured: `${total.resultsDiffer as number} of ${all.length} differ (${total.resultsNonEmpty as number} of them non-empty)`, met: (total.resultsDiffer as number) === 0 },
    },
  };
}

/** The queries the join cost bound refused, as the engine would have run them: rendered SQL ÷ the same SQL on raw DuckDB. */
function costBoundEngineSide(refusals: readonly Refusal[]): Record<string, unknown> {
  const xs = refusals.filter((r) => r.code === 'QUERY_TOO_COSTLY' && typeof r.renderedMs === 'number' && typeof r.rawMs === 'number');
  const sum = (k: 'rawMs' | 'renderedMs'): number => xs.reduce((s, r) => s + (r[k] as number), 0);
  return {
    queries: xs.length, totalRawMs: round(sum('rawMs'), 1), totalRenderedMs: round(sum('renderedMs'), 1), totalRenderedRatio: round(sum('renderedMs') / sum('rawMs'), 3),
    perQueryRenderedRatio: summarize(xs.map((r) => (r.renderedMs as number) / (r.rawMs as number))), rawMs: summarize(xs.map((r) => r.rawMs as number)),
  };
}

function countBy(xs: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}

if (isMain(import.meta.url)) {
  const r = await runJoinCorpusBench(isQuick());
  log(NAME, `wrote ${writeResult(r)}`);
  for (const [k, g] of Object.entries(r.goals)) log(NAME, `${g.met ? 'met   ' : 'MISSED'} ${k}: ${g.measured}`);
}
