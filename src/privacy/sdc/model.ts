/**
 * The linear model both secondary suppression and the attacker work on. A one- or
 * two-way table with margins is a set of nodes (cells and totals) and a set of lines;
 * each line says `sum(members) = total`. A two-way table R × C has R row lines, C column
 * lines and two margin lines (row totals sum to the grand total, column totals too).
 *
 * A total that the table does not carry is still a node: `virtual`, never published,
 * never chosen as a complement, and known to the attacker or not according to
 * `margins` (see types.ts). A group that does not exist (a null two-way cell) is no node
 * at all: the attacker knows it is zero, which is the same as leaving it out of its lines.
 */
import { SdcInputInvalid } from './errors.ts';
import { isPrimarySuppressed, validateCell, type ResolvedOptions } from './suppress.ts';
import type { Cell, Measure, OneWayRef, OneWayTable, Total, TwoWayRef, TwoWayTable } from './types.ts';

/** `unknown`: a virtual total the attacker cannot obtain; not a suppression. */
export type NodeState = 'visible' | 'primary' | 'secondary' | 'unknown';

export interface Node {
  readonly units: number;
  readonly values: readonly (number | null)[];
  state: NodeState;
  /** May be withheld as a complementary (secondary) suppression. */
  readonly suppressible: boolean;
  readonly virtual: boolean;
  /**
   * A virtual total the attacker cannot query because it covers fewer than `threshold`
   * units: it describes a small group, so it must not be computable from the table either.
   */
  readonly secret?: boolean;
}

/** A node whose value must not be determined: a suppressed cell or a small unpublished total. */
export function mustStayHidden(n: Node): boolean {
  return n.state === 'primary' || n.state === 'secondary' || n.secret === true;
}

export interface Line {
  readonly members: readonly number[];
  readonly total: number;
}

export interface Model {
  readonly nodes: Node[];
  readonly lines: Line[];
}

export function isHidden(n: Node): boolean {
  return n.state !== 'visible';
}

function realNode(cell: Cell, measures: readonly Measure[], where: string, options: ResolvedOptions, isTotal: boolean): Node {
  const c = validateCell(cell, measures, where);
  const elsewhere = isTotal && (cell as Total).publishedElsewhere === true;
  // An already-public total stays visible whatever its size: withholding it now hides nothing.
  const state = !elsewhere && isPrimarySuppressed(c, options) ? 'primary' : 'visible';
  // A total carried by the table is hidden like any cell; one absent from it is a virtual node.
  const suppressible = !elsewhere && c.units > 0;
  return { units: c.units, values: c.values, state, suppressible, virtual: false };
}

/**
 * A total the table does not carry. The attacker has it under `assume-known` unless its
 * line covers fewer than `threshold` units in all (distinct units of a total never exceed
 * the sum over its cells), because that query would itself be suppressed. An empty line
 * is a known zero.
 */
function virtualNode(members: readonly Node[], measures: readonly Measure[], options: ResolvedOptions): Node {
  let units = 0;
  for (const m of members) units += m.units;
  const values = measures.map((_, i) => {
    let s = 0;
    for (const m of members) {
      const v = m.values[i];
      if (v === null || v === undefined) return null;
      s += v;
    }
    return s;
  });
  // Exactly what the margin query would get: published unless primary suppression withholds it.
  const small = isPrimarySuppressed({ units, values }, { ...options, zeros: 'publish' });
  const known = options.margins === 'assume-known' && !small;
  return { units, values, state: known ? 'visible' : 'unknown', suppressible: false, virtual: true, secret: small };
}

export interface OneWayModel {
  readonly model: Model;
  readonly refs: readonly OneWayRef[];
}

export function oneWayModel(table: OneWayTable, options: ResolvedOptions): OneWayModel {
  if (!Array.isArray(table?.cells)) throw new SdcInputInvalid('a one-way table needs an array of cells');
  const nodes: Node[] = table.cells.map((c, i) => realNode(c, table.measures, `cell ${i}`, options, false));
  const refs: OneWayRef[] = table.cells.map((_, i) => i);
  const members = nodes.map((_, i) => i);
  const total = table.total ? realNode(table.total, table.measures, 'total', options, true) : virtualNode(nodes, table.measures, options);
  nodes.push(total);
  refs.push('total');
  return { model: { nodes, lines: [{ members, total: nodes.length - 1 }] }, refs };
}

export interface TwoWayModel {
  readonly model: Model;
  readonly refs: readonly TwoWayRef[];
  /** Node index of cells[r][c], or -1 for a group that does not exist. */
  readonly cellIndex: readonly (readonly number[])[];
  readonly rowTotalIndex: readonly number[];
  readonly columnTotalIndex: readonly number[];
  readonly grandIndex: number;
}

export function twoWayModel(table: TwoWayTable, options: ResolvedOptions): TwoWayModel {
  if (!Array.isArray(table?.cells)) throw new SdcInputInvalid('a two-way table needs an array of rows');
  const R = table.cells.length;
  const C = R === 0 ? 0 : table.cells[0]!.length;
  for (const row of table.cells) if (!Array.isArray(row) || row.length !== C) throw new SdcInputInvalid('a two-way table must be rectangular');
  if (table.rowTotals && table.rowTotals.length !== R) throw new SdcInputInvalid('rowTotals must have one entry per row');
  if (table.columnTotals && table.columnTotals.length !== C) throw new SdcInputInvalid('columnTotals must have one entry per column');

  const nodes: Node[] = [];
  const refs: TwoWayRef[] = [];
  const add = (n: Node, ref: TwoWayRef): number => { nodes.push(n); refs.push(ref); return nodes.length - 1; };

  const cellIndex = table.cells.map((row: readonly (Cell | null)[], r: number) => row.map((c: Cell | null, col: number) =>
    c === null || c === undefined ? -1 : add(realNode(c, table.measures, `cell [${r}, ${col}]`, options, false), [r, col])));
  const lines: Line[] = [];
  const present = (ids: readonly number[]) => ids.filter((i) => i >= 0);

  const rowTotalIndex: number[] = [];
  for (let r = 0; r < R; r++) {
    const members = present(cellIndex[r]!);
    const given = table.rowTotals?.[r];
    const t = add(given ? realNode(given, table.measures, `row total ${r}`, options, true) : virtualNode(members.map((i) => nodes[i]!), table.measures, options), [r, 'total']);
    rowTotalIndex.push(t);
    lines.push({ members, total: t });
  }
  const columnTotalIndex: number[] = [];
  for (let c = 0; c < C; c++) {
    const members = present(cellIndex.map((row) => row[c]!));
    const given = table.columnTotals?.[c];
    const t = add(given ? realNode(given, table.measures, `column total ${c}`, options, true) : virtualNode(members.map((i) => nodes[i]!), table.measures, options), ['total', c]);
    columnTotalIndex.push(t);
    lines.push({ members, total: t });
  }
  const allCells = present(cellIndex.flat());
  const grandIndex = add(table.grandTotal
    ? realNode(table.grandTotal, table.measures, 'grand total', options, true)
    : virtualNode(allCells.map((i) => nodes[i]!), table.measures, options), ['total', 'total']);
  lines.push({ members: rowTotalIndex, total: grandIndex });
  lines.push({ members: columnTotalIndex, total: grandIndex });
  return { model: { nodes, lines }, refs, cellIndex, rowTotalIndex, columnTotalIndex, grandIndex };
}
