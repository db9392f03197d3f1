/**
 * Governance benchmarks of issue 23: `npx node bench/governance.ts [--quick] [--only whatif|erasure|erasure-copy|erasure-engine]`
 * (writes bench/results/governance.json).
 *
 * 1. Policy what-if replay.
 * A month of synthetic partner traffic — 100k query requests (5k with --quick) over the
 * demo's four data principals, 400 distinct statements whose literals vary, one request
 * every ~26 s — is appended to a real transparency log with the SQL texts kept, then
 * replayed under a draft that tightens a mask and loosens a DP rule:
 *
 *   end-to-end  whatIf(): scan the log, map pseudonyms, join texts, plan every request
 *               under both versions (parse → bind → decide → govern), diff, analyse;
 *   replay      replay() alone over the requests already read.
 *
 * Target (issue 23): 100k logged requests replayed in ≤ 60 s.
 *
 * 2. The erasure transformer on a 10M-row aggregation (2M patients × 5 encounters, the demo
 *    cached in .gatehouse/bench/ like bench/query.ts; --quick: 20k × 5) with 10,000 subjects
 *    withdrawn: the same `Gatehouse.query` by the same analyst, once for purpose operations
 *    (no exclusion) and once for purpose quality (10k opt-outs from quality: the scan gets
 *    `patient_id IS NULL OR patient_id NOT IN (…10k…)`), interleaved in alternating order
 *    after warm-up; medians and the median of paired ratios. Target: ≤ 1.05×.
 *
 * 3. `--only erasure-copy`: where the cost goes, on DuckDB alone over a generated 10M-row
 *    Parquet file (--quick: 500k) with 10,000 erased subjects: the plain aggregation; the
 *    same with the filter the DuckDB dialect renders today; with only the unit column read
 *    (`patient_id > 0`: the floor of any per-row filter); and over an erasure-filtered copy
 *    materialised once (src/governance/erasure/erased-copy.ts). Variants run in rotating
 *    order, round after round; medians and ratios to the plain query.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTransparencyLog } from '../src/audit/index.ts';
import { createDemoWorkspace } from '../src/demo/workspace.ts';
import { sqlFingerprint } from '../src/kernel/digest.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { readLoggedRequests } from '../src/governance/whatif/logged-request.ts';
import { closeQueryTextStore, queryTextStore } from '../src/governance/whatif/query-texts.ts';
import { replay } from '../src/governance/whatif/replay.ts';
import { whatIf } from '../src/governance/whatif/run.ts';

import { SqliteDriver, sqliteDialect } from '../src/sql/sqlite.ts';
import { erasureTables } from '../src/sql/tables/erasure.ts';
import { startNode } from '../src/node/start.ts';
import { CACHE_DIR, freshDemoWorkspace } from './run.ts';

const quick = process.argv.includes('--quick');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
const results: Record<string, unknown> = { cpus: cpus().length };

async function whatIfBench(): Promise<unknown> {
const N = quick ? 5_000 : 100_000;
const STATEMENTS = 400;
const START = Date.parse('2026-11-01T00:00:00Z');
const END = new Date('2026-12-01T00:00:00Z');

const root = mkdtempSync(join(tmpdir(), 'gh-bench-whatif-'));
try {
  const ws = join(root, 'ws');
  await createDemoWorkspace(ws, { patients: 200 });
  writeFileSync(join(ws, 'gatehouse.yaml'), `${readFileSync(join(ws, 'gatehouse.yaml'), 'utf8')}\naudit:\n  keepSqlText: true\n`);
  const draft = join(root, 'draft');
  cpSync(ws, draft, { recursive: true });
  const y = readFileSync(join(draft, 'gatehouse.yaml'), 'utf8');
  writeFileSync(join(draft, 'gatehouse.yaml'), y.replace('    unmask: [name, date_of_birth]\n', '    unmask: [date_of_birth]\n').replace(/(research-dp:\n    differentialPrivacy:\n      mechanism: gaussian\n      epsilon:) 1 /, '$1 3 '));

  // The traffic: who asks what, with literals varying per statement.
  const kinds = [
    { principal: 'ivan', purpose: 'claims-processing', datasets: ['claims'], columns: ['claims.claim_id', 'claims.amount_billed'], sql: (i: number) => `SELECT claim_id, amount_billed FROM claims WHERE amount_billed > ${i * 10} ORDER BY claim_id LIMIT 5` },
    { principal: 'ivan', purpose: 'claims-processing', datasets: ['patients'], columns: ['patients.name', 'patients.date_of_birth', 'patients.ssn', 'patients.patient_id'], sql: (i: number) => `SELECT name, date_of_birth, ssn FROM patients WHERE patient_id = ${i} ORDER BY patient_id LIMIT 3` },
    { principal: 'ada', purpose: 'operations', datasets: ['patients'], columns: ['patients.patient_id', 'patients.name', 'patients.ssn'], sql: (i: number) => `SELECT patient_id, name, ssn FROM patients WHERE patient_id > ${i} ORDER BY patient_id LIMIT 3` },
    { principal: 'rhea', purpose: 'research', datasets: ['encounters'], columns: ['encounters.department', 'encounters.length_of_stay_days'], sql: (i: number) => `SELECT department, count(*) AS n FROM encounters WHERE length_of_stay_days > ${i % 30} GROUP BY department` },
  ];
  const log = openTransparencyLog(join(ws, 'audit'), { demo: true });
  const texts = queryTextStore(join(ws, 'state'));
  const current = await loadWorkspace(ws);
  const t0 = performance.now();
  const step = (END.getTime() - START) / N;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    const k = kinds[i % kinds.length]!;
    const sql = k.sql(Math.floor(i / kinds.length) % (STATEMENTS / kinds.length));
    const time = new Date(START + i * step);
    texts.keep(sqlFingerprint(sql), sql, time);
    pending.push(log.append({
      time: time.toISOString(), principal: k.principal, source: '127.0.0.1', channel: 'http', action: 'query', purpose: k.purpose,
      datasets: k.datasets, columns: k.columns, decision: 'allow', reasons: [], policyVersion: current.workspace.policyVersion,
      obligations: [], sqlFingerprint: sqlFingerprint(sql), rowsReturned: 3, resultDigest: null, errorCode: null,
    }));
    if (pending.length >= 2000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const writeMs = performance.now() - t0;

  const t1 = performance.now();
  const report = await whatIf({ current, draftDir: draft, log, stateDir: join(ws, 'state'), now: END, days: 30 });
  const endToEndMs = performance.now() - t1;

  const { requests } = await readLoggedRequests(log, current.workspace.principals.keys(), { from: new Date(START), to: END });
  const draftLoaded = await loadWorkspace(draft);
  const t2 = performance.now();
  await replay(current, draftLoaded, requests, { from: new Date(START), to: END, sqlText: (fp) => texts.get(fp) });
  const replayMs = performance.now() - t2;

  const result = {
    requests: N, replayed: report.replayed, fromSqlText: report.modes.sql,
    changes: report.changes.map((c) => `${c.principal}×${c.dataset}`),
    logWriteSeconds: +(writeMs / 1000).toFixed(1), endToEndSeconds: +(endToEndMs / 1000).toFixed(1), replayOnlySeconds: +(replayMs / 1000).toFixed(1),
    requestsPerSecond: Math.round(N / (endToEndMs / 1000)), targetSeconds: 60, met: endToEndMs / 1000 <= 60 * (N / 100_000),
  };
  await log.close();
  closeQueryTextStore(join(ws, 'state'));
  return result;
} finally {
  rmSync(root, { recursive: true, force: true });
}
}

const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };

async function erasureBench(): Promise<unknown> {
  const patients = quick ? 20_000 : 2_000_000;
  const erased = quick ? 1_000 : 10_000;
  const runs = quick ? 7 : 21;
  const wsDir = join(CACHE_DIR, `demo-${patients}x5`);
  const demo = await freshDemoWorkspace(wsDir, { patients, encountersPerPatient: 5 });
  const stateDir = mkdtempSync(join(tmpdir(), 'gh-bench-erasure-state-'));
  const auditDir = mkdtempSync(join(tmpdir(), 'gh-bench-erasure-audit-'));
  try {
    // 10k opt-outs from purpose quality, written straight into the node's erasure table.
    const driver = SqliteDriver.openSync(join(stateDir, 'erasures.sqlite'), { schema: erasureTables(sqliteDialect()) });
    const step = Math.floor(patients / erased);
    await driver.transaction(async (q) => {
      for (let i = 0; i < erased; i++) {
        await q.run('INSERT INTO {erasures} (id, unit, value, kind, purposes, recorded_ms, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)', [`ers_bench${i}`, 'patient_id', String(1 + i * step), 'opt-out', '["quality"]', Date.now(), 'bench']);
      }
    }, { mode: 'write' });
    await driver.close();
    const node = await startNode({ workspaceDir: wsDir, auditDir, state: { kind: 'files', dir: stateDir }, demo: true, engineOptions: { threads: 2 } });
    try {
      const sql = 'SELECT department, count(*) AS n, avg(cost) AS avg_cost FROM encounters GROUP BY department';
      const run = async (purpose: string): Promise<{ ms: number; total: number; applied: readonly string[] }> => {
        const t = performance.now();
        const r = await node.gatehouse.query({ credential: demo.keys.ada, sql, purpose, source: '127.0.0.1', channel: 'bench' });
        return { ms: performance.now() - t, total: r.rows.reduce((a, row) => a + Number(row[1]), 0), applied: r.governance.obligationsApplied };
      };
      for (let i = 0; i < 3; i++) { await run('operations'); await run('quality'); }
      const plain: number[] = [];
      const withErasure: number[] = [];
      const paired: number[] = [];
      let check = { plain: 0, erased: 0, label: false };
      for (let i = 0; i < runs; i++) {
        const order = i % 2 === 0 ? ['operations', 'quality'] : ['quality', 'operations'];
        const got: Record<string, { ms: number; total: number; applied: readonly string[] }> = {};
        for (const p of order) got[p] = await run(p);
        plain.push(got.operations!.ms);
        withErasure.push(got.quality!.ms);
        paired.push(got.quality!.ms / got.operations!.ms);
        check = { plain: got.operations!.total, erased: got.quality!.total, label: got.quality!.applied.includes('erasure:encounters') && !got.operations!.applied.includes('erasure:encounters') };
      }
      const ratio = median(withErasure) / median(plain);
      return {
        rows: patients * 5, erasedSubjects: erased, runs,
        medianMsWithout: +median(plain).toFixed(1), medianMsWithErasure: +median(withErasure).toFixed(1),
        ratioOfMedians: +ratio.toFixed(3), medianPairedRatio: +median(paired).toFixed(3),
        rowsCountedWithout: check.plain, rowsCountedWithErasure: check.erased, erasureApplied: check.label,
        target: '≤ 1.05×', met: ratio <= 1.05,
      };
    } finally {
      await node.close();
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(auditDir, { recursive: true, force: true });
  }
}

/**
 * `--only erasure-engine`: the wired path end to end. Two nodes over the same demo workspace:
 * one with no erasures, one with 10k full erasures whose engine reads erased copies
 * (src/governance/erasure/copies.ts). The same aggregation alternates between them.
 */
