/**
 * The attacker. Given what a table publishes (visible cells and totals) and which cells
 * are withheld, every line is a linear equation `sum(members) = total` over the withheld
 * values. A withheld value is *determined* when it is fixed by the system, i.e. when the
 * unit vector of that unknown lies in the row space of the equations; the attacker then
 * knows it exactly, by subtraction, possibly chained across rows and columns (and, in a
 * two-way table, through cut sets that no single row or column reveals: a cell bridging
 * two otherwise separate groups of suppressed cells is pinned by the margins of one side).
 *
 * Method: Gauss–Jordan elimination, kept in reduced row echelon form as equations are
 * added; an unknown is determined exactly when it is a pivot whose row has no other
 * unknown. The constraint matrix of a one-way table, and of a two-way table with its
 * margins, is totally unimodular (each unknown sits in at most two lines, with the signs
 * of a network matrix), so every pivot is ±1 and the coefficients stay in {−1, 0, 1}:
 * the arithmetic on coefficients is exact. Right-hand sides are the attacker's
 * subtractions of published values, so the recovered value is exact for integer counts.
 *
 * What this attacker does not do: use bounds (values ≥ 0, suppressed means < threshold)
 * to narrow a value to an interval, combine tables other than by adding their lines to
 * one model, or undo rounding. See docs/disclosure-control.md, "Limits".
 */
import { SdcInputInvalid } from './errors.ts';
import { isHidden, type Line, type Model, type Node } from './model.ts';
import type { OneWayRef, PublishedCell, PublishedOneWay, PublishedTwoWay, Suppression, TwoWayRef } from './types.ts';

const EPS = 1e-9;

interface Row {
  coef: Map<number, number>;
  rhs: number;
}

/**
 * Hidden nodes whose value the lines determine, with that value for `measure` (or NaN
 * when `measure` is null: the structural question, all lines, no values).
 */
export function determinedNodes(model: Model, measure: number | null): Map<number, number> {
  const pivots = new Map<number, Row>();
  for (const line of model.lines) {
    const row = equation(model.nodes, line, measure);
    if (!row) continue;
    // Reduce by the existing pivots.
    for (const [v, c] of [...row.coef]) {
      const p = pivots.get(v);
      if (!p) continue;
      addScaled(row, p, -c);
    }
    if (row.coef.size === 0) continue; // redundant (or, with rounding, inconsistent): no new information
    const [pv, pc] = row.coef.entries().next().value!;
    scale(row, 1 / pc);
    for (const p of pivots.values()) {
      const c = p.coef.get(pv);
      if (c !== undefined) addScaled(p, row, -c);
    }
    pivots.set(pv, row);
  }
  const out = new Map<number, number>();
  for (const [v, row] of pivots) if (row.coef.size === 1) out.set(v, row.rhs);
  return out;
}

function equation(nodes: readonly Node[], line: Line, measure: number | null): Row | null {
  const coef = new Map<number, number>();
  let rhs = 0;
  const take = (i: number, sign: number): boolean => {
    const n = nodes[i]!;
    if (isHidden(n)) { coef.set(i, (coef.get(i) ?? 0) + sign); return true; }
    if (measure === null) return true;
    const v = n.values[measure];
    if (v === null || v === undefined) return false; // a NULL makes the line useless for this measure
    rhs -= sign * v;
    return true;
  };
  for (const m of line.members) if (!take(m, 1)) return null;
  if (!take(line.total, -1)) return null;
  for (const [k, c] of coef) if (Math.abs(c) < EPS) coef.delete(k);
  return coef.size === 0 ? null : { coef, rhs };
}

function addScaled(target: Row, source: Row, factor: number): void {
  for (const [v, c] of source.coef) {
    const next = (target.coef.get(v) ?? 0) + factor * c;
    if (Math.abs(next) < EPS) target.coef.delete(v);
    else target.coef.set(v, next);
  }
  target.rhs += factor * source.rhs;
}

function scale(row: Row, factor: number): void {
  for (const [v, c] of row.coef) row.coef.set(v, c * factor);
  row.rhs *= factor;
}

