/**
 * `initials` on a real query path: ada (internal analyst, whose obligation otherwise shows
 * names in clear) reads patients.name as initials in every clause, so no predicate, join,
 * grouping or ordering can recover a full name; DuckDB and PostgreSQL agree on the value.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fixture } from '../../../test/helpers/workspace.ts';
import { cellText, demoWithMasks, truth, twoEngines, type TwoEngines } from '../../../test/support/mask-engines.ts';

/** The mask's meaning, written independently of its SQL. */
function initialsOf(name: string): string {
  return name.split(/\s+/).filter((w) => w.length > 0).map((w) => `${[...w][0]!.toUpperCase()}.`).join(' ');
}

let f: Fixture;
let names: Map<string, string>;

before(async () => {
  f = await demoWithMasks({ 'internal-analyst': { name: 'initials' } });
  names = new Map((await truth(f, 'SELECT CAST(patient_id AS VARCHAR), name FROM patients')).map(([id, n]) => [id!, n!]));
});
after(() => f.close());

describe('the initials mask', () => {
  test('SELECT returns each name as its initials, never the name', async () => {
    const r = await f.query('ada', 'SELECT patient_id, name FROM patients');
    assert.equal(r.rows.length, names.size);
    for (const [id, name] of r.rows) {
      const raw = names.get(cellText(id)!)!;
      assert.equal(name, initialsOf(raw));
      assert.notEqual(name, raw);
    }
    assert.ok(r.governance.obligationsApplied.includes('mask:patients.name=initials'));
  });

  test('WHERE and LIKE compare the initials: a full name matches nothing, its initials match every such patient', async () => {
    const raw = [...names.values()][0]!;
    const probe = await f.query('ada', `SELECT count(*) AS n FROM patients WHERE name = '${raw.replace(/'/g, "''")}'`);
    assert.equal(Number(probe.rows[0]![0]), 0);
    const prefix = await f.query('ada', `SELECT count(*) AS n FROM patients WHERE name LIKE '${raw.slice(0, 3).replace(/'/g, "''")}%'`);
    assert.equal(Number(prefix.rows[0]![0]), 0, 'a prefix of the name cannot be probed');
    const same = [...names.values()].filter((n) => initialsOf(n) === initialsOf(raw)).length;
    const hit = await f.query('ada', `SELECT count(*) AS n FROM patients WHERE name = '${initialsOf(raw)}'`);
    assert.equal(Number(hit.rows[0]![0]), same);
  });

  test('GROUP BY and ORDER BY see only initials', async () => {
    const r = await f.query('ada', 'SELECT name, count(*) AS n FROM patients GROUP BY name ORDER BY name');
    const expected = new Map<string, number>();
    for (const n of names.values()) expected.set(initialsOf(n), (expected.get(initialsOf(n)) ?? 0) + 1);
    assert.deepEqual(r.rows.map(([k, n]) => [k, Number(n)]), [...expected].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  test('a JOIN on the name cannot match the full name, in a subquery or a CTE', async () => {
    const raw = [...names.values()][1]!.replace(/'/g, "''");
    const joined = await f.query('ada', `SELECT count(*) AS n FROM patients p JOIN (SELECT '${raw}' AS guess) g ON p.name = g.guess`);
    assert.equal(Number(joined.rows[0]![0]), 0);
    const cte = await f.query('ada', `WITH c AS (SELECT name FROM patients) SELECT count(*) AS n FROM c WHERE name = '${raw}'`);
    assert.equal(Number(cte.rows[0]![0]), 0);
  });

  describe('on DuckDB and PostgreSQL', () => {
    let engines: TwoEngines;
    before(async () => { engines = await twoEngines(); });
    after(() => engines.close());

    test('both engines give the same initials, NULL for NULL and an empty string for a blank name', async () => {
      const inputs = ["'Ada Lovelace'", "'  grace   brewster murray hopper '", "'Hopper'", "''", "'   '", 'NULL', "'Jean-Luc Picard'", "'o''brien  x'"];
      const r = await engines.masked('initials', 'VARCHAR', inputs);
      assert.deepEqual(r.duckdb, ['A. L.', 'G. B. M. H.', 'H.', '', '', null, 'J. P.', 'O. X.']);
      assert.deepEqual(r.postgres, r.duckdb);
    });
  });
});
