import { test } from 'node:test';
import assert from 'node:assert/strict';
import { protectOneWay, protectTwoWay } from './tables.ts';
import { recoverable } from './recover.ts';
import { SdcUnprotectable } from './errors.ts';
import type { Cell, Measure, PublishedCell, PublishedOneWay, PublishedTwoWay, SdcOptions, TwoWayTable } from './types.ts';

const COUNT: Measure[] = [{ name: 'n', kind: 'count' }];
const c = (n: number): Cell => ({ units: n, values: [n] });
const shown = (n: number): PublishedCell => ({ values: [n], suppressed: null });
const hidden: PublishedCell = { values: [null], suppressed: 'primary' };

/** A two-way table of counts (units = counts) with all margins. */
function grid(rows: (number | null)[][]): TwoWayTable {
  const cells = rows.map((r) => r.map((x) => (x === null ? null : c(x))));
  const C = rows[0]!.length;
  const sum = (xs: (number | null)[]) => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
  const rowSums = rows.map(sum);
  const colSums = Array.from({ length: C }, (_, j) => sum(rows.map((r) => r[j]!)));
  return { measures: COUNT, cells, rowTotals: rowSums.map(c), columnTotals: colSums.map(c), grandTotal: c(sum(rowSums)) };
}

/** What an attacker holds when every margin can be queried: the published table plus each true margin that would itself be published. */
function withQueriedMargins(table: TwoWayTable, pub: PublishedTwoWay, threshold = 8): PublishedTwoWay {
  const margin = (given: PublishedCell | null | undefined, cells: (Cell | null)[]): PublishedCell | null => {
    if (given) return given;
    const present = cells.filter((x): x is Cell => x !== null);
    const units = present.reduce((a, x) => a + x.units, 0);
    return units >= threshold || units === 0 ? { values: table.measures.map((_, m) => present.reduce((a, x) => a + x.values[m]!, 0)), suppressed: null } : hidden;
  };
  const R = table.cells.length;
  const C = table.cells[0]!.length;
  return {
    ...pub,
    rowTotals: table.cells.map((row, r) => margin(pub.rowTotals?.[r], [...row])),
    columnTotals: Array.from({ length: C }, (_, j) => margin(pub.columnTotals?.[j], table.cells.map((row) => row[j]!))),
    grandTotal: margin(pub.grandTotal, table.cells.flat().slice(0, R * C)),
  };
}

test('one-way: a single suppressed cell is recovered by subtracting the visible cells from the total', () => {
  // 4 + 20 + 30 = 54; publishing 20, 30 and 54 gives 4 away.
  const naive: PublishedOneWay = { measures: COUNT, cells: [hidden, shown(20), shown(30)], total: shown(54) };
  const found = recoverable(naive);
  assert.deepEqual(found, [{ cell: 0, suppressed: 'primary', values: [4] }]);
});

test('one-way: secondary suppression hides the next-smallest cell and the attacker then recovers nothing', () => {
  const r = protectOneWay({ measures: COUNT, cells: [c(30), c(4), c(20), c(0), c(12)], total: c(66) });
  assert.deepEqual(r.suppressedPrimary, [1]);
  assert.deepEqual(r.suppressedSecondary, [4]); // 12: the smallest non-zero visible cell, not the zero
  assert.deepEqual(recoverable(r.table), []);
  assert.deepEqual(r.table.total, shown(66));
});

test('one-way: two primary cells already protect each other; nothing more is hidden', () => {
  const r = protectOneWay({ measures: COUNT, cells: [c(5), c(40), c(3), c(90)], total: c(138) });
  assert.deepEqual(r.suppressedPrimary, [0, 2]);
  assert.deepEqual(r.suppressedSecondary, []);
  assert.deepEqual(recoverable(r.table), []);
});

test('one-way without a total: the total is assumed obtainable by another query, so a complement is still hidden', () => {
  const table = { measures: COUNT, cells: [c(4), c(20), c(30)] };
  const r = protectOneWay(table);
  assert.deepEqual(r.suppressedSecondary, [1]);
  // The attacker later runs SELECT count(*) (54 units, so it is published) and subtracts.
  assert.deepEqual(recoverable({ ...r.table, total: shown(54) }), []);
  // With published-only margins nothing more is hidden, and that later total query recovers the cell.
  const p = protectOneWay(table, { margins: 'published-only' });
  assert.deepEqual(p.suppressedSecondary, []);
  assert.deepEqual(recoverable({ ...p.table, total: shown(54) }).map((x) => x.values), [[4]]);
});

test('one-way: a line covering fewer units than the threshold needs no complement, its total would be suppressed too', () => {
  const r = protectOneWay({ measures: COUNT, cells: [c(3), c(2)] });
  assert.deepEqual(r.suppressedPrimary, [0, 1]);
  const single = protectOneWay({ measures: COUNT, cells: [c(5)] });
  assert.deepEqual(single.suppressedSecondary, []);
});

