/**
 * Differential privacy against hostile data: one privacy unit with 10^6 rows, NaN,
 * ±Infinity, −0, values far outside the declared bounds and sums that would overflow
 * int64. Contribution bounding must hold: whatever the data, one unit moves a released
 * value by at most its bounded contribution (plus noise), and nothing errors or leaks.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { apiKeyDigest } from '../src/identity/digest.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import type { Gatehouse } from '../src/pipeline/gatehouse.ts';

const KEY = 'k-analyst-dp-adversarial-0123456789';
let dir: string;
let node: GatehouseNode;
let gh: Gatehouse;

async function workspace(root: string, rows: string): Promise<void> {
  mkdirSync(join(root, 'data'), { recursive: true });
  mkdirSync(join(root, 'policies'), { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`COPY (${rows}) TO '${join(root, 'data', 'readings.parquet')}' (FORMAT parquet)`);
  c.closeSync();
  db.closeSync();
  writeFileSync(join(root, 'secrets.key'), 'ab'.repeat(32));
  writeFileSync(join(root, 'schema.cedarschema'), 'entity Group; entity Principal in [Group]; entity Dataset;\naction query appliesTo { principal: Principal, resource: Dataset, context: { purpose: String } };\n');
  writeFileSync(join(root, 'policies', 'p.cedar'), '@obligations("dp")\npermit (principal, action == Action::"query", resource == Dataset::"readings") when { context.purpose == "research" };\n');
  writeFileSync(join(root, 'gatehouse.yaml'), `version: 1
name: hostile
secrets: { hashKeyFile: secrets.key }
datasets:
  readings:
    source: { parquet: data/readings.parquet }
    classification: regulated
    privacyUnit: unit_id
    columns:
      unit_id: { type: BIGINT, classification: confidential }
      grp:     { type: VARCHAR, classification: internal }
      value:   { type: DOUBLE, classification: confidential, bounds: [0, 100] }
obligations:
  dp:
    differentialPrivacy:
      mechanism: laplace
      epsilon: 1
      maxGroupsPerUnit: 1
      maxRowsPerUnitPerGroup: 2
      publicGroups: { grp: [a, b] }
      budget: { epsilon: 1000, delta: 1.0e-6 }
principals:
  analyst: { apiKeySha256: [${apiKeyDigest(KEY)}] }
`);
}

const ask = (sql: string) => gh.query({ credential: KEY, sql, purpose: 'research', source: '127.0.0.1', channel: 'test' });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-dp-hostile-'));
  // 1,000 ordinary units with one row of value 50 in group a; unit 0 owns 10^6 rows of
  // hostile values (NaN, ±Infinity, -0, 1e300, -1e300) in group a and b.
  await workspace(dir, `
    SELECT i AS unit_id, 'a' AS grp, 50.0::DOUBLE AS value FROM range(1, 1001) r(i)
    UNION ALL
    SELECT 0 AS unit_id, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS grp,
      CASE i % 6 WHEN 0 THEN 'NaN'::DOUBLE WHEN 1 THEN 'Infinity'::DOUBLE WHEN 2 THEN '-Infinity'::DOUBLE
                 WHEN 3 THEN -0.0::DOUBLE WHEN 4 THEN 1e300 ELSE -1e300 END AS value
    FROM range(1000000) r(i)`);
  node = await startNode({ workspaceDir: dir, auditDir: join(dir, 'audit'), demo: true, engineOptions: { poolSize: 2 } });
  gh = node.gatehouse;
});
after(async () => {
  await node.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('differential privacy on hostile data', () => {
  it('bounds the contribution of a unit with a million rows of extreme values', async () => {
    const r = await ask('SELECT grp, count(*) AS n, sum(value) AS s, avg(value) AS m FROM readings GROUP BY grp ORDER BY grp');
    assert.equal(r.rows.length, 2, 'both public groups are released');
    const [a, b] = r.rows as [number | string | null][][];
    const ci = Object.fromEntries(r.governance.privacy!.noise.map((n) => [n.output, n.ci95]));
    // Group a: 1,000 units × 1 row, plus unit 0 with at most C = 2 rows (L = 1 group).
    assert.ok(Math.abs(Number(a![1]) - 1000) <= 2 + 5 * ci.n!, `count ${a![1]}`);
    // Sum: 1000 × 50 plus at most C · 100 from the hostile unit.
    assert.ok(Math.abs(Number(a![2]) - 50_000) <= 200 + 5 * ci.s!, `sum ${a![2]}`);
    for (const v of [...a!, ...b!]) if (typeof v === 'number') assert.ok(Number.isFinite(v), 'no NaN or Infinity is released');
    assert.ok(Number(a![3]) >= 0 && Number(a![3]) <= 100, 'the mean stays within the declared bounds');
  });

  it('answers a global count and a median without error or overflow', async () => {
    const r = await ask('SELECT count(*) AS n, count(DISTINCT unit_id) AS u, median(value) AS med FROM readings');
    assert.equal(r.rows.length, 1);
    const [n, u, med] = r.rows[0]!;
    assert.ok(Math.abs(Number(u) - 1001) < 60, `units ${u}`);
    assert.ok(Math.abs(Number(n) - 1002) < 60, `rows ${n}: the million-row unit counts at most twice`);
    assert.ok(med === null || (Number(med) >= 0 && Number(med) <= 100));
  });

  it('refuses a sum over a column without bounds instead of guessing', async () => {
    await assert.rejects(ask('SELECT sum(unit_id) FROM readings'), (e: { code?: string }) => e.code === 'OBLIGATION_VIOLATION');
  });
});
