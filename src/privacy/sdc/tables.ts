/**
 * Protection of one- and two-way tables: primary suppression (suppress.ts), then
 * secondary suppression (secondary.ts), then rounding of what is published (rounding.ts).
 * Secondary suppression is computed on the exact values, as if the attacker saw them
 * unrounded; rounding only adds uncertainty on top.
 */
import { oneWayModel, twoWayModel, type Node } from './model.ts';
import { roundCount } from './rounding.ts';
import { protect } from './secondary.ts';
import { resolveOptions, validateMeasures, type ResolvedOptions } from './suppress.ts';
import type {
  Measure, OneWayRef, OneWayTable, PublishedCell, PublishedOneWay, PublishedTwoWay, SdcOptions, SdcResult, TwoWayRef, TwoWayTable,
} from './types.ts';

export function publishNode(n: Node, measures: readonly Measure[], options: ResolvedOptions): PublishedCell {
  if (n.state === 'primary' || n.state === 'secondary') return { values: measures.map(() => null), suppressed: n.state };
  return {
    values: n.values.map((v, i) => (v !== null && measures[i]!.kind === 'count' ? roundCount(v, options.rounding) : v)),
    suppressed: null,
  };
}

function suppressedRefs<R>(nodes: readonly Node[], refs: readonly R[]): { primary: R[]; secondary: R[] } {
  const primary: R[] = [];
  const secondary: R[] = [];
  nodes.forEach((n, i) => {
    if (n.state === 'primary') primary.push(refs[i]!);
    else if (n.state === 'secondary') secondary.push(refs[i]!);
  });
  return { primary, secondary };
}

/** A row of cells, with or without its total. */
export function protectOneWay(table: OneWayTable, options?: SdcOptions): SdcResult<PublishedOneWay, OneWayRef> {
  const opts = resolveOptions(options);
  validateMeasures(table?.measures);
  const { model, refs } = oneWayModel(table, opts);
  protect(model);
  const cells = table.cells.map((_, i) => publishNode(model.nodes[i]!, table.measures, opts));
  const totalNode = model.nodes[model.nodes.length - 1]!;
  const total = totalNode.virtual ? null : publishNode(totalNode, table.measures, opts);
  const s = suppressedRefs(model.nodes, refs);
  return {
    table: { measures: table.measures, cells, total },
    suppressedPrimary: s.primary, suppressedSecondary: s.secondary, threshold: opts.threshold, rounding: opts.rounding,
  };
}

/** Rows × columns with any of row totals, column totals and the grand total. */
export function protectTwoWay(table: TwoWayTable, options?: SdcOptions): SdcResult<PublishedTwoWay, TwoWayRef> {
  const opts = resolveOptions(options);
  validateMeasures(table?.measures);
  const m = twoWayModel(table, opts);
  protect(m.model);
  const pub = (i: number): PublishedCell | null => {
    const n = m.model.nodes[i]!;
    return n.virtual ? null : publishNode(n, table.measures, opts);
  };
  const s = suppressedRefs(m.model.nodes, m.refs);
  return {
    table: {
      measures: table.measures,
      cells: m.cellIndex.map((row) => row.map((i) => (i < 0 ? null : pub(i)))),
      rowTotals: table.rowTotals ? m.rowTotalIndex.map(pub) : null,
      columnTotals: table.columnTotals ? m.columnTotalIndex.map(pub) : null,
      grandTotal: pub(m.grandIndex),
    },
    suppressedPrimary: s.primary, suppressedSecondary: s.secondary, threshold: opts.threshold, rounding: opts.rounding,
  };
}