async function erasureEngineBench(): Promise<unknown> {
  const patients = quick ? 20_000 : 2_000_000;
  const erased = quick ? 1_000 : 10_000;
  const runs = quick ? 7 : 21;
  const wsDir = join(CACHE_DIR, `demo-${patients}x5`);
  const demo = await freshDemoWorkspace(wsDir, { patients, encountersPerPatient: 5 });
  const dirs = [0, 1, 2, 3].map((i) => mkdtempSync(join(tmpdir(), `gh-bench-erasure-engine-${i}-`)));
  try {
    const driver = SqliteDriver.openSync(join(dirs[1]!, 'erasures.sqlite'), { schema: erasureTables(sqliteDialect()) });
    const step = Math.floor(patients / erased);
    await driver.transaction(async (q) => {
      for (let i = 0; i < erased; i++) {
        await q.run('INSERT INTO {erasures} (id, unit, value, kind, purposes, recorded_ms, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)', [`ers_bench${i}`, 'patient_id', String(1 + i * step), 'erasure', '[]', Date.now(), 'bench']);
      }
    }, { mode: 'write' });
    await driver.close();
    const plainNode = await startNode({ workspaceDir: wsDir, auditDir: dirs[2]!, state: { kind: 'files', dir: dirs[0]! }, demo: true, engineOptions: { threads: 2 } });
    const erasedNode = await startNode({ workspaceDir: wsDir, auditDir: dirs[3]!, state: { kind: 'files', dir: dirs[1]! }, demo: true, engineOptions: { threads: 2 } });
    try {
      const t0 = performance.now();
      const copies = await erasedNode.gatehouse.settleErasedCopies();
      const buildMs = performance.now() - t0;
      const sql = 'SELECT department, count(*) AS n, avg(cost) AS avg_cost FROM encounters GROUP BY department';
      const run = async (node: typeof plainNode): Promise<{ ms: number; total: number; applied: readonly string[] }> => {
        const t = performance.now();
        const r = await node.gatehouse.query({ credential: demo.keys.ada, sql, purpose: 'operations', source: '127.0.0.1', channel: 'bench' });
        return { ms: performance.now() - t, total: r.rows.reduce((a, row) => a + Number(row[1]), 0), applied: r.governance.obligationsApplied };
      };
      for (let i = 0; i < 3; i++) { await run(plainNode); await run(erasedNode); }
      const plain: number[] = [];
      const withErasure: number[] = [];
      let check = { plain: 0, erased: 0, label: false };
      for (let i = 0; i < runs; i++) {
        const a = i % 2 === 0 ? await run(plainNode) : null;
        const b = await run(erasedNode);
        const p = a ?? await run(plainNode);
        plain.push(p.ms);
        withErasure.push(b.ms);
        check = { plain: p.total, erased: b.total, label: b.applied.includes('erasure:encounters') };
      }
      const ratio = median(withErasure) / median(plain);
      return {
        rows: patients * 5, erasedSubjects: erased, runs, copiedDatasets: [...copies.keys()].sort(), buildCopiesAndReopenMs: +buildMs.toFixed(0),
        medianMsWithout: +median(plain).toFixed(1), medianMsWithErasure: +median(withErasure).toFixed(1), ratioOfMedians: +ratio.toFixed(3),
        rowsCountedWithout: check.plain, rowsCountedWithErasure: check.erased, erasureApplied: check.label,
        target: '≤ 1.05×', met: ratio <= 1.05,
      };
    } finally {
      await erasedNode.close();
      await plainNode.close();
    }
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

async function erasedCopyBench(): Promise<unknown> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const { buildErasedCopy } = await import('../src/governance/erasure/erased-copy.ts');
  const rows = quick ? 500_000 : 10_000_000;
  const patients = rows / 5;
  const erased = quick ? 1_000 : 10_000;
  const rounds = quick ? 7 : 15;
  const dir = mkdtempSync(join(tmpdir(), 'gh-bench-erased-copy-'));
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await inst.connect();
  try {
    const file = join(dir, 'encounters.parquet');
    await c.run(`COPY (SELECT i AS encounter_id, (i % ${patients}) + 1 AS patient_id,
      ['cardiology','orthopaedics','oncology','paediatrics','dermatology','neurology','emergency','intensive-care'][((hash(i) % 8) + 1)::BIGINT] AS department,
      ((hash(i * 7) % 100000)::BIGINT) / 10.0 AS cost FROM range(${rows}) t(i)) TO '${file}' (FORMAT parquet)`);
    await c.run(`CREATE VIEW encounters AS SELECT * FROM read_parquet('${file}')`);
    const step = Math.floor(patients / erased);
    const values = Array.from({ length: erased }, (_, i) => String(1 + i * step));
    const t0 = performance.now();
    const kept = await buildErasedCopy(c, { source: 'encounters', unit: 'patient_id', values, target: join(dir, 'encounters-erased.parquet') });
    const buildMs = performance.now() - t0;
    await c.run(`CREATE VIEW encounters_erased AS SELECT * FROM read_parquet('${join(dir, 'encounters-erased.parquet')}')`);
    const q = (from: string, where = ''): string => `SELECT department, count(*) AS n, avg(cost) AS avg_cost FROM ${from} ${where} GROUP BY department`;
    const variants: [string, string][] = [
      ['plain', q('encounters')],
      ['filter (today)', q('encounters', `WHERE (patient_id IN (SELECT unnest([${values.join(', ')}]))) IS NOT TRUE`)],
      ['unit column read only', q('encounters', 'WHERE patient_id > 0')],
      ['erased copy', q('encounters_erased')],
    ];
    const times = new Map<string, number[]>(variants.map(([k]) => [k, []]));
    const counts = new Map<string, number>();
    for (let r = 0; r < rounds + 2; r++) {
      for (let k = 0; k < variants.length; k++) {
        const [name, sql] = variants[(r + k) % variants.length]!;
        const t = performance.now();
        const res = await c.runAndReadAll(sql);
        const ms = performance.now() - t;
        counts.set(name, res.getRowsJS().reduce((a, row) => a + Number(row[1]), 0));
        if (r >= 2) times.get(name)!.push(ms); // two warm-up rounds
      }
    }
    const plain = median(times.get('plain')!);
    return {
      rows, erasedSubjects: erased, rounds, buildCopyMs: +buildMs.toFixed(0), rowsKept: kept,
      variants: Object.fromEntries(variants.map(([k]) => [k, { medianMs: +median(times.get(k)!).toFixed(1), ratio: +(median(times.get(k)!) / plain).toFixed(3), rowsCounted: counts.get(k) }])),
      target: '≤ 1.05×', met: median(times.get('erased copy')!) / plain <= 1.05,
    };
  } finally {
    c.closeSync();
    inst.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (only === null || only === 'whatif') results.whatIf = await whatIfBench();
if (only === null || only === 'erasure') results.erasure = await erasureBench();
if (only === 'erasure-copy') results.erasedCopy = await erasedCopyBench();
if (only === null || only === 'erasure-engine') results.erasureEngine = await erasureEngineBench();
console.log(JSON.stringify(results, null, 2));
const here = dirname(fileURLToPath(import.meta.url));
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', `governance${only ? `-${only}` : ''}${quick ? '-quick' : ''}.json`), `${JSON.stringify(results, null, 2)}\n`);
