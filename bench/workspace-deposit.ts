/**
 * What an automatic deposit into a partner's workspace costs (issue 23):
 * `npx node bench/workspace-deposit.ts [--quick]` (writes bench/results/workspace-deposit.json).
 *
 * Every source (airlock release, clean-room delivery, model release) places its items through
 * `depositDerivative`: lineage from the catalog, the agreement in force that covers the
 * sources, a fresh data key, AES-256-GCM sealing, the artefact's row. The audited
 * `workspace.deposit` op runs exactly that, inside one audited request, so it is timed here
 * for three content sizes. The floor it is compared with is an audited governance request
 * that stores nothing (`retention.rules`, the same envelope: authenticate, run, one audit
 * entry), timed in the same run, alternating with the deposits. Medians over the timed pairs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoWorkspace } from '../src/demo/workspace.ts';
import { startNode } from '../src/node/start.ts';
import { RESULTS_DIR } from './run.ts';

const quick = process.argv.includes('--quick');
const KEYS = { rhea: 'bench-key-rhea-0123456789abcdef', ivan: 'bench-key-ivan-0123456789abcdef', ada: 'bench-key-ada-0123456789abcdef0', audrey: 'bench-key-audrey-0123456789abcd', olivia: 'bench-key-olivia-0123456789abcd' };
const SIZES = quick ? [1_024, 65_536] : [1_024, 65_536, 1_048_576];
const WARM = quick ? 2 : 5;
const PAIRS = quick ? 7 : 31;

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

const dir = mkdtempSync(join(tmpdir(), 'gh-bench-deposit-'));
try {
  await createDemoWorkspace(join(dir, 'ws'), { patients: 200, keys: KEYS });
  const node = await startNode({ workspaceDir: join(dir, 'ws'), auditDir: join(dir, 'audit'), demo: true, engineOptions: { poolSize: 1 }, http: null, wire: null, tls: null, setup: { demoGovernance: true } });
  const meta = { credential: KEYS.olivia, source: '127.0.0.1', channel: 'bench' };
  const gh = node.gatehouse;
  const rows: { bytes: number; depositMs: number; floorMs: number; ratio: number }[] = [];
  try {
    for (const bytes of SIZES) {
      // A JSON table of about `bytes` bytes, like a released job output.
      const row = ['cardiology', 40, 123.5];
      const content = JSON.stringify({ columns: ['department', 'n', 'mean_days'], rows: Array.from({ length: Math.max(1, Math.round(bytes / 24)) }, () => row) });
      const deposit = async (): Promise<number> => {
        const t = performance.now();
        await gh.governanceOp(meta, 'workspace.deposit', { org: 'northwind-research', item: 'job-output', name: 'bench.output', datasets: ['encounters'], content });
        return performance.now() - t;
      };
      const floor = async (): Promise<number> => {
        const t = performance.now();
        await gh.governanceOp(meta, 'retention.rules', {});
        return performance.now() - t;
      };
      for (let i = 0; i < WARM; i++) { await deposit(); await floor(); }
      const a: number[] = [], b: number[] = [];
      for (let i = 0; i < PAIRS; i++) {
        if (i % 2 === 0) { a.push(await deposit()); b.push(await floor()); } else { b.push(await floor()); a.push(await deposit()); }
      }
      rows.push({ bytes: content.length, depositMs: median(a), floorMs: median(b), ratio: median(a) / median(b) });
    }
  } finally {
    await node.close();
  }
  const result = { quick, cpus: cpus().length, loadavg: loadavg()[0], pairs: PAIRS, rows };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'workspace-deposit.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`load ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores, ${PAIRS} pairs`);
  for (const r of rows) console.log(`${String(r.bytes).padStart(9)} bytes  deposit ${r.depositMs.toFixed(1)} ms  audited floor ${r.floorMs.toFixed(1)} ms  ratio ${r.ratio.toFixed(2)}×`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
