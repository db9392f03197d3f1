/**
 * Demo restart (issue 15: ≤ 3 s to ready): `gatehouse serve --demo` started again in a folder
 * where it has run before, spawn → first `/v1/ready` 200. With `--baseline=DIR` (another
 * checkout of the repository, e.g. `git archive <commit> | tar -x -C DIR` plus a
 * `node_modules` link), the two checkouts' servers are started alternately in the same
 * folder, so before and after see the same machine load.
 *
 *   npx node bench/restart.ts [--quick] [--baseline=DIR]
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { demoReady } from './scale.ts';
import { isMain, isQuick, log, machineInfo, ROOT, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'restart';

export async function runRestartBench(quick: boolean, baseline: string | null): Promise<BenchResult> {
  const cwd = join(tmpdir(), 'gatehouse-bench-restart');
  mkdirSync(cwd, { recursive: true });
  const first = await demoReady(cwd);
  const runs = quick ? 2 : 5;
  const now: number[] = [], before: number[] = [];
  for (let i = 0; i < runs; i++) {
    const pair: [number[], string][] = baseline ? [[now, ROOT], [before, baseline]] : [[now, ROOT]];
    for (const [into, root] of i % 2 === 0 ? pair : pair.reverse()) into.push(await demoReady(cwd, root));
    log(NAME, `run ${i + 1}/${runs}: this checkout ${round(now.at(-1)!, 0)} ms${baseline ? `, baseline ${round(before.at(-1)!, 0)} ms` : ''}`);
  }
  const s = summarize(now);
  const figures: Record<string, unknown> = { firstStartMs: round(first, 0), restartMs: s, ...(baseline ? { baselineRestartMs: summarize(before), baseline } : {}) };
  return {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), figures,
    goals: { demoRestart: { goal: 'demo restart (npm start the second time) ≤ 3 s to ready', measured: `${s.p50} ms p50 of ${runs}${baseline ? ` (baseline ${summarize(before).p50} ms, interleaved)` : ''}`, met: s.p50 <= 3000 } },
  };
}

if (isMain(import.meta.url)) {
  const b = process.argv.find((a) => a.startsWith('--baseline='));
  const r = await runRestartBench(isQuick(), b ? resolve(b.slice('--baseline='.length)) : null);
  for (const [k, g] of Object.entries(r.goals)) log(NAME, `${g.met ? 'MET ' : 'MISS'} ${k}: ${g.measured}`);
  log(NAME, `wrote ${writeResult(r)}`);
}
