/**
 * Designated compute node (src/cleanroom/compute.ts): members' columns are loaded only into
 * the locked-down engine, the governed analysis runs through the one executor, groups below
 * the strictest threshold are withheld, and nothing is left behind.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, existsSync } from 'node:fs';
import { loadParser } from '../src/query/parse.ts';
import { runOnComputeNode, type TableColumns } from '../src/cleanroom/compute.ts';
import { parseRule, type Collaboration, type Contribution } from '../src/cleanroom/model.ts';

const COLS = [
  { name: 'account_key', type: 'VARCHAR' }, { name: 'customer_id', type: 'VARCHAR' }, { name: 'segment', type: 'VARCHAR' },
  { name: 'flagged', type: 'BOOLEAN' }, { name: 'exposure', type: 'DOUBLE' },
] as const;

function contribution(table: string, owner: string, min: number): Contribution {
  return {
    table, owner, dataset: 'accounts', columns: COLS,
    rule: parseRule({ kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'], aggregateColumns: [{ column: 'exposure', functions: ['sum', 'count'] }], scalarFunctions: [], joinRequired: true, privacyUnit: 'customer_id', minDistinctUnits: min }, COLS),
  };
}

const collab: Collaboration = {
  id: 'fraud-ring', name: 'Fraud rings', purpose: 'fraud-detection', creator: 'bank-a', computeNode: 'bank-a', status: 'active', version: 3,
  members: ['bank-a', 'bank-b'].map((n) => ({ nodeId: n, publicKey: `ed25519:${n}`, abilities: ['query', 'receive', 'approve'], status: 'active' as const })),
  contributions: [contribution('a_accounts', 'bank-a', 25), contribution('b_accounts', 'bank-b', 10)],
  templates: [],
};

/** Bank A: accounts 0..599; bank B: 300..899. Segment "private" is small (8 shared customers). */
function bank(from: number, to: number, salt: number): TableColumns {
  const rows = [];
  for (let i = from; i < to; i++) {
    const segment = i % 75 === 0 ? 'private' : i % 2 === 0 ? 'retail' : 'business';
    rows.push([`acct-${i}`, `cust-${i}`, segment, (i + salt) % 3 === 0, (i * 37 + salt) % 1000]);
  }
  return { columns: COLS.map((c) => c.name), rows };
}

before(async () => { await loadParser(); });

describe('the designated compute node', () => {
  it('joins both banks in its engine, releases groups at or above the strictest threshold, and matches a plain computation', async () => {
    const a = bank(0, 600, 1), b = bank(300, 900, 2);
    const out = await runOnComputeNode({
      collaboration: collab, querier: 'bank-a', template: null, timeoutMs: 20_000,
      sql: 'SELECT a.segment, count(*) AS n, sum(b.exposure) AS exposure FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.segment ORDER BY a.segment',
      tables: new Map([['a_accounts', a], ['b_accounts', b]]),
    });
    // Plain computation over the overlap 300..599.
    const plain = new Map<string, { n: number; e: number }>();
    const bByKey = new Map(b.rows.map((r) => [r[0], r]));
    for (const r of a.rows) {
      const m = bByKey.get(r[0]);
      if (!m) continue;
      const g = plain.get(r[2] as string) ?? { n: 0, e: 0 };
      g.n++; g.e += m[4] as number;
      plain.set(r[2] as string, g);
    }
    assert.ok(plain.get('private')!.n < 25, 'the test needs a small group');
    const released = new Map(out.release.rows.map((r) => [r[0] as string, { n: Number(r[1]), e: Number(r[2]) }]));
    assert.equal(released.has('private'), false, 'a group of fewer than 25 customers is withheld');
    // Disclosure control may also withhold a second group (secondary suppression), so the
    // small one cannot be recovered from a total; every group released is exact.
    assert.ok(released.size >= 1);
    for (const [seg, v] of released) assert.deepEqual(v, plain.get(seg));
    assert.ok(out.release.rowsSuppressed >= 1);
    assert.ok(out.applied.some((l) => l.startsWith('aggregationOnly')) || out.applied.some((l) => /disclosure|minGroup|aggregation/.test(l)), out.applied.join(','));
    assert.deepEqual([...out.deletion.tables].sort(), ['a_accounts', 'b_accounts']);
    assert.equal(out.deletion.rows, 1200);
    assert.equal(readdirSync('/dev/shm').filter((n) => n.startsWith(`gh-cleanroom-${process.pid}-`)).length, 0, 'nothing is left on tmpfs');
    assert.ok(existsSync('/dev/shm'));
  });

  it('refuses a broken rule before any data reaches the engine', async () => {
    await assert.rejects(runOnComputeNode({
      collaboration: collab, querier: 'bank-a', template: null, timeoutMs: 20_000,
      sql: 'SELECT a.account_key, sum(b.exposure) FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.account_key',
      tables: new Map([['a_accounts', bank(0, 50, 1)], ['b_accounts', bank(0, 50, 2)]]),
    }), { code: 'OBLIGATION_VIOLATION' });
    assert.equal(readdirSync('/dev/shm').filter((n) => n.startsWith(`gh-cleanroom-${process.pid}-`)).length, 0);
  });
});
