import { test } from 'node:test';
import assert from 'node:assert/strict';
import { protectAggregate, type AggregateResult } from './aggregate.ts';
import { protectOneWay, protectTwoWay } from './tables.ts';
import { recoverable } from './recover.ts';
import { SdcInputInvalid } from './errors.ts';
import type { Measure, PublishedCell, PublishedOneWay } from './types.ts';

const M: Measure[] = [{ name: 'n', kind: 'count' }, { name: 'cost', kind: 'sum' }];

test('a one-key result is protected as a one-way table, with its ROLLUP total found by grouping()', () => {
  const r = protectAggregate({
    columns: ['region', 'n', 'cost', 'avg_cost'],
    rows: [['north', 30, 300, 10], ['south', 4, 80, 20], ['east', 12, 60, 5], ['west', 50, 500, 10], [null, 96, 940, 9.79]],
    unitCounts: [30, 4, 12, 50, 96],
    groupKeys: ['region'],
    measures: M,
    grouping: [0, 0, 0, 0, 1],
  });
  assert.equal(r.shape, 'one-way');
  assert.equal(r.totalsPresent, true);
  assert.equal(r.secondary, 'applied');
  assert.deepEqual(r.suppressedPrimary, [1]);
  assert.deepEqual(r.suppressedSecondary, [2]);
  // Keys stay, every other column of a withheld row (the average too) is NULL.
  assert.deepEqual(r.rows[1], ['south', null, null, null]);
  assert.deepEqual(r.rows[2], ['east', null, null, null]);
  assert.deepEqual(r.rows[4], [null, 96, 940, 9.79]);
  assert.deepEqual(r.suppressed, [null, 'primary', 'secondary', null, null]);
});

test('a two-key CUBE result is protected as a two-way table with all its margins', () => {
  // sex × band; the small cell (F, old) must not be recoverable from any margin.
  const cells: [string, string, number][] = [['F', 'young', 40], ['F', 'old', 3], ['M', 'young', 35], ['M', 'old', 22]];
  const rows: (string | number | null)[][] = cells.map(([s, b, n]) => [s, b, n, n * 10]);
  const units = cells.map((c) => c[2]);
  rows.push(['F', null, 43, 430], ['M', null, 57, 570], [null, 'young', 75, 750], [null, 'old', 25, 250], [null, null, 100, 1000]);
  units.push(43, 57, 75, 25, 100);
  const r = protectAggregate({ columns: ['sex', 'band', 'n', 'cost'], rows, unitCounts: units, groupKeys: ['sex', 'band'], measures: M, nullKeysAreTotals: true });
  assert.equal(r.shape, 'two-way');
  assert.deepEqual(r.suppressedPrimary, [1]);
  // In a 2×2 table every cell has to go; the margins stay.
  assert.deepEqual(r.suppressedSecondary, [0, 2, 3]);
  assert.deepEqual(r.rows.slice(4).map((x) => x[2]), [43, 57, 75, 25, 100]);
});

test('a total published elsewhere constrains the attacker model but is not output', () => {
  const base: AggregateResult = {
    columns: ['region', 'n'], rows: [['a', 4], ['b', 20], ['c', 30], [null, 54]], unitCounts: [4, 20, 30, 54],
    groupKeys: ['region'], measures: [{ name: 'n', kind: 'count' }], grouping: [0, 0, 0, 1], publishedElsewhere: [3],
  };
  const r = protectAggregate(base, { margins: 'published-only' });
  assert.equal(r.rows.length, 3);
  assert.deepEqual(r.suppressedSecondary, [1]);
});

test('a scalar aggregate gets primary suppression only; three keys get primary only and say so', () => {
  const s = protectAggregate({ columns: ['n'], rows: [[5]], unitCounts: [5], groupKeys: [], measures: [{ name: 'n', kind: 'count' }] });
  assert.equal(s.shape, 'scalar');
  assert.equal(s.secondary, 'not-needed');
  assert.deepEqual(s.rows, [[null]]);
  const m = protectAggregate({
    columns: ['a', 'b', 'c', 'n'], rows: [['x', 'y', 'z', 3], ['x', 'y', 'w', 30]], unitCounts: [3, 30],
    groupKeys: ['a', 'b', 'c'], measures: [{ name: 'n', kind: 'count' }],
  });
  assert.equal(m.shape, 'multi-way');
  assert.equal(m.secondary, 'not-applied');
  assert.deepEqual(m.suppressedPrimary, [0]);
  assert.deepEqual(m.suppressedSecondary, []);
});

test('rounding is applied to count columns of the flat result', () => {
  const r = protectAggregate(
    { columns: ['g', 'n', 'cost'], rows: [['a', 18, 1.5], ['b', 23, 2.5]], unitCounts: [18, 23], groupKeys: ['g'], measures: M },
    { rounding: 'midpoint6' },
  );
  assert.deepEqual(r.rows, [['a', 15, 1.5], ['b', 21, 2.5]]); // 13–18 → 15, 19–24 → 21
  assert.equal(r.rounding, 'midpoint6');
});

