/**
 * Cost of the aggregation-only protections of issue 12: `npx node bench/aggregation-audit.ts [--quick]`
 * (writes bench/results/aggregation-audit.json). Single process, DuckDB with one thread.
 *
 * 1. Release audit algebra (src/privacy/release-audit.ts): the echelon basis mod p of m
 *    remembered cells over A atoms plus one new query of 10 cells — for cells shaped like
 *    published GROUP BY tables, and for dense random cells (the worst case, O(m²·A)).
 * 2. Release audit on the engine: one per-payer table and one filtered total audited against
 *    a ledger of N cells remembered before (the grouped atom scan plus the algebra).
 * 3. Differencing check (src/privacy/differencing.ts): one check query against N remembered
 *    filters, half of them grouped (cell comparisons), on the demo claims.
 * 4. Partition-selection threshold at ε = 0.03 (closed form; was 48–61 s of event loop).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DifferencingMonitor } from '../src/privacy/differencing.ts';
import { selectionThreshold } from '../src/privacy/partition-selection.ts';
import { auditCells, auditRelease, ReleaseAuditor } from '../src/privacy/release-audit.ts';
import { aggregationEngine } from '../src/privacy/testing/aggregation-engine.ts';
import { rhoForEpsilonDelta, sigma2ForRho } from '../src/privacy/accounting/zcdp.ts';

const quick = process.argv.includes('--quick');
const PATIENTS = quick ? 2000 : 20_000;
const out: Record<string, unknown> = { cpus: cpus().length, patients: PATIENTS };

function ms(fn: () => void, reps = 5): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / reps;
}
async function msAsync(fn: () => Promise<unknown>, reps = 3): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - t0) / reps;
}

// 1. algebra: (a) structured — T published tables, each a GROUP BY partitioning the atoms
// into 8 cells (the shape real releases have); (b) dense random 0/1 cells (worst case).
const algebra: { shape: string; cells: number; atoms: number; ms: number }[] = [];
let seed = 7;
const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
for (const [tables, a] of (quick ? [[10, 500], [30, 1000]] : [[10, 500], [30, 1000], [60, 2000]]) as [number, number][]) {
  const m = tables * 8;
  const groupOf = Array.from({ length: tables + 2 }, () => Array.from({ length: a }, () => Math.floor(rnd() * 8)));
  const atoms = Array.from({ length: a }, (_, x) => ({ member: Array.from({ length: m + 10 }, (_, c) => (c < m ? groupOf[Math.floor(c / 8)]![x] === c % 8 : groupOf[tables]![x] === c - m || groupOf[tables + 1]![x] === c - m - 2)), units: 1 + Math.floor(rnd() * 40) }));
  algebra.push({ shape: 'tables', cells: m, atoms: a, ms: ms(() => auditCells(atoms, m, 10, 11), 1) });
}
for (const [m, a] of [[50, 200], [200, 1000]] as [number, number][]) {
  const atoms = Array.from({ length: a }, () => ({ member: Array.from({ length: m + 10 }, () => rnd() < 0.2), units: 1 + Math.floor(rnd() * 40) }));
  algebra.push({ shape: 'dense', cells: m, atoms: a, ms: ms(() => auditCells(atoms, m, 10, 11), 1) });
}
out.algebra = algebra;
console.log('release audit algebra (remembered cells × atoms, 10 new cells):', algebra.map((r) => `${r.shape} ${r.cells}×${r.atoms}: ${r.ms.toFixed(1)} ms`).join(', '));

// 2 and 3 on the engine
const a = await aggregationEngine(PATIENTS);
try {
  const engineAudit: { remembered: number; ms: number }[] = [];
  for (const n of quick ? [10, 100] : [10, 50, 100]) {
    const auditor = new ReleaseAuditor({ capacity: 10_000 });
    for (let i = 0; i < n; i++) {
      const { plan, rows } = await a.released(`SELECT status, count(*) AS c FROM claims WHERE amount_billed > ${i * 37} GROUP BY status`);
      await auditRelease(auditor, a.runIr, 'bench', plan.disclosure!, rows);
    }
    const t = await msAsync(async () => {
      const { plan, rows } = await a.released('SELECT payer, count(*) AS c, sum(amount_billed) AS s FROM claims GROUP BY payer');
      await auditRelease(auditor, a.runIr, 'bench', plan.disclosure!, rows);
    }, 2);
    engineAudit.push({ remembered: n * 3, ms: t });
  }
  out.engineAudit = engineAudit;
  console.log('release audit on the engine (cells remembered → ms per audited query):', engineAudit.map((r) => `${r.remembered}: ${r.ms.toFixed(0)} ms`).join(', '));

  const diff: { remembered: number; ms: number }[] = [];
  for (const n of quick ? [20, 100, 300] : [20, 100, 300]) {
    const m = new DifferencingMonitor({ capacity: 10_000, maxRefusals: 10_000 });
    for (let i = 0; i < n; i++) m.admit('bench', a.plan(i % 2 ? `SELECT count(*) AS c FROM claims WHERE amount_billed > ${i * 41}` : `SELECT region, count(*) AS c FROM claims WHERE amount_paid > ${i * 29} GROUP BY region`).disclosure!.probe!);
    const probe = a.plan("SELECT payer, count(*) AS c FROM claims WHERE status = 'paid' GROUP BY payer").disclosure!.probe!;
    const previous = m.admit('bench', probe);
    diff.push({ remembered: previous.length, ms: await msAsync(() => a.runIr(m.checkQuery(probe, previous)), 2) });
  }
  out.differencing = diff;
  console.log('differencing check (remembered filters → ms):', diff.map((r) => `${r.remembered}: ${r.ms.toFixed(0)} ms`).join(', '));
} finally {
  await a.close();
}

// 4
const sigma2 = sigma2ForRho(rhoForEpsilonDelta(0.03, 1e-7), Math.sqrt(3));
out.partitionSelection = { epsilon: 0.03, sigma: Math.sqrt(sigma2), ms: ms(() => selectionThreshold({ kind: 'gaussian', sigma2: String(sigma2) }, 1e-7 / 3), 100) };
console.log(`partition selection threshold at ε = 0.03 (σ ≈ ${Math.sqrt(sigma2).toFixed(0)}): ${(out.partitionSelection as { ms: number }).ms.toFixed(3)} ms`);

const file = join(dirname(fileURLToPath(import.meta.url)), 'results', 'aggregation-audit.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, JSON.stringify(out, null, 2));
console.log(`written ${file}`);
