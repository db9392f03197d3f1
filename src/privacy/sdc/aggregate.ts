/**
 * The entry point the query pipeline calls: a flat aggregate result (columns and rows as
 * the engine returned them), the distinct-unit count of every row, and which columns are
 * group keys and which are additive measures. The shape decides the procedure:
 *
 * - no group key (a scalar aggregate): primary suppression; there is no line to subtract in.
 * - one group key: a one-way table, with its total if the result carries one.
 * - two group keys: a two-way table (first key = rows, second = columns) with whatever
 *   margins the result carries.
 * - three or more: primary suppression only, reported as `secondary: 'not-applied'`.
 *
 * Totals are identified by the caller, never guessed from the data: either `grouping`,
 * the SQL `GROUPING(k1, ..., kn)` bitmask of each row (the first key is the most
 * significant bit, as in SQL), or `nullKeysAreTotals` when NULL is never a real key value
 * (plain ROLLUP/CUBE output over non-null keys). Rows listed in `publishedElsewhere` are
 * totals the principal already has (e.g. released earlier): they constrain the attacker
 * model but are not part of the output.
 *
 * The result must be the whole result: a pipeline that has already dropped small groups
 * (e.g. with HAVING) makes an absent group ambiguous, and the two-way attacker model
 * assumes an absent group is an empty one.
 */
import type { CellValue } from '../../model/result.ts';
import { SdcInputInvalid } from './errors.ts';
import { oneWayModel, twoWayModel, type Node } from './model.ts';
import { protect } from './secondary.ts';
import { isPrimarySuppressed, resolveOptions, validateCell, validateMeasures, validateUnits } from './suppress.ts';
import { publishNode } from './tables.ts';
import type { Cell, Measure, Rounding, SdcOptions, Suppression, Total } from './types.ts';

export interface AggregateResult {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly CellValue[])[];
  /** Distinct privacy units behind each row, aligned with `rows`. */
  readonly unitCounts: readonly (number | null | undefined)[];
  readonly groupKeys: readonly string[];
  /** Additive measure columns (COUNT, SUM). Other non-key columns are withheld with their row. */
  readonly measures: readonly Measure[];
  /** Per row, SQL GROUPING(k1, ..., kn); 0 = an ordinary cell. */
  readonly grouping?: readonly number[];
  /** A NULL key marks a total over that key. */
  readonly nullKeysAreTotals?: boolean;
  /** Row indices of totals already public: attacker knowledge, dropped from the output. */
  readonly publishedElsewhere?: readonly number[];
}

export type TableShape = 'scalar' | 'one-way' | 'two-way' | 'multi-way';

export interface AggregateSdcResult {
  readonly columns: readonly string[];
  /** Output rows in input order, minus `publishedElsewhere`; withheld rows keep their keys, every other column NULL. */
  readonly rows: readonly (readonly CellValue[])[];
  /** Per output row. */
  readonly suppressed: readonly (Suppression | null)[];
  /** Output row indices. */
  readonly suppressedPrimary: readonly number[];
  readonly suppressedSecondary: readonly number[];
  readonly shape: TableShape;
  readonly totalsPresent: boolean;
  /** `not-needed`: a scalar has no line; `not-applied`: three or more group keys. */
  readonly secondary: 'applied' | 'not-needed' | 'not-applied';
  readonly threshold: number;
  readonly rounding: Rounding;
}

function keyOf(v: CellValue, where: string): string {
  try {
    return JSON.stringify(v) ?? 'undefined';
  } catch {
    throw new SdcInputInvalid(`${where}: a group key is not a plain value`);
  }
}

