/**
 * Policy what-if replay (issue 23): `npx node bench/governance.ts [--quick]`
 * (writes bench/results/governance.json).
 *
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

const quick = process.argv.includes('--quick');
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
    texts.keep(sql, time);
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
    cpus: cpus().length, requests: N, replayed: report.replayed, fromSqlText: report.modes.sql,
    changes: report.changes.map((c) => `${c.principal}×${c.dataset}`),
    logWriteSeconds: +(writeMs / 1000).toFixed(1), endToEndSeconds: +(endToEndMs / 1000).toFixed(1), replayOnlySeconds: +(replayMs / 1000).toFixed(1),
    requestsPerSecond: Math.round(N / (endToEndMs / 1000)), targetSeconds: 60, met: endToEndMs / 1000 <= 60 * (N / 100_000),
  };
  console.log(JSON.stringify(result, null, 2));
  const here = dirname(fileURLToPath(import.meta.url));
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'governance.json'), `${JSON.stringify(result, null, 2)}\n`);
  await log.close();
  closeQueryTextStore(join(ws, 'state'));
} finally {
  rmSync(root, { recursive: true, force: true });
}
