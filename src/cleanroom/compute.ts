/**
 * Designated compute node: the one member (or neutral node) that runs the join. Members'
 * columns arrive encrypted to this node's key (sealed-columns.ts); here they are decrypted
 * only into the engine:
 *
 *   1. a private directory on tmpfs (never a disk) holds each table, at once sealed under a
 *      fresh random data key with the project's encrypted-dataset format (keys/datasets.ts)
 *      and its transient plaintext removed;
 *   2. the project's own locked-down DuckDB engine (engine/duckdb.ts: no external access,
 *      configuration locked, no spill) opens them into memory;
 *   3. the governed analysis (rules/govern-analysis.ts) runs through the one executor
 *      (kernel/execute.ts) with its output protections (disclosure control or truncation);
 *   4. the engine is closed, the directory removed and the keys wiped — whatever happened —
 *      and a deletion record is returned for the audit log.
 *
 * When a touched table's rule requires differential privacy (rules/dp-analysis.ts), step 3
 * runs in two stages: the join's rows go into one more sealed table on the same tmpfs, and
 * the analysis over it is released with the project's DP protections (noise, then the
 * querying member's budget charged on `budgets`, the compute node's ledger).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { DuckDbEngine } from '../engine/duckdb.ts';
import type { CellValue } from '../engine/engine.ts';
import { execute, type ExecutionContext, type Protection, type Release } from '../kernel/execute.ts';
import { disclosureControl } from '../kernel/protections/disclosure.ts';
import { truncate } from '../kernel/protections/truncate.ts';
import { dpBudget } from '../kernel/protections/dp-budget.ts';
import { dpNoise } from '../kernel/protections/dp-release.ts';
import { planNoise } from '../privacy/release.ts';
import type { BudgetLedger } from '../state/budget-ledger.ts';
import { planDpAnalysis } from './rules/dp-analysis.ts';
import { ingestEncrypted } from '../engine/dataset-writer.ts';
import type { Workspace } from '../model/types.ts';
import type { AuditDraft } from '../kernel/audited.ts';
import { collaborationCatalog, governAnalysis, memberPrincipal } from './rules/govern-analysis.ts';
import type { Collaboration, Template } from './model.ts';
import { CleanroomError } from './errors.ts';

export interface TableColumns {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly CellValue[])[];
}

/**
 * A table as it travels to the compute node: CSV text with a header of the contributed
 * columns in their declared order (columns the analysis does not need are left empty), so
 * the compute node writes it to tmpfs as it is, without decoding and re-encoding rows.
 */
export interface CsvTable {
  readonly csv: string;
  readonly rowCount: number;
}

export type TablePayload = TableColumns | CsvTable;

function csvCellOf(v: CellValue): string {
  if (v === null) return '';
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) || s === '' ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Encodes rows as the CSV the compute node loads: every declared column, in order. */
export function toCsvTable(declared: readonly string[], data: TableColumns): CsvTable {
  const index = declared.map((name) => data.columns.indexOf(name));
  const lines: string[] = [declared.join(',')];
  for (const row of data.rows) lines.push(index.map((i) => (i < 0 ? '' : csvCellOf(row[i] ?? null))).join(','));
  return { csv: lines.join('\n') + '\n', rowCount: data.rows.length };
}

export interface DeletionRecord {
  readonly tables: readonly string[];
  readonly rows: number;
  /** SHA-256 over the received plaintext, per table: what was held, without holding it. */
  readonly digests: Readonly<Record<string, string>>;
  readonly deletedAt: string;
}

export interface ComputeOutcome {
  readonly release: Release;
  readonly applied: readonly string[];
  readonly deletion: DeletionRecord;
}