export function protectAggregate(result: AggregateResult, options?: SdcOptions): AggregateSdcResult {
  const opts = resolveOptions(options);
  const { columns, rows, unitCounts, groupKeys, measures } = result ?? ({} as AggregateResult);
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string')) throw new SdcInputInvalid('columns must be an array of names');
  if (!Array.isArray(rows)) throw new SdcInputInvalid('rows must be an array');
  if (!Array.isArray(unitCounts) || unitCounts.length !== rows.length) throw new SdcInputInvalid('unitCounts must have one entry per row');
  if (!Array.isArray(groupKeys)) throw new SdcInputInvalid('groupKeys must be an array');
  validateMeasures(measures);
  const col = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new SdcInputInvalid(`column "${name}" is not in the result`);
    return i;
  };
  const keyCols = groupKeys.map(col);
  const measureCols = measures.map((m) => col(m.name));
  if (new Set([...keyCols, ...measureCols]).size !== keyCols.length + measureCols.length) throw new SdcInputInvalid('a column is listed twice among group keys and measures');
  if (result.grouping && result.nullKeysAreTotals) throw new SdcInputInvalid('give grouping or nullKeysAreTotals, not both');
  if (result.grouping && (!Array.isArray(result.grouping) || result.grouping.length !== rows.length)) throw new SdcInputInvalid('grouping must have one entry per row');

  const n = keyCols.length;
  const masks = rows.map((row, i) => {
    if (!Array.isArray(row) || row.length !== columns.length) throw new SdcInputInvalid(`row ${i}: expected one value per column`);
    if (result.grouping) {
      const g = result.grouping[i];
      if (typeof g !== 'number' || !Number.isSafeInteger(g) || g < 0 || g >= 2 ** n) throw new SdcInputInvalid(`row ${i}: grouping is not a valid GROUPING() bitmask`);
      return g;
    }
    if (result.nullKeysAreTotals) return keyCols.reduce((m, c, k) => (row[c] === null ? m | (1 << (n - 1 - k)) : m), 0);
    return 0;
  });
  const elsewhere = new Set<number>();
  for (const i of result.publishedElsewhere ?? []) {
    if (!Number.isSafeInteger(i) || i < 0 || i >= rows.length || masks[i] === 0) throw new SdcInputInvalid('publishedElsewhere must list total rows');
    elsewhere.add(i);
  }
  const cells: Total[] = rows.map((row, i) => {
    const where = `row ${i}`;
    const cell: Cell = validateCell({ units: validateUnits(unitCounts[i], where), values: measureCols.map((c) => row[c] as number | null) }, measures, where);
    return elsewhere.has(i) ? { ...cell, publishedElsewhere: true } : cell;
  });

  // The model node of every input row, for its final state and values.
  const state: Node[] = new Array(rows.length);
  let shape: TableShape;
  let secondary: AggregateSdcResult['secondary'];
  if (n === 1 || n === 2) {
    secondary = 'applied';
    shape = n === 1 ? 'one-way' : 'two-way';
    if (n === 1) buildOneWay(rows, keyCols, masks, cells, measures, opts, state);
    else buildTwoWay(rows, keyCols, masks, cells, measures, opts, state);
  } else {
    shape = n === 0 ? 'scalar' : 'multi-way';
    secondary = n === 0 ? 'not-needed' : 'not-applied';
    cells.forEach((c, i) => {
      const primary = !c.publishedElsewhere && isPrimarySuppressed(c, opts);
      state[i] = { units: c.units, values: c.values, state: primary ? 'primary' : 'visible', suppressible: false, virtual: false };
    });
  }

  const outRows: CellValue[][] = [];
  const suppressed: (Suppression | null)[] = [];
  const suppressedPrimary: number[] = [];
  const suppressedSecondary: number[] = [];
  const keySet = new Set(keyCols);
  rows.forEach((row, i) => {
    if (elsewhere.has(i)) return;
    const node = state[i]!;
    const pub = publishNode(node, measures, opts);
    const out = row.map((v: CellValue, c: number) => {
      if (keySet.has(c)) return v;
      const m = measureCols.indexOf(c);
      if (m >= 0) return pub.values[m]!;
      return pub.suppressed ? null : v;
    });
    const k = outRows.length;
    outRows.push(out);
    suppressed.push(pub.suppressed);
    if (pub.suppressed === 'primary') suppressedPrimary.push(k);
    if (pub.suppressed === 'secondary') suppressedSecondary.push(k);
  });
  return {
    columns, rows: outRows, suppressed, suppressedPrimary, suppressedSecondary, shape,
    totalsPresent: masks.some((m) => m !== 0), secondary, threshold: opts.threshold, rounding: opts.rounding,
  };
}

type Opts = ReturnType<typeof resolveOptions>;