/** A withheld cell the attacker can compute, with the values recovered per measure. */
export interface Recovery<R> {
  readonly cell: R;
  readonly suppressed: Suppression;
  /** One per measure: the recovered value, or null where that measure stays hidden. */
  readonly values: readonly (number | null)[];
}

function publishedNode(p: PublishedCell | null | undefined, measures: number): Node {
  if (!p) return { units: 0, values: new Array<null>(measures).fill(null), state: 'unknown', suppressible: false, virtual: true };
  return { units: 0, values: p.values, state: p.suppressed ?? 'visible', suppressible: false, virtual: false };
}

function attack<R>(model: Model, refs: readonly R[], measures: number): Recovery<R>[] {
  const found = new Map<number, (number | null)[]>();
  for (let m = 0; m < measures; m++) {
    for (const [i, v] of determinedNodes(model, m)) {
      const n = model.nodes[i]!;
      if (n.state !== 'primary' && n.state !== 'secondary') continue;
      const vals = found.get(i) ?? new Array<number | null>(measures).fill(null);
      vals[m] = (Math.abs(v - Math.round(v)) < 1e-6 ? Math.round(v) : v) + 0; // + 0 turns −0 into 0
      found.set(i, vals);
    }
  }
  return [...found.keys()].sort((a, b) => a - b).map((i) => ({
    cell: refs[i]!, suppressed: model.nodes[i]!.state as Suppression, values: found.get(i)!,
  }));
}

/**
 * Every withheld cell of a published one-way table whose values follow from the visible
 * cells and total. Give the attacker more (a total published elsewhere) by setting `total`.
 */
export function recoverableOneWay(table: PublishedOneWay): Recovery<OneWayRef>[] {
  if (!Array.isArray(table?.cells) || !Array.isArray(table.measures)) throw new SdcInputInvalid('not a published one-way table');
  const k = table.measures.length;
  const nodes = table.cells.map((c) => publishedNode(c, k));
  nodes.push(publishedNode(table.total, k));
  const refs: OneWayRef[] = [...table.cells.map((_, i) => i), 'total'];
  return attack({ nodes, lines: [{ members: table.cells.map((_, i) => i), total: nodes.length - 1 }] }, refs, k);
}

/** Every withheld cell of a published two-way table determined by its visible cells and margins. */
export function recoverableTwoWay(table: PublishedTwoWay): Recovery<TwoWayRef>[] {
  if (!Array.isArray(table?.cells) || !Array.isArray(table.measures)) throw new SdcInputInvalid('not a published two-way table');
  const k = table.measures.length;
  const R = table.cells.length;
  const C = R === 0 ? 0 : table.cells[0]!.length;
  const nodes: Node[] = [];
  const refs: TwoWayRef[] = [];
  const add = (p: PublishedCell | null | undefined, ref: TwoWayRef): number => { nodes.push(publishedNode(p, k)); refs.push(ref); return nodes.length - 1; };
  const idx: number[][] = table.cells.map((row: readonly (PublishedCell | null)[], r: number) => row.map((c: PublishedCell | null, col: number) => (c ? add(c, [r, col]) : -1)));
  const lines: Line[] = [];
  const rowT = idx.map((row, r) => { const t = add(table.rowTotals?.[r], [r, 'total']); lines.push({ members: row.filter((i) => i >= 0), total: t }); return t; });
  const colT: number[] = [];
  for (let c = 0; c < C; c++) {
    const t = add(table.columnTotals?.[c], ['total', c]);
    lines.push({ members: idx.map((row) => row[c]!).filter((i) => i >= 0), total: t });
    colT.push(t);
  }
  const g = add(table.grandTotal, ['total', 'total']);
  lines.push({ members: rowT, total: g }, { members: colT, total: g });
  return attack({ nodes, lines }, refs, k);
}

/** The attacker on either shape of published table. */
export function recoverable(table: PublishedOneWay): Recovery<OneWayRef>[];
export function recoverable(table: PublishedTwoWay): Recovery<TwoWayRef>[];
export function recoverable(table: PublishedOneWay | PublishedTwoWay): Recovery<OneWayRef>[] | Recovery<TwoWayRef>[] {
  return 'grandTotal' in table ? recoverableTwoWay(table) : recoverableOneWay(table);
}