test('one-way: a suppressed cell whose line total is already public and has no other cell to hide is refused', () => {
  assert.throws(
    () => protectOneWay({ measures: COUNT, cells: [c(5), c(0), c(0)], total: { ...c(5), publishedElsewhere: true } }),
    (e: unknown) => e instanceof SdcUnprotectable && e.detail === 'SDC_UNPROTECTABLE',
  );
});

test('every measure of a cell is recovered, and a NULL in the line hides only that measure', () => {
  const measures: Measure[] = [{ name: 'n', kind: 'count' }, { name: 'cost', kind: 'sum' }];
  const naive: PublishedOneWay = {
    measures,
    cells: [{ values: [null, null], suppressed: 'primary' }, { values: [20, null], suppressed: null }, { values: [30, 45.5], suppressed: null }],
    total: { values: [54, 60], suppressed: null },
  };
  assert.deepEqual(recoverable(naive), [{ cell: 0, suppressed: 'primary', values: [4, null] }]);
});

test('two-way: one suppressed cell is recovered from its row total and from its column total', () => {
  const t = grid([[3, 20, 30], [15, 25, 40], [12, 9, 60]]);
  const r = protectTwoWay(t);
  assert.deepEqual(r.suppressedPrimary, [[0, 0]]);
  // Publish with only the primary suppression: the attacker subtracts.
  const naive: PublishedTwoWay = {
    ...r.table,
    cells: t.cells.map((row, i) => row.map((x, j) => (i === 0 && j === 0 ? hidden : shown(x!.values[0]!)))),
  };
  assert.deepEqual(recoverable(naive), [{ cell: [0, 0], suppressed: 'primary', values: [3] }]);
  // After secondary suppression: at least a rectangle is hidden and nothing is recoverable.
  assert.ok(r.suppressedSecondary.length >= 3);
  assert.deepEqual(recoverable(r.table), []);
});

test('two-way: the heuristic takes the smallest complements, closing a rectangle', () => {
  const r = protectTwoWay(grid([[3, 20, 30], [15, 25, 40], [12, 9, 60]]));
  // Row 0 -> 20 (smallest), column 0 -> 12, then row 2 / column 1 meet at 9.
  assert.deepEqual(r.suppressedSecondary, [[0, 1], [2, 0], [2, 1]]);
});

test('two-way: recovery chains across lines, and secondary suppression stops the chain', () => {
  // Hidden: (0,0), (0,1), (1,1). Column 0 has one hidden cell -> (0,0); then row 0 -> (0,1); then column 1 -> (1,1).
  const t = grid([[2, 5, 40], [30, 6, 50], [20, 25, 60]]);
  const truth = t.cells.map((row) => row.map((x) => x!.values[0]!));
  const naive: PublishedTwoWay = {
    measures: COUNT,
    cells: truth.map((row, i) => row.map((x, j) => ((i === 0 && j < 2) || (i === 1 && j === 1) ? hidden : shown(x)))),
    rowTotals: t.rowTotals!.map((x) => shown(x!.values[0]!)),
    columnTotals: t.columnTotals!.map((x) => shown(x!.values[0]!)),
    grandTotal: shown(t.grandTotal!.values[0]!),
  };
  // Rows 0 and 1 each have two hidden cells, so a row-by-row check alone would pass row 0.
  const found = recoverable(naive);
  assert.deepEqual(found.map((f) => [f.cell, f.values[0]]), [[[0, 0], 2], [[0, 1], 5], [[1, 1], 6]]);
  const r = protectTwoWay(t);
  assert.deepEqual(r.suppressedPrimary, [[0, 0], [0, 1], [1, 1]]);
  assert.ok(r.suppressedSecondary.length > 0);
  assert.deepEqual(recoverable(r.table), []);
});

test('two-way: a cell bridging two protected blocks is pinned by the margins though every line has two hidden cells', () => {
  // Two 2×2 blocks of small cells joined by one small cell at (1,2): every row and column with a
  // suppressed cell has at least two, yet (1,2) = (rows 0–1 totals) − (columns 0–1 totals) − visible cells.
  const small = new Set(['0,0', '0,1', '1,0', '1,1', '2,2', '2,3', '3,2', '3,3', '1,2']);
  const rows = Array.from({ length: 5 }, (_, i) => Array.from({ length: 5 }, (_, j) => (small.has(`${i},${j}`) ? 2 + ((i + j) % 5) : 20 + 7 * i + 3 * j)));
  const t = grid(rows);
  const naive: PublishedTwoWay = {
    measures: COUNT,
    cells: rows.map((row, i) => row.map((x, j) => (small.has(`${i},${j}`) ? hidden : shown(x)))),
    rowTotals: t.rowTotals!.map((x) => shown(x!.values[0]!)),
    columnTotals: t.columnTotals!.map((x) => shown(x!.values[0]!)),
    grandTotal: shown(t.grandTotal!.values[0]!),
  };
  assert.deepEqual(recoverable(naive).map((f) => [f.cell, f.values[0]]), [[[1, 2], rows[1]![2]!]]);
  const r = protectTwoWay(t);
  assert.equal(r.suppressedPrimary.length, 9);
  assert.ok(r.suppressedSecondary.length >= 1, 'the line rule alone adds nothing here; the attacker check must');
  assert.deepEqual(recoverable(r.table), []);
});

