import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_THRESHOLD, isPrimarySuppressed, resolveOptions } from './suppress.ts';
import { protectOneWay, protectTwoWay } from './tables.ts';
import { SdcInputInvalid } from './errors.ts';
import type { Measure } from './types.ts';

const COUNT: Measure[] = [{ name: 'n', kind: 'count' }];
const cell = (units: number, n = units) => ({ units, values: [n] });

test('the default threshold suppresses 7 or fewer distinct units and publishes 8 (OpenSAFELY ≤ 7)', () => {
  assert.equal(DEFAULT_THRESHOLD, 8);
  const o = resolveOptions();
  assert.equal(isPrimarySuppressed(cell(7), o), true);
  assert.equal(isPrimarySuppressed(cell(1), o), true);
  assert.equal(isPrimarySuppressed(cell(8), o), false);
});

test('the threshold counts distinct privacy units, not rows: one patient with 40 rows is suppressed', () => {
  assert.equal(isPrimarySuppressed({ units: 1, values: [40] }, resolveOptions()), true);
  assert.equal(isPrimarySuppressed({ units: 9, values: [9] }, resolveOptions({ threshold: 10 })), true);
  assert.equal(isPrimarySuppressed({ units: 10, values: [3] }, resolveOptions({ threshold: 10 })), false);
});

test('a zero cell is published as zero by default and withheld with zeros: suppress', () => {
  assert.equal(isPrimarySuppressed({ units: 0, values: [0] }, resolveOptions()), false);
  assert.equal(isPrimarySuppressed({ units: 0, values: [null] }, resolveOptions()), false);
  assert.equal(isPrimarySuppressed({ units: 0, values: [0] }, resolveOptions({ zeros: 'suppress' })), true);
});

test('a cell with rows but no privacy unit (NULL units) is always suppressed', () => {
  assert.equal(isPrimarySuppressed({ units: 0, values: [5] }, resolveOptions()), true);
});

test('a suppressed cell has every measure withheld and is reported as primary', () => {
  const r = protectOneWay({ measures: [{ name: 'n', kind: 'count' }, { name: 'cost', kind: 'sum' }], cells: [{ units: 3, values: [3, 120.5] }, { units: 50, values: [50, 900] }] });
  assert.deepEqual(r.table.cells[0], { values: [null, null], suppressed: 'primary' });
  assert.deepEqual(r.suppressedPrimary, [0]);
});

test('hostile inputs are refused rather than published: missing, negative, fractional or NaN unit counts', () => {
  for (const units of [undefined, null, -1, 2.5, Number.NaN, Infinity, '9', 2 ** 53]) {
    assert.throws(() => protectOneWay({ measures: COUNT, cells: [{ units: units as number, values: [10] }, cell(20)] }), SdcInputInvalid, String(units));
  }
});

test('hostile inputs are refused: negative or fractional counts, NaN or infinite sums, wrong arity', () => {
  const sums: Measure[] = [{ name: 's', kind: 'sum' }];
  assert.throws(() => protectOneWay({ measures: COUNT, cells: [{ units: 10, values: [-3] }] }), SdcInputInvalid);
  assert.throws(() => protectOneWay({ measures: COUNT, cells: [{ units: 10, values: [3.5] }] }), SdcInputInvalid);
  assert.throws(() => protectOneWay({ measures: sums, cells: [{ units: 10, values: [Number.NaN] }] }), SdcInputInvalid);
  assert.throws(() => protectOneWay({ measures: sums, cells: [{ units: 10, values: [-Infinity] }] }), SdcInputInvalid);
  assert.throws(() => protectOneWay({ measures: sums, cells: [{ units: 10, values: ['12' as unknown as number] }] }), SdcInputInvalid);
  assert.throws(() => protectOneWay({ measures: sums, cells: [{ units: 10, values: [] }] }), SdcInputInvalid);
  assert.throws(() => protectOneWay({ measures: COUNT, cells: [cell(10)] }, { threshold: 0 }), SdcInputInvalid);
  assert.throws(() => protectOneWay({ measures: COUNT, cells: [cell(10)] }, { rounding: 'nearest10' as 'none' }), SdcInputInvalid);
  assert.throws(() => protectTwoWay({ measures: COUNT, cells: [[cell(10), cell(10)], [cell(10)]] }), SdcInputInvalid);
});

test('negative sums are legitimate and pass through, as does −0 normalised to 0', () => {
  const r = protectOneWay({ measures: [{ name: 's', kind: 'sum' }], cells: [{ units: 20, values: [-12.5] }, { units: 30, values: [-0] }] });
  assert.deepEqual(r.table.cells.map((c) => c.values[0]), [-12.5, 0]);
  assert.ok(Object.is(r.table.cells[1]!.values[0], 0));
});

test('error messages name the cell and measure but never a value', () => {
  try {
    protectOneWay({ measures: [{ name: 'cost', kind: 'sum' }], cells: [{ units: 10, values: [1234567] }, { units: 10, values: [Number.NaN] }] });
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(e instanceof SdcInputInvalid);
    assert.equal(e.detail, 'SDC_INPUT_INVALID');
    assert.match(e.message, /cell 1, measure "cost"/);
    assert.doesNotMatch(e.message, /1234567|NaN/);
  }
});

test('rounding applies to published counts only, after suppression; sums are left exact', () => {
  const r = protectOneWay(
    { measures: [{ name: 'n', kind: 'count' }, { name: 's', kind: 'sum' }], cells: [{ units: 18, values: [18, 7.25] }, { units: 23, values: [23, 1] }, { units: 3, values: [3, 2] }, { units: 31, values: [31, 4] }] },
    { rounding: 'nearest5' },
  );
  // 3 is primary; 18, the smallest other cell, is its complement (the total can be queried).
  assert.deepEqual(r.table.cells.map((c) => c.values), [[null, null], [25, 1], [null, null], [30, 4]]);
  const m = protectOneWay({ measures: COUNT, cells: [cell(8), cell(13), cell(0), cell(100)], total: cell(121) }, { rounding: 'midpoint6' });
  assert.deepEqual(m.table.cells.map((c) => c.values[0]), [9, 15, 0, 99]);
  assert.deepEqual(m.table.total?.values, [123]);
});
