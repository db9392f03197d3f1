/**
 * Differential privacy on clean-room analyses (src/cleanroom/rules/dp-analysis.ts): a rule
 * that requires DP makes the compute node release the join's aggregates with the project's
 * own noise, contribution bounding and budget ledger, and each querying member spends its
 * own budget on the protected table — until it runs out, while another member's does not.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadParser } from '../src/query/parse.ts';
import { runOnComputeNode, type TableColumns } from '../src/cleanroom/compute.ts';
import { parseRule, type Collaboration, type Contribution } from '../src/cleanroom/model.ts';
import { BudgetStore } from '../src/privacy/accounting/budget-store.ts';
import { GatehouseError } from '../src/errors.ts';

const COLS = [
  { name: 'account_key', type: 'VARCHAR' }, { name: 'customer_id', type: 'VARCHAR' }, { name: 'segment', type: 'VARCHAR' },
  { name: 'flagged', type: 'BOOLEAN' }, { name: 'exposure', type: 'DOUBLE' },
] as const;

const DP = { mechanism: 'gaussian', epsilon: 1, delta: 1e-6, maxGroupsPerUnit: 1, maxRowsPerUnitPerGroup: 1, budget: { epsilon: 3, delta: 1e-5 } };

function contribution(table: string, owner: string, dp: boolean): Contribution {
  return {
    table, owner, dataset: 'accounts', columns: COLS,
    rule: parseRule({
      kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'],
      aggregateColumns: [{ column: 'exposure', functions: ['sum', 'count'], bounds: [0, 1000] }], joinRequired: true,
      privacyUnit: 'customer_id', minDistinctUnits: 10, ...(dp ? { differentialPrivacy: DP } : {}),
    }, COLS),
  };
}

const collab: Collaboration = {
  id: 'fraud-ring', name: 'Fraud rings', purpose: 'fraud-detection', creator: 'bank-a', computeNode: 'bank-a', status: 'active', version: 4,
  members: ['bank-a', 'bank-b', 'bank-c'].map((n) => ({ nodeId: n, publicKey: `ed25519:${n}`, abilities: ['query', 'receive', 'approve'], status: 'active' as const })),
  contributions: [contribution('a_accounts', 'bank-a', false), contribution('b_accounts', 'bank-b', false), contribution('c_accounts', 'bank-c', true)],
  templates: [],
};

function bank(from: number, to: number, salt: number): TableColumns {
  const rows = [];
  for (let i = from; i < to; i++) rows.push([`acct-${i}`, `cust-${i}`, i % 2 === 0 ? 'retail' : 'business', (i + salt) % 3 === 0, (i * 37 + salt) % 1000]);
  return { columns: COLS.map((c) => c.name), rows };
}

const A = bank(0, 1600, 1), B = bank(400, 2000, 2), C = bank(800, 2400, 3);
const sqlOver = (mine: string) => `SELECT ${mine}.segment, count(*) AS n, sum(c.exposure) AS exposure FROM ${mine}_accounts ${mine} JOIN c_accounts c ON ${mine}.account_key = c.account_key GROUP BY ${mine}.segment ORDER BY ${mine}.segment`;

let dir: string;
let budgets: BudgetStore;

before(async () => {
  await loadParser();
  dir = mkdtempSync(join(tmpdir(), 'gh-cleanroom-dp-'));
  budgets = await BudgetStore.open(join(dir, 'budgets.db'));
});
after(async () => {
  await budgets?.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = (querier: string, tables: Map<string, TableColumns>, sql: string, ledger: BudgetStore | null = budgets) => runOnComputeNode({
  collaboration: collab, querier, template: null, timeoutMs: 20_000, sql, tables, ...(ledger ? { budgets: ledger } : {}),
});

describe('differential privacy on clean-room analyses', () => {
  it('releases the join\'s aggregates with noise under the protected table\'s units, close to the exact ones', async () => {
    const out = await run('bank-a', new Map([['a_accounts', A], ['c_accounts', C]]), sqlOver('a'));
    const exact = new Map<string, { n: number; e: number }>();
    const cByKey = new Map(C.rows.map((r) => [r[0], r]));
    for (const r of A.rows) {
      const m = cByKey.get(r[0]);
      if (!m) continue;
      const g = exact.get(r[2] as string) ?? { n: 0, e: 0 };
      g.n++; g.e += m[4] as number;
      exact.set(r[2] as string, g);
    }
    assert.equal(out.release.rows.length, 2, 'both segments (400 shared customers each) survive partition selection');
    let differs = false;
    for (const [segment, n, e] of out.release.rows as [string, number, number][]) {
      const x = exact.get(segment)!;
      if (Number(n) !== x.n || Number(e) !== x.e) differs = true;
      assert.ok(Math.abs(Number(n) - x.n) < 100, `count ${n} is near ${x.n}`);
      assert.ok(Math.abs(Number(e) - x.e) < 0.25 * x.e, `sum ${e} is near ${x.e}`);
    }
    assert.ok(differs, 'the released values carry noise');
    assert.ok(out.release.privacy, 'the release says how it was protected');
    assert.equal(out.release.privacy!.budget!.subject, 'node:bank-a');
    assert.ok(out.applied.some((l) => l.startsWith('cleanroom:differentialPrivacy(c_accounts.customer_id')), out.applied.join(', '));
    assert.ok(!out.applied.some((l) => l.startsWith('aggregationOnly')), 'the noisy release replaces the exact threshold');
    assert.ok(out.deletion.tables.includes('cleanroom_fraud_ring_joined'), 'the join held on tmpfs is in the deletion record');
  });

  it('charges each querying member its own budget: bank-a runs out, bank-b still has all of its own', async () => {
    let refused: unknown = null;
    let releases = 1; // the test above spent one of bank-a's
    for (let i = 0; i < 30 && refused === null; i++) {
      try { await run('bank-a', new Map([['a_accounts', A], ['c_accounts', C]]), sqlOver('a')); releases++; } catch (err) { refused = err; }
    }
    assert.ok(refused instanceof GatehouseError, `bank-a's budget never ran out (${releases} releases)`);
    assert.equal(refused.code, 'BUDGET_EXHAUSTED');
    assert.ok(releases >= 3, `a budget of ε=3 allows at least three releases of ε=1 (got ${releases})`);
    // The same analysis by another member spends that member's budget, untouched so far.
    const other = await run('bank-b', new Map([['b_accounts', B], ['c_accounts', C]]), sqlOver('b'));
    assert.equal(other.release.privacy!.budget!.subject, 'node:bank-b');
    assert.ok(other.release.privacy!.budget!.spentEpsilon <= 1.0001, 'bank-b has spent only this release');
    // And bank-a stays refused.
    await assert.rejects(run('bank-a', new Map([['a_accounts', A], ['c_accounts', C]]), sqlOver('a')), (e: unknown) => e instanceof GatehouseError && e.code === 'BUDGET_EXHAUSTED');
  });

  it('refuses a DP table beside another member\'s table whose threshold a noisy release would not apply', async () => {
    await assert.rejects(run('bank-a', new Map([['b_accounts', B], ['c_accounts', C]]), 'SELECT b.segment, count(*) AS n FROM b_accounts b JOIN c_accounts c ON b.account_key = c.account_key GROUP BY b.segment'),
      (e: unknown) => e instanceof GatehouseError && /requires differential privacy/.test(e.message));
  });

  it('refuses a DP analysis on a compute node that keeps no budget', async () => {
    await assert.rejects(run('bank-a', new Map([['a_accounts', A], ['c_accounts', C]]), sqlOver('a'), null),
      (e: unknown) => e instanceof GatehouseError && /keeps no privacy budgets/.test(e.message));
  });

  it('refuses a rule whose DP parameters are out of range', () => {
    assert.throws(() => parseRule({ kind: 'aggregation', joinColumns: ['account_key'], aggregateColumns: [{ column: 'exposure', functions: ['sum'] }], privacyUnit: 'customer_id', minDistinctUnits: 10, differentialPrivacy: { epsilon: 0, budget: { epsilon: 1 } } }, COLS), /epsilon/);
    assert.throws(() => parseRule({ kind: 'aggregation', joinColumns: ['account_key'], aggregateColumns: [{ column: 'exposure', functions: ['sum'], bounds: [5, 1] }], privacyUnit: 'customer_id', minDistinctUnits: 10 }, COLS), /bounds/);
  });
});