test('hostile flat inputs are refused: missing unit counts, NaN, duplicates, bad grouping, unknown columns', () => {
  const ok: AggregateResult = { columns: ['g', 'n'], rows: [['a', 10], ['b', 20]], unitCounts: [10, 20], groupKeys: ['g'], measures: [{ name: 'n', kind: 'count' }] };
  assert.doesNotThrow(() => protectAggregate(ok));
  const bad: Partial<AggregateResult>[] = [
    { unitCounts: [10] },
    { unitCounts: [10, undefined] },
    { unitCounts: [10, Number.NaN] },
    { unitCounts: [10, -20] },
    { rows: [['a', 10], ['b', Number.NaN]] },
    { rows: [['a', 10], ['b', -20]] },
    { rows: [['a', 10], ['a', 20]] },
    { rows: [['a', 10], ['b']] },
    { grouping: [0, 2] },
    { grouping: [0, 1], nullKeysAreTotals: true },
    { groupKeys: ['nope'] },
    { groupKeys: ['n'] },
    { publishedElsewhere: [0] },
  ];
  for (const b of bad) assert.throws(() => protectAggregate({ ...ok, ...b }), SdcInputInvalid, JSON.stringify(b));
  assert.throws(() => protectAggregate(null as unknown as AggregateResult), SdcInputInvalid);
});

// ---- Differencing between publications: what is and is not covered ----

const COUNT: Measure[] = [{ name: 'n', kind: 'count' }];
const c = (n: number) => ({ units: n, values: [n] });
const shown = (n: number): PublishedCell => ({ values: [n], suppressed: null });

test('covered: a table published without its total, then the total queried separately, reveals nothing', () => {
  const first = protectOneWay({ measures: COUNT, cells: [c(5), c(40), c(25), c(60)] });
  const later = protectAggregate({ columns: ['n'], rows: [[130]], unitCounts: [130], groupKeys: [], measures: COUNT });
  assert.deepEqual(recoverable({ ...first.table, total: shown(later.rows[0]![0] as number) }), []);
});

test('covered: the same table published twice gets the same suppression pattern, so the union adds nothing', () => {
  const t = { measures: COUNT, cells: [c(5), c(40), c(25), c(60)], total: c(130) };
  assert.deepEqual(protectOneWay(t), protectOneWay(t));
});

test('not covered: the same table re-run after the data changed; the two totals differ by one patient', () => {
  // OpenSAFELY's "repeated analyses" case: each release is safe alone, the pair says one patient joined.
  const v1 = protectOneWay({ measures: COUNT, cells: [c(5), c(20), c(30)], total: c(55) });
  const v2 = protectOneWay({ measures: COUNT, cells: [c(5), c(21), c(30)], total: c(56) });
  assert.deepEqual(recoverable(v1.table), []);
  assert.deepEqual(recoverable(v2.table), []);
  assert.equal((v2.table.total!.values[0] as number) - (v1.table.total!.values[0] as number), 1);
  // Rounding every release to 5 hides the small change here (55 and 56 both publish 55).
  const r1 = protectOneWay({ measures: COUNT, cells: [c(5), c(20), c(30)], total: c(55) }, { rounding: 'nearest5' });
  const r2 = protectOneWay({ measures: COUNT, cells: [c(5), c(21), c(30)], total: c(56) }, { rounding: 'nearest5' });
  assert.deepEqual(r1.table, r2.table);
});

test('not covered: two overlapping tables (all patients vs all but one practice) difference to a small group', () => {
  // Table A: counts by band over everyone. Table B: the same excluding practice P, which has 3 patients, all "old".
  // Each is protected on its own, yet A.old − B.old = 3. SDC sees one table; the tracker detector must catch this.
  const a = protectOneWay({ measures: COUNT, cells: [c(40), c(33)], total: c(73) });
  const b = protectOneWay({ measures: COUNT, cells: [c(40), c(30)], total: c(70) });
  assert.deepEqual(a.suppressedPrimary, []);
  assert.deepEqual(b.suppressedPrimary, []);
  const difference = (a.table.cells[1]!.values[0] as number) - (b.table.cells[1]!.values[0] as number);
  assert.equal(difference, 3);
  // Rounding to 5 blurs it (35 − 30 = 5: the attacker learns only 0 … 9), which is why OpenSAFELY rounds everything.
  const ar = protectOneWay({ measures: COUNT, cells: [c(40), c(33)], total: c(73) }, { rounding: 'nearest5' });
  const br = protectOneWay({ measures: COUNT, cells: [c(40), c(30)], total: c(70) }, { rounding: 'nearest5' });
  assert.equal((ar.table.cells[1]!.values[0] as number) - (br.table.cells[1]!.values[0] as number), 5);
});

test('two-way tables published with and without margins get patterns the attacker cannot combine', () => {
  const cells = [[c(3), c(20), c(30)], [c(15), c(25), c(40)], [c(12), c(9), c(60)]];
  const bare = protectTwoWay({ measures: COUNT, cells });
  const withMargins = protectTwoWay({ measures: COUNT, cells, rowTotals: [c(53), c(80), c(81)], columnTotals: [c(30), c(54), c(130)], grandTotal: c(214) });
  assert.deepEqual(bare.suppressedSecondary, withMargins.suppressedSecondary, 'assume-known margins make the pattern independent of whether margins are shown');
});
