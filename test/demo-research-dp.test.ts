/**
 * The served demo's research contractor reads every dataset through differential privacy
 * (src/demo/workspace.ts, researchPrivacy: 'differential-privacy', the default with
 * `identity: true`): the README's research examples run against it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTransparencyLog, type TransparencyLog } from '../src/audit/index.ts';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { Gatehouse } from '../src/pipeline/gatehouse.ts';
import { KEYS } from './helpers/workspace.ts';

let dir: string, gh: Gatehouse, log: TransparencyLog;
const rhea = (sql: string) => gh.query({ credential: KEYS.rhea, sql, purpose: 'research', source: '127.0.0.1', channel: 'test' });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-demo-dp-'));
  await createTestDemoWorkspace(join(dir, 'ws'), { patients: 1500, keys: KEYS, researchPrivacy: 'differential-privacy' });
  log = openTransparencyLog(join(dir, 'audit'), { demo: true });
  gh = await Gatehouse.open({ workspaceDir: join(dir, 'ws'), audit: log, auditReader: log, engineOptions: { poolSize: 2 }, demo: true });
});
after(async () => { await gh.close(); await log.close(); rmSync(dir, { recursive: true, force: true }); });

describe('the demo research contractor under differential privacy', () => {
  it('gets claims and patients as noisy aggregates with a privacy account', async () => {
    for (const sql of ['SELECT payer, count(*) AS n, sum(amount_billed) AS billed FROM claims GROUP BY payer', 'SELECT region, count(*) AS n FROM patients GROUP BY region']) {
      const r = await rhea(sql);
      assert.ok(r.governance.privacy, `${sql}: released with differential privacy`);
      assert.ok(r.governance.obligationsApplied.some((o) => o.startsWith('differentialPrivacy:')));
      assert.ok(r.rows.length > 0);
    }
  });

  it('answers the Medicare-minus-one-patient query only with noise calibrated to hide that patient', async () => {
    const r = await rhea("SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE payer = 'Medicare' AND patient_id <> 1");
    assert.ok(r.governance.privacy, 'released with differential privacy');
    assert.ok(r.intervals!.every((row) => row.every((i) => i === null || i[1] - i[0] > 2)), 'every value carries an interval wider than one claim count');
  });

  it('refuses row-level reads with a reason', async () => {
    await assert.rejects(rhea('SELECT name, ssn FROM patients'), (e: { code?: string; message: string }) => e.code === 'OBLIGATION_VIOLATION' && /differentially private|aggregate/.test(e.message));
  });
});