test('two-way with published-only margins may hide a margin, and the attacker still recovers nothing', () => {
  // Row 0's only other cell is empty, so its total is the complement (or the table hides more).
  const t = grid([[4, null, 30], [12, 40, 50], [20, 30, 60]]);
  const r = protectTwoWay(t, { margins: 'published-only' });
  assert.deepEqual(recoverable(r.table), []);
  const a = protectTwoWay(t);
  assert.deepEqual(recoverable(withQueriedMargins(t, a.table)), []);
});

test('an absent group is a known zero: never hidden, never protection; a table its queryable margins expose is refused', () => {
  // Column 1 holds only 40, so its total is 40; then row 1's total gives 30, then column 0's gives the 4.
  const t = grid([[4, null], [30, 40]]);
  const bare: TwoWayTable = { measures: COUNT, cells: t.cells };
  // Without margins in the table, assume-known says each can be queried: no pattern of this table helps.
  assert.throws(() => protectTwoWay(bare), SdcUnprotectable);
  // With the margins in the table they can be hidden too, and the cell is protected (at a heavy cost).
  for (const options of [{}, { margins: 'published-only' as const }]) {
    const r = protectTwoWay(t, options);
    assert.equal(r.table.cells[0]![1], null);
    assert.deepEqual(recoverable(r.table), []);
  }
  // published-only without margins: the attacker has no total to subtract from.
  assert.deepEqual(protectTwoWay(bare, { margins: 'published-only' }).suppressedSecondary, []);
});

// A small deterministic PRNG (tests must be reproducible; nothing here is a privacy mechanism).
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

test('on 400 random one- and two-way tables, no suppressed cell is recoverable after protection', () => {
  const rnd = lcg(20240607);
  const size = () => {
    const u = rnd();
    return u < 0.25 ? 1 + Math.floor(rnd() * 7) : u < 0.3 ? 0 : 8 + Math.floor(rnd() * 80);
  };
  let refused = 0;
  for (let k = 0; k < 400; k++) {
    const options: SdcOptions = { margins: k % 2 === 0 ? 'assume-known' : 'published-only', threshold: 8 };
    if (k % 4 < 2) {
      const cells = Array.from({ length: 1 + Math.floor(rnd() * 7) }, () => c(size()));
      const withTotal = rnd() < 0.5;
      const total = cells.reduce((a, x) => a + x.units, 0);
      const r = protectOneWay({ measures: COUNT, cells, total: withTotal ? c(total) : null }, options);
      const attacker = options.margins === 'assume-known' && total >= 8 ? { ...r.table, total: r.table.total ?? shown(total) } : r.table;
      assert.deepEqual(recoverable(attacker), [], `one-way #${k}`);
      r.table.cells.forEach((p, i) => assert.ok(p.suppressed !== null || cells[i]!.units >= 8 || cells[i]!.units === 0, `one-way #${k} cell ${i}`));
    } else {
      const R = 1 + Math.floor(rnd() * 6);
      const C = 1 + Math.floor(rnd() * 6);
      const rows = Array.from({ length: R }, () => Array.from({ length: C }, () => (rnd() < 0.1 ? null : size())));
      const full = grid(rows);
      const margins = rnd();
      const t: TwoWayTable = margins < 0.5 ? full : { measures: COUNT, cells: full.cells, rowTotals: margins < 0.75 ? full.rowTotals : null };
      let r;
      try {
        r = protectTwoWay(t, options);
      } catch (e) {
        // A refusal must be justified: even with every non-empty cell hidden, some small cell is determined.
        assert.ok(e instanceof SdcUnprotectable && options.margins === 'assume-known', `two-way #${k}`);
        const allHidden: PublishedTwoWay = {
          measures: COUNT, rowTotals: null, columnTotals: null, grandTotal: null,
          cells: full.cells.map((row) => row.map((x) => (x === null ? null : x.units > 0 ? hidden : shown(0)))),
        };
        const units = (i: number | 'total', j: number | 'total'): number => rows.reduce((a, row, r) =>
          a + row.reduce<number>((b, x, c) => b + ((i === 'total' || i === r) && (j === 'total' || j === c) ? x ?? 0 : 0), 0), 0);
        const exposed = recoverable(withQueriedMargins(full, allHidden)).filter((f) => units(f.cell[0], f.cell[1]) < 8);
        assert.ok(exposed.length > 0, `two-way #${k}: refused although hiding every cell would protect it`);
        refused++;
        continue;
      }
      const attacker = options.margins === 'assume-known' ? withQueriedMargins(full, r.table) : r.table;
      assert.deepEqual(recoverable(attacker), [], `two-way #${k}`);
      r.table.cells.forEach((row, i) => row.forEach((p, j) => {
        const u = rows[i]![j];
        assert.ok(p === null || p.suppressed !== null || u === 0 || (u ?? 0) >= 8, `two-way #${k} cell ${i},${j}`);
      }));
      assert.deepEqual(protectTwoWay(t, options), r, `two-way #${k} is deterministic`);
    }
  }
  assert.ok(refused < 40, `${refused} refusals`);
});
