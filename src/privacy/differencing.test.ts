/**
 * Differencing detection (differencing.ts, differencing-history.ts): the history cannot be
 * flushed, survives a restart, counts failed queries, and compares filters written with
 * subqueries or joins — checked on a real DuckDB engine over the demo claims.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatehouseError } from '../errors.ts';
import { DifferencingMonitor, type DifferencingProbe } from './differencing.ts';
import { SqliteDifferencingHistory } from './differencing-history.ts';
import { aggregationEngine, type AggregationEngine } from './testing/aggregation-engine.ts';

let a: AggregationEngine;
let dir: string;
before(async () => { a = await aggregationEngine(1500); dir = mkdtempSync(join(tmpdir(), 'gh-diff-')); });
after(async () => { await a.close(); rmSync(dir, { recursive: true, force: true }); });

const probe = (sql: string): DifferencingProbe => a.plan(sql).disclosure!.probe!;

/** The pipeline's sequence: admit (records), run the check, refuse on a small difference. */
async function ask(m: DifferencingMonitor, sql: string): Promise<'refused' | 'allowed'> {
  const p = probe(sql);
  const previous = m.admit('rhea', p);
  if (previous.length === 0) return 'allowed';
  const r = await a.runIr(m.checkQuery(p, previous));
  if (DifferencingMonitor.firstHit(p, r.rows[0] ?? []) >= 0) { m.refused('rhea', p); return 'refused'; }
  return 'allowed';
}

describe('differencing detection', () => {
  it('compares a filter written with NOT IN (SELECT ...) instead of skipping it', async () => {
    const m = new DifferencingMonitor();
    const [[claim]] = await a.truth((t) => `SELECT min(claim_id) FROM ${t('claims')}`);
    assert.equal(await ask(m, 'SELECT count(*) AS n FROM claims'), 'allowed');
    assert.equal(await ask(m, `SELECT count(*) AS n FROM claims WHERE claim_id NOT IN (SELECT ${claim})`), 'refused');
  });

  it('compares a query that joins another dataset with one that does not, by the units they select', async () => {
    const m = new DifferencingMonitor();
    const [[zip]] = await a.truth((t) => `SELECT zip FROM ${t('patients')} WHERE patient_id IN (SELECT patient_id FROM ${t('claims')}) GROUP BY zip HAVING count(*) = 1 LIMIT 1`);
    assert.equal(await ask(m, 'SELECT count(*) AS n FROM claims'), 'allowed');
    assert.equal(await ask(m, `SELECT count(*) AS n FROM claims c JOIN patients p ON c.patient_id = p.patient_id WHERE p.zip <> '${zip}'`), 'refused');
  });

  it('cannot be flushed: twenty (or five hundred) unrelated queries do not push the first filter out', async () => {
    const m = new DifferencingMonitor({ capacity: 40, maxRefusals: 100 });
    const [[claim]] = await a.truth((t) => `SELECT min(claim_id) FROM ${t('claims')}`);
    await ask(m, 'SELECT count(*) AS n FROM claims');
    for (let i = 0; i < 30; i++) await ask(m, `SELECT count(*) AS n FROM claims WHERE amount_billed > ${1000 + i * 997}`);
    assert.equal(await ask(m, `SELECT count(*) AS n FROM claims WHERE claim_id <> ${claim}`), 'refused');
    // Filling the history refuses new filters instead of forgetting old ones.
    let full: unknown = null;
    for (let i = 0; i < 60 && full === null; i++) {
      try { m.admit('rhea', probe(`SELECT count(*) AS n FROM claims WHERE amount_paid > ${500 + i * 101}`)); } catch (e) { full = e; }
    }
    assert.ok(full instanceof GatehouseError && full.code === 'DIFFERENCING_DETECTED' && /distinct filters/.test(full.message), String(full));
    assert.doesNotThrow(() => m.admit('rhea', probe('SELECT count(*) AS n FROM claims')), 'a filter used before is still accepted');
  });

  it('counts a query that fails after admission, and survives a restart (node:sqlite)', async () => {
    const file = join(dir, 'history.db');
    const first = new DifferencingMonitor({ history: new SqliteDifferencingHistory(file) });
    first.admit('rhea', probe('SELECT count(*) AS n FROM claims'));
    // ... the engine fails or times out here: nothing else is called.
    const second = new DifferencingMonitor({ history: new SqliteDifferencingHistory(file) });
    const [[claim]] = await a.truth((t) => `SELECT max(claim_id) FROM ${t('claims')}`);
    assert.equal(await ask(second, `SELECT count(*) AS n FROM claims WHERE claim_id <> ${claim}`), 'refused');
  });

  it('stops answering after repeated refusals (each refusal tells one bit)', async () => {
    const m = new DifferencingMonitor({ maxRefusals: 2 });
    const ids = (await a.truth((t) => `SELECT claim_id FROM ${t('claims')} ORDER BY claim_id LIMIT 3`)).map((r) => r[0]);
    await ask(m, 'SELECT count(*) AS n FROM claims');
    assert.equal(await ask(m, `SELECT count(*) AS n FROM claims WHERE claim_id <> ${ids[0]}`), 'refused');
    assert.equal(await ask(m, `SELECT count(*) AS n FROM claims WHERE claim_id <> ${ids[1]}`), 'refused');
    await assert.rejects(ask(m, "SELECT count(*) AS n FROM claims WHERE payer = 'Medicare'"), (e: unknown) => e instanceof GatehouseError && e.code === 'DIFFERENCING_DETECTED');
  });
});