function buildOneWay(
  rows: readonly (readonly CellValue[])[], keyCols: readonly number[], masks: readonly number[], cells: readonly Total[],
  measures: readonly Measure[], opts: Opts, state: Node[],
): void {
  const cellRows: number[] = [];
  let totalRow = -1;
  const seen = new Set<string>();
  rows.forEach((row, i) => {
    if (masks[i] === 0) {
      const k = keyOf(row[keyCols[0]!]!, `row ${i}`);
      if (seen.has(k)) throw new SdcInputInvalid(`row ${i}: a group appears twice`);
      seen.add(k);
      cellRows.push(i);
    } else {
      if (totalRow >= 0) throw new SdcInputInvalid(`row ${i}: a second total`);
      totalRow = i;
    }
  });
  const { model } = oneWayModel({ measures, cells: cellRows.map((i) => cells[i]!), total: totalRow >= 0 ? cells[totalRow]! : null }, opts);
  protect(model);
  cellRows.forEach((r, k) => { state[r] = model.nodes[k]!; });
  if (totalRow >= 0) state[totalRow] = model.nodes[cellRows.length]!;
}

function buildTwoWay(
  rows: readonly (readonly CellValue[])[], keyCols: readonly number[], masks: readonly number[], cells: readonly Total[],
  measures: readonly Measure[], opts: Opts, state: Node[],
): void {
  // GROUPING(k1, k2): 0 cell, 1 = k2 rolled up (row total), 2 = k1 rolled up (column total), 3 grand total.
  const rowKeys = new Map<string, number>();
  const colKeys = new Map<string, number>();
  const index = (m: Map<string, number>, k: string) => { if (!m.has(k)) m.set(k, m.size); return m.get(k)!; };
  const placed = rows.map((row, i) => {
    const where = `row ${i}`;
    const mask = masks[i]!;
    const r = mask & 2 ? -1 : index(rowKeys, keyOf(row[keyCols[0]!]!, where));
    const c = mask & 1 ? -1 : index(colKeys, keyOf(row[keyCols[1]!]!, where));
    return { r, c };
  });
  const R = rowKeys.size;
  const C = colKeys.size;
  const grid: (Total | null)[][] = Array.from({ length: R }, () => new Array<Total | null>(C).fill(null));
  const gridRow: number[][] = Array.from({ length: R }, () => new Array<number>(C).fill(-1));
  const rowTotals: (Total | null)[] = new Array<Total | null>(R).fill(null);
  const colTotals: (Total | null)[] = new Array<Total | null>(C).fill(null);
  const rowTotalRow = new Array<number>(R).fill(-1);
  const colTotalRow = new Array<number>(C).fill(-1);
  let grand: Total | null = null;
  let grandRow = -1;
  placed.forEach(({ r, c }, i) => {
    const dup = () => new SdcInputInvalid(`row ${i}: a group or total appears twice`);
    if (r >= 0 && c >= 0) { if (gridRow[r]![c]! >= 0) throw dup(); grid[r]![c] = cells[i]!; gridRow[r]![c] = i; }
    else if (r >= 0) { if (rowTotalRow[r]! >= 0) throw dup(); rowTotals[r] = cells[i]!; rowTotalRow[r] = i; }
    else if (c >= 0) { if (colTotalRow[c]! >= 0) throw dup(); colTotals[c] = cells[i]!; colTotalRow[c] = i; }
    else { if (grandRow >= 0) throw dup(); grand = cells[i]!; grandRow = i; }
  });
  const m = twoWayModel({ measures, cells: grid, rowTotals, columnTotals: colTotals, grandTotal: grand }, opts);
  protect(m.model);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) if (gridRow[r]![c]! >= 0) state[gridRow[r]![c]!] = m.model.nodes[m.cellIndex[r]![c]!]!;
    if (rowTotalRow[r]! >= 0) state[rowTotalRow[r]!] = m.model.nodes[m.rowTotalIndex[r]!]!;
  }
  for (let c = 0; c < C; c++) if (colTotalRow[c]! >= 0) state[colTotalRow[c]!] = m.model.nodes[m.columnTotalIndex[c]!]!;
  if (grandRow >= 0) state[grandRow] = m.model.nodes[m.grandIndex]!;
}
