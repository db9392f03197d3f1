/**
 * Release auditing (release-audit.ts): released cells are linear constraints; a release
 * that, with earlier ones, pins a combination of fewer than k units is withheld. Attacks
 * of issue 12 §2 on a real DuckDB engine over the demo data, as the research contractor.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditCells, auditRelease, disclosesSmallCombination, ReleaseAuditor, SqliteReleaseLedger } from './release-audit.ts';
import { aggregationEngine, type AggregationEngine } from './testing/aggregation-engine.ts';

describe('the audit algebra', () => {
  it('finds a cell pinned by the difference of two releases', () => {
    // Atoms: a (30 units) and b (1 unit). Released: a+b, then a. b = (a+b) − a.
    assert.equal(disclosesSmallCombination([[1, 1], [1, 0]], [30, 1], 11), true);
    assert.equal(disclosesSmallCombination([[1, 1], [1, 0]], [30, 12], 11), false, 'a pinned atom of 12 units is allowed');
  });

  it('finds a suppressed cell recovered from a total and the published cells (row minus cell)', () => {
    // Atoms: three large payers and one small one; published: the three large and the total.
    const units = [40, 50, 60, 3];
    assert.equal(disclosesSmallCombination([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 1, 1, 1]], units, 11), true);
    // With a complement withheld (secondary suppression), the total pins only small + complement.
    assert.equal(disclosesSmallCombination([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]], units, 11), false);
  });

  it('withholds only the new cells that would disclose, in order', () => {
    const atoms = [{ member: [true, true, true], units: 30 }, { member: [true, false, true], units: 2 }];
    // old: cell 0 covers both atoms; new: cell 1 covers atom 0 only (pins atom 1), cell 2 = cell 0 again.
    assert.deepEqual(auditCells(atoms, 1, 2, 11), [false, true]);
  });
});

describe('release auditing on the demo claims', () => {
  let a: AggregationEngine;
  let dir: string;
  before(async () => { a = await aggregationEngine(1500); dir = mkdtempSync(join(tmpdir(), 'gh-ledger-')); });
  after(async () => { await a.close(); rmSync(dir, { recursive: true, force: true }); });

  const release = async (auditor: ReleaseAuditor, sql: string) => {
    const { plan, rows } = await a.released(sql);
    return auditRelease(auditor, a.runIr, 'rhea', plan.disclosure!, rows);
  };

  it('withholds the Medicare total minus one patient after the per-payer table (counts and sums)', async () => {
    const ledger = new SqliteReleaseLedger(join(dir, 'ledger.db'));
    const auditor = new ReleaseAuditor({ ledger });
    const table = await release(auditor, 'SELECT payer, count(*) AS n, sum(amount_billed) AS s FROM claims GROUP BY payer');
    assert.ok(table.rows.some((r) => r[0] === 'Medicare') && table.withheld === 0, 'every payer is a large group');
    const [[top]] = await a.truth((t) => `SELECT max(amount_billed) FROM ${t('claims')} WHERE payer = 'Medicare'`);
    const [[patients]] = await a.truth((t) => `SELECT count(DISTINCT patient_id) FROM ${t('claims')} WHERE payer = 'Medicare' AND amount_billed >= ${top}`);
    assert.equal(Number(patients), 1, 'the excluded claims belong to one patient');
    const minusOne = await release(auditor, `SELECT count(*) AS n, sum(amount_billed) AS s FROM claims WHERE payer = 'Medicare' AND amount_billed < ${top}`);
    assert.deepEqual(minusOne, { rows: [], withheld: 1 }, 'the cell that differs by one patient is withheld');
    // Persisted: a fresh auditor on the same ledger file remembers the per-payer table.
    const again = await release(new ReleaseAuditor({ ledger: new SqliteReleaseLedger(join(dir, 'ledger.db')) }), `SELECT sum(amount_billed) AS s, count(*) AS n FROM claims WHERE payer = 'Medicare' AND amount_billed < ${top}`);
    assert.equal(again.withheld, 1);
  });

  it('releases a cell that differs from earlier ones by a large group', async () => {
    const auditor = new ReleaseAuditor();
    await release(auditor, 'SELECT payer, count(*) AS n FROM claims GROUP BY payer');
    const [[median]] = await a.truth((t) => `SELECT median(amount_billed) FROM ${t('claims')} WHERE payer = 'Medicare'`);
    const half = await release(auditor, `SELECT count(*) AS n FROM claims WHERE payer = 'Medicare' AND amount_billed < ${median}`);
    assert.equal(half.withheld, 0);
    assert.equal(half.rows.length, 1);
  });

  it('withholds "total minus the complement" once the total and the visible cells were published (suppressed cell recovery)', async () => {
    const auditor = new ReleaseAuditor();
    // Medicare restricted to its few largest claims: a small group, withheld with a complement.
    const amounts = await a.truth((t) => `SELECT amount_billed FROM ${t('claims')} WHERE payer = 'Medicare' ORDER BY amount_billed DESC LIMIT 4`);
    const W = `(payer <> 'Medicare' OR amount_billed >= ${amounts[3]![0]})`;
    const table = await release(auditor, `SELECT payer, count(*) AS n FROM claims WHERE ${W} GROUP BY payer`);
    const payers = (await a.truth((t) => `SELECT DISTINCT payer FROM ${t('claims')}`)).map((r) => String(r[0]));
    const visible = new Set(table.rows.map((r) => String(r[0])));
    assert.ok(!visible.has('Medicare'), 'disclosure control withheld the small group');
    assert.ok(payers.some((x) => !visible.has(x) && x !== 'Medicare'), 'and a complement with it');
    const total = await release(auditor, `SELECT count(*) AS n FROM claims WHERE ${W}`);
    assert.equal(total.withheld, 0, 'the total alone pins only small + complement, a large combination');
    for (const p of payers.filter((x) => !visible.has(x) && x !== 'Medicare')) {
      const rest = await release(auditor, `SELECT count(*) AS n FROM claims WHERE ${W} AND payer <> '${p}'`);
      assert.equal(rest.withheld, 1, `total minus ${p} would pin the small Medicare group`);
    }
  });
});
