/**
 * Test support: the demo workspace on a real DuckDB engine, with queries planned as the
 * research contractor (aggregation-only, min group size 11) sees them. For the privacy
 * tests that need an engine but not the whole pipeline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoWorkspace } from '../../demo/workspace.ts';
import { DuckDbEngine } from '../../engine/duckdb.ts';
import type { CellValue } from '../../model/result.ts';
import { bindQuery } from '../../query/bind.ts';
import { govern, type GovernedQuery } from '../../query/govern/index.ts';
import type { Select } from '../../query/ir.ts';
import { loadParser, parseSql } from '../../query/parse.ts';
import { renderSelect } from '../../query/render/sql.ts';
import { loadWorkspace } from '../../workspace/validate.ts';
import type { Workspace } from '../../model/types.ts';
import { protectRelease } from '../disclosure.ts';

export interface AggregationEngine {
  readonly ws: Workspace;
  readonly engine: DuckDbEngine;
  plan(sql: string): GovernedQuery;
  /** Runs IR the privacy layer built (a check or audit query). */
  runIr(q: Select): Promise<{ rows: CellValue[][] }>;
  /** Runs raw SQL over the engine's tables (the test's ground truth). */
  truth(sql: (table: (dataset: string) => string) => string): Promise<CellValue[][]>;
  /** Plans, runs and applies disclosure control: what would be released before auditing. */
  released(sql: string): Promise<{ plan: GovernedQuery; rows: (readonly CellValue[])[] }>;
  close(): Promise<void>;
}

export async function aggregationEngine(patients = 1500): Promise<AggregationEngine> {
  await loadParser();
  const dir = mkdtempSync(join(tmpdir(), 'gh-agg-'));
  await createDemoWorkspace(join(dir, 'ws'), { patients });
  const loaded = await loadWorkspace(join(dir, 'ws'));
  const ws = loaded.workspace;
  const engine = await DuckDbEngine.open(ws, { poolSize: 1 });
  const obligation = ws.obligations.get('research-aggregates')!;
  const plan = (sql: string): GovernedQuery => {
    const b = bindQuery(parseSql(sql), { dataset: (n) => ws.datasets.get(n) });
    return govern(b, {
      principal: { id: 'rhea', kind: 'user', displayName: null, groups: [], attributes: {}, apiKeySha256: [] },
      datasets: ws.datasets, obligations: new Map(b.datasets.map((d) => [d, [obligation]])), rowFilters: loaded.rowFilters, defaultRowCap: 10_000,
    });
  };
  const runIr = async (q: Select) => ({ rows: (await engine.run(renderSelect(q, engine.dialect), { timeoutMs: 20_000 })).rows as CellValue[][] });
  return {
    ws, engine, plan, runIr,
    truth: async (sql) => (await engine.run(sql((d) => engine.dialect.source(d)), { timeoutMs: 20_000 })).rows as CellValue[][],
    async released(sql) {
      const p = plan(sql);
      const result = await engine.run(renderSelect(p.query, engine.dialect), { timeoutMs: 20_000 });
      return { plan: p, rows: [...protectRelease(p.disclosure!, result, p.rowLimit).rows] };
    },
    async close() { await engine.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}