function scratchRoot(): string {
  // Plaintext only ever on a memory-backed file system.
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

export async function runOnComputeNode(input: {
  readonly collaboration: Collaboration;
  readonly sql: string;
  readonly params?: readonly string[];
  readonly template: Template | null;
  readonly querier: string;
  readonly tables: ReadonlyMap<string, TablePayload>;
  readonly timeoutMs: number;
  readonly now?: () => Date;
  /** The compute node's budget ledger: each querying member's DP budget (needed when a rule requires DP). */
  readonly budgets?: BudgetLedger;
}): Promise<ComputeOutcome> {
  const c = input.collaboration;
  // Named by the node process, so an operator (and a test) can tell whose scratch space it is.
  const dir = mkdtempSync(join(scratchRoot(), `gh-cleanroom-${process.pid}-`));
  const keys = new Map<string, Buffer>();
  const digests: Record<string, string> = {};
  let rows = 0;
  let engine: DuckDbEngine | null = null;
  let released: DuckDbEngine | null = null;
  const now = input.now ?? (() => new Date());
  let outcome: Omit<ComputeOutcome, 'deletion'>;
  try {
    for (const [table, data] of input.tables) {
      const contribution = c.contributions.find((t) => t.table === table);
      if (!contribution) continue;
      const declared = contribution.columns.map((col) => col.name);
      // Columns the member did not send are empty: the analysis cannot read them anyway (it asked only for these).
      const encoded = 'csv' in data ? data : toCsvTable(declared, data);
      const header = encoded.csv.slice(0, encoded.csv.indexOf('\n'));
      if (header !== declared.join(',')) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', `the columns received for table "${table}" are not the contributed ones`, 'the owner must send every contributed column, in order');
      const csv = join(dir, `${table}.csv`);
      const text = encoded.csv;
      digests[table] = createHash('sha256').update(text).digest('hex');
      writeFileSync(csv, text, { mode: 0o600 });
      const key = randomBytes(32);
      keys.set(table, key);
      try {
        await ingestEncrypted({ source: csv, table: 'data', target: join(dir, `${table}.sealed`), dataKey: key, format: 'sealed-duckdb', scratchDir: dir });
      } finally {
        rmSync(csv, { force: true });
      }
      rows += encoded.rowCount;
    }
    const analysis = governAnalysis(c, {
      sql: input.sql, ...(input.params ? { params: input.params } : {}), template: input.template, querier: input.querier,
      sourceOf: (t) => ({ kind: 'encrypted', path: join(dir, `${t}.sealed`) }),
    });
    const missing = analysis.bound.datasets.filter((t) => !keys.has(t));
    if (missing.length > 0) throw new Error(`no columns were received for ${missing.join(', ')}`);
    const datasets = collaborationCatalog(c, (t) => ({ kind: 'encrypted', path: join(dir, `${t}.sealed`) }));
    for (const t of [...datasets.keys()]) if (!keys.has(t)) datasets.delete(t);
    const ws: Workspace = {
      dir, name: `cleanroom-${c.id}`, defaults: { rowCap: 10_000, statementTimeoutMs: input.timeoutMs, memoryLimit: '512MB' },
      datasets, obligations: new Map(), principals: new Map(), policyFiles: new Map(), cedarSchema: '', hashKey: randomBytes(32), policyVersion: `cleanroom:${c.id}@${c.version}`,
    };
    engine = await DuckDbEngine.open(ws, { poolSize: 1, dataKeyOf: async (t) => keys.get(t)! });
    const g = analysis.governed;
    const entry: AuditDraft = {
      time: now().toISOString(), principal: `node:${input.querier}`, source: 'cleanroom', channel: 'cleanroom', action: 'cleanroom.query',
      purpose: c.purpose, datasets: analysis.bound.datasets, columns: analysis.bound.columns, decision: 'allow', reasons: [], policyVersion: ws.policyVersion,
      obligations: [...analysis.applied], sqlFingerprint: null, rowsReturned: null, resultDigest: null, errorCode: null,
    };
    // The DP charge is settled here, once the release exists: the compute node's audit entry
    // follows at once; if the node stops in between, the charge stays spent (never under-counted).
    const settle: { recorded(): Promise<void> }[] = [];
    const ctx: ExecutionContext = {
      entry, keep: (r) => { entry.reasons = [...entry.reasons, r]; }, onRecord: (h) => { settle.push(h); },
      internal: () => { throw new Error('clean-room analyses make no internal reads'); },
    };
    const dp = planDpAnalysis(c, analysis.bound, input.querier, (t) => ({ kind: 'encrypted', path: join(dir, `${t}.sealed`) }));
    if (dp) {
      if (!input.budgets) throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `table "${dp.protectedTable}" requires differential privacy, and this compute node keeps no privacy budgets`, 'run the analysis on a served node (its state keeps the budget ledger)');
      // Stage 1: the join's rows, in the engine only.
      const joinRows = await execute({ query: dp.join.query, engine, timeoutMs: input.timeoutMs, protections: [truncate(dp.join.rowLimit)] }, { ...ctx, keep: () => {}, onRecord: () => {} });
      if (joinRows.truncated) throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `the join has more than ${dp.join.rowLimit} rows`, 'narrow the analysis with WHERE');
      const name = dp.joined.name;
      const csv = join(dir, `${name}.csv`);
      const encoded = toCsvTable(dp.joined.columns.map((x) => x.name), { columns: joinRows.columns.map((x) => x.name), rows: joinRows.rows });
      writeFileSync(csv, encoded.csv, { mode: 0o600 });
      const key = randomBytes(32);
      keys.set(name, key);
      try {
        await ingestEncrypted({ source: csv, table: 'data', target: join(dir, `${name}.sealed`), dataKey: key, format: 'sealed-duckdb', scratchDir: dir });
      } finally {
        rmSync(csv, { force: true });
      }
      await engine.close();
      engine = null;
      released = await DuckDbEngine.open({ ...ws, datasets: new Map([[name, dp.joined]]) }, { poolSize: 1, dataKeyOf: async () => key });
      // Stage 2: the analysis over the join, released with the project's DP protections.
      const r = dp.release;
      const noise = planNoise(r.dp);
      const release = await execute({
        query: r.query, engine: released, timeoutMs: input.timeoutMs,
        protections: [dpNoise(noise, r.rowLimit, r.rowCap), dpBudget(input.budgets, memberPrincipal(input.querier), r.dp, noise)],
      }, ctx);
      for (const h of settle) await h.recorded();
      outcome = { release, applied: [...analysis.applied.filter((a) => !a.startsWith('aggregationOnly')), ...dp.applied, ...release.labels] };
    } else {
      const protections: Protection[] = g.disclosure ? [disclosureControl(g.disclosure, g.rowLimit, g.rowCap)] : [truncate(g.rowLimit)];
      const release = await execute({ query: g.query, engine, timeoutMs: input.timeoutMs, protections }, ctx);
      outcome = { release, applied: [...analysis.applied, ...release.labels] };
    }
  } finally {
    if (engine !== null) await engine.close();
    if (released !== null) await released.close();
    rmSync(dir, { recursive: true, force: true });
    for (const k of keys.values()) k.fill(0);
  }
  return { ...outcome, deletion: { tables: [...keys.keys()], rows, digests, deletedAt: now().toISOString() } };
}
