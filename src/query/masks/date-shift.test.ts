/**
 * `{date_shift: N}` on a real query path: ada and ivan read patients.date_of_birth shifted
 * by a keyed number of days — one shift per principal and column, never 0, within ±N — in
 * every clause, so a predicate or a join on a true birth date finds the wrong patients;
 * intervals between rows are kept; DuckDB and PostgreSQL shift alike.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fixture } from '../../../test/helpers/workspace.ts';
import { cellText, demoWithMasks, truth, twoEngines, type TwoEngines } from '../../../test/support/mask-engines.ts';

const N = 30;
const DAY = 86_400_000;
const days = (a: string, b: string): number => Math.round((Date.parse(b) - Date.parse(a)) / DAY);
const plus = (d: string, n: number): string => new Date(Date.parse(d) + n * DAY).toISOString().slice(0, 10);

let f: Fixture;
let dob: Map<string, string>;

before(async () => {
  f = await demoWithMasks({ 'internal-analyst': { date_of_birth: { date_shift: N } }, 'insurer-patients': { date_of_birth: { date_shift: N } } });
  dob = new Map((await truth(f, 'SELECT CAST(patient_id AS VARCHAR), CAST(date_of_birth AS VARCHAR) FROM patients')).map(([id, d]) => [id!, d!]));
});
after(() => f.close());

/** The one shift a principal sees, checked to be the same for every row it reads. */
async function shiftSeenBy(who: 'ada' | 'ivan'): Promise<number> {
  const r = await f.query(who, 'SELECT patient_id, date_of_birth FROM patients');
  assert.ok(r.rows.length > 0);
  const shifts = new Set(r.rows.map(([id, d]) => days(dob.get(cellText(id)!)!, cellText(d)!)));
  assert.equal(shifts.size, 1, `${who} sees one shift for the whole column`);
  return [...shifts][0]!;
}

describe('the date_shift mask', () => {
  test('SELECT shows every date moved by one non-zero shift within ±N days, so intervals between rows are exact', async () => {
    const s = await shiftSeenBy('ada');
    assert.ok(s !== 0 && Math.abs(s) <= N, `shift ${s}`);
    const r = await f.query('ada', 'SELECT patient_id, date_of_birth FROM patients');
    assert.ok(r.governance.obligationsApplied.includes(`mask:patients.date_of_birth=date_shift(${N})`));
    const [a, b] = r.rows;
    assert.equal(days(cellText(a![1])!, cellText(b![1])!), days(dob.get(cellText(a![0])!)!, dob.get(cellText(b![0])!)!));
  });

  test('two principals see the same column shifted differently, and each sees the same shift on every request', async () => {
    const [ada, ivan] = [await shiftSeenBy('ada'), await shiftSeenBy('ivan')];
    assert.notEqual(ada, ivan);
    assert.equal(await shiftSeenBy('ada'), ada);
  });

  test('WHERE and a JOIN on a true birth date find the patients whose shifted date it is, not the patient born then', async () => {
    const s = await shiftSeenBy('ada');
    const [id, born] = [...dob][0]!;
    const expected = [...dob].filter(([, d]) => plus(d, s) === born).map(([i]) => i).sort();
    const where = await f.query('ada', `SELECT patient_id FROM patients WHERE date_of_birth = DATE '${born}' ORDER BY patient_id`);
    assert.deepEqual(where.rows.map(([i]) => cellText(i)), expected);
    const joined = await f.query('ada', `SELECT p.patient_id FROM patients p JOIN (SELECT DATE '${born}' AS d) g ON p.date_of_birth = g.d ORDER BY p.patient_id`);
    assert.deepEqual(joined.rows.map(([i]) => cellText(i)), expected);
    const own = await f.query('ada', `SELECT count(*) AS n FROM patients WHERE date_of_birth = DATE '${born}' AND patient_id = ${id}`);
    assert.equal(Number(own.rows[0]![0]), 0, 'the patient\'s own true birth date does not match their row');
  });

  test('GROUP BY and ORDER BY see only shifted dates', async () => {
    const s = await shiftSeenBy('ada');
    const r = await f.query('ada', 'SELECT date_of_birth, count(*) AS n FROM patients GROUP BY date_of_birth ORDER BY date_of_birth LIMIT 5');
    const counts = new Map<string, number>();
    for (const d of dob.values()) counts.set(plus(d, s), (counts.get(plus(d, s)) ?? 0) + 1);
    const expected = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).slice(0, 5);
    assert.deepEqual(r.rows.map(([d, n]) => [cellText(d), Number(n)]), expected);
  });

  describe('on DuckDB and PostgreSQL', () => {
    let engines: TwoEngines;
    before(async () => { engines = await twoEngines(); });
    after(() => engines.close());

    test('both engines shift dates and timestamps by the same keyed offset, and NULL stays NULL', async () => {
      const scope = { principal: 'ada', dataset: 'patients', column: 'date_of_birth' };
      const d = await engines.masked({ date_shift: N }, 'DATE', ["DATE '2024-02-29'", "DATE '1970-01-01'", 'NULL'], scope);
      assert.deepEqual(d.postgres, d.duckdb);
      const s = days('2024-02-29', d.duckdb[0]!);
      assert.ok(s !== 0 && Math.abs(s) <= N);
      assert.equal(d.duckdb[1], plus('1970-01-01', s));
      assert.equal(d.duckdb[2], null);
      const t = await engines.masked({ date_shift: N }, 'TIMESTAMP', ["TIMESTAMP '2024-02-29 10:11:12'"], scope);
      assert.equal(t.duckdb[0], `${plus('2024-02-29', s)} 10:11:12`);
      assert.equal(t.postgres[0], t.duckdb[0]);
    });

    test('the shift depends on the principal and on the column', async () => {
      const at = async (principal: string, column: string): Promise<string | null> =>
        (await engines.masked({ date_shift: 3650 }, 'DATE', ["DATE '2000-01-01'"], { principal, dataset: 'patients', column })).duckdb[0]!;
      const base = await at('ada', 'date_of_birth');
      assert.notEqual(await at('ivan', 'date_of_birth'), base);
      assert.notEqual(await at('ada', 'admitted_on'), base);
    });
  });
});
