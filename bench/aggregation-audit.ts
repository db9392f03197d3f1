/**
 * Cost of the aggregation-only protections of issue 12: `npx node bench/aggregation-audit.ts [--quick]`
 * (writes bench/results/aggregation-audit.json). Single process, DuckDB with one thread.
 *
 * 1. Release audit algebra (src/privacy/release-audit.ts): RREF mod p of m released cells
 *    over A atoms, as auditCells runs it for one new query of 10 cells.
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

// 1. algebra
const algebra: { cells: number; atoms: number; ms: number }[] = [];
for (const [m, a] of [[50, 200], [200, 1000], [500, 2000], [1000, 4000]] as const) {
  let seed = 7;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  const atoms = Array.from({ length: a }, () => ({ member: Array.from({ length: m + 10 }, () => rnd() < 0.2), units: 1 + Math.floor(rnd() * 40) }));
  algebra.push({ cells: m, atoms: a, ms: ms(() => auditCells(atoms, m, 10, 11), quick ? 1 : 3) });
}
out.algebra = algebra;
console.log('release audit algebra (old cells × atoms, 10 new cells):', algebra.map((r) => `${r.cells}×${r.atoms}: ${r.ms.toFixed(1)} ms`).join(', '));

// 2 and 3 on the engine
const a = await aggregationEngine(PATIENTS);
try {
  const engineAudit: { remembered: number; ms: number }[] = [];
  for (const n of quick ? [10, 100] : [10, 100, 400]) {
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
  for (const n of quick ? [20, 100] : [20, 100, 500]) {
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
