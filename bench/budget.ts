/**
 * Benchmark: latency of one privacy-budget charge (BudgetStore.charge, a new queryId each
 * time, so each is a full write transaction: lock, window upsert, conditional spend, charge and
 * ledger rows, commit) on both state backends, one caller at a time.
 *
 *  - embedded: node:sqlite file in a temporary directory (WAL, synchronous = FULL: each charge
 *    waits for its fsync, so the figure depends on the disk);
 *  - PostgreSQL: a throwaway local cluster (test/support/postgres.ts), pool of 4.
 *
 *   npx node bench/budget.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../test/support/postgres.ts';
import { BudgetStore } from '../src/privacy/accounting/budget-store.ts';
import { migrate } from '../src/sql/migrations.ts';
import { PgDriver } from '../src/sql/postgres.ts';
import type { BudgetLedger } from '../src/state/budget-ledger.ts';
import { isMain, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'budget';

async function latencies(store: BudgetLedger, n: number): Promise<number[]> {
  await store.defineBudget({ subject: 'org:bench', dataset: 'd', capRho: 1e6, window: null });
  for (let i = 0; i < 50; i++) await store.charge({ subject: 'org:bench', dataset: 'd', rho: 1e-6, queryId: `warm-${i}` });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const o = await store.charge({ subject: 'org:bench', dataset: 'd', rho: 1e-6, queryId: `q-${i}` });
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (!o.ok) throw new Error('bench charge denied');
  }
  return out;
}

export async function runBudgetBench(quick: boolean): Promise<BenchResult> {
  const n = quick ? 300 : 2000;
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-budget-'));
  const cluster = await startPostgres();
  const pool = new pg.Pool({ connectionString: cluster.superuserUrl, max: 4 });
  try {
    const embedded = await BudgetStore.open(join(dir, 'budgets.sqlite'));
    const sqliteMs = summarize(await latencies(embedded, n));
    await embedded.close();
    log(NAME, `sqlite charge: median ${sqliteMs.p50} ms, p90 ${sqliteMs.p90} ms`);
    const c = await pool.connect();
    try { await migrate(c, 'bench'); } finally { c.release(); }
    const shared = BudgetStore.on(new PgDriver(pool, { schema: 'bench' }));
    const pgMs = summarize(await latencies(shared, n));
    log(NAME, `postgres charge: median ${pgMs.p50} ms, p90 ${pgMs.p90} ms`);
    return {
      name: NAME, date: new Date().toISOString(), machine: machineInfo(), quick,
      figures: { charges: n, sqliteChargeMs: sqliteMs, postgresChargeMs: pgMs, ratioPgToSqlite: round(pgMs.p50 / sqliteMs.p50, 2) },
      goals: {},
      notes: ['one caller at a time; each charge a new queryId (a full write transaction)'],
    };
  } finally {
    await pool.end();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const r = await runBudgetBench(isQuick());
  console.log(`wrote ${writeResult(r)}`);
}
