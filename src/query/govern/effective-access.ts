/**
 * Effective access: what a set of obligations does to one dataset — each column's mask
 * (or none), whether it is join-only, the row filter, aggregation-only, differential
 * privacy and the row cap. Computed here once; the mask transformer, the dataset listing,
 * the wire catalog (through the listing) and the access review all read it, so what a
 * partner is told about a column is what its queries return.
 *
 * Rules: a column's declared mask applies unless an obligation lists it in `unmask`;
 * obligation `masks` add or replace masks (they win over `unmask`); when two obligations mask
 * one column differently the column is nulled (fail closed). The row cap is the smallest of
 * the workspace default and every obligation's cap; aggregation-only takes the largest
 * minimum group size.
 */
import type { ColumnType, DatasetDef, DifferentialPrivacyDef, MaskSpec, ObligationDef } from '../../model/types.ts';
import { maskResultType } from '../masks/registry.ts';

export interface ColumnAccess {
  readonly name: string;
  /** The type a query returns: the declared type, or the mask's result type (a hashed key is text). */
  readonly type: ColumnType;
  /** The mask applied at every reference, or null when the column is returned as stored. */
  readonly mask: MaskSpec | null;
  /** Usable to join only: never returned, never in ORDER BY. */
  readonly joinOnly: boolean;
}

export interface DatasetAccess {
  readonly dataset: string;
  readonly columns: ReadonlyMap<string, ColumnAccess>;
  readonly rowFilter: boolean;
  readonly aggregationOnly: { readonly minGroupSize: number } | null;
  /** The strictest differential-privacy obligation (smallest per-query ε), or null. */
  readonly differentialPrivacy: DifferentialPrivacyDef | null;
  /** The row cap, or null when neither the workspace nor an obligation sets one. */
  readonly rowCap: number | null;
}

function sameMask(a: MaskSpec, b: MaskSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The mask of one column under a set of obligations (the mask transformer's rule). */
export function effectiveMask(declared: MaskSpec | null, column: string, obligations: readonly ObligationDef[]): MaskSpec | null {
  const extra = obligations.map((o) => o.masks[column]).filter((m): m is MaskSpec => m !== undefined);
  if (extra.length > 0) return extra.every((m) => sameMask(m, extra[0]!)) ? extra[0]! : { kind: 'null' };
  return obligations.some((o) => o.unmask.includes(column)) ? null : declared;
}

export function effectiveAccess(ds: DatasetDef, obligations: readonly ObligationDef[], defaultRowCap: number | null): DatasetAccess {
  const joinOnly = new Set(obligations.flatMap((o) => o.joinOnly));
  const columns = new Map<string, ColumnAccess>();
  for (const c of ds.columns) {
    const mask = effectiveMask(c.mask, c.name, obligations);
    columns.set(c.name, { name: c.name, type: mask ? maskResultType(mask, c.type) : c.type, mask, joinOnly: joinOnly.has(c.name) });
  }
  const agg = obligations.filter((o) => o.aggregationOnly).map((o) => o.aggregationOnly!.minGroupSize);
  const dp = obligations.map((o) => o.differentialPrivacy).filter((d): d is DifferentialPrivacyDef => d !== null && d !== undefined);
  const caps = [...(defaultRowCap !== null ? [defaultRowCap] : []), ...obligations.map((o) => o.rowCap).filter((c): c is number => c !== null)];
  return {
    dataset: ds.name,
    columns,
    rowFilter: obligations.some((o) => o.rowFilter !== null),
    aggregationOnly: agg.length ? { minGroupSize: Math.max(...agg) } : null,
    differentialPrivacy: dp.length ? [...dp].sort((a, b) => a.epsilon - b.epsilon)[0]! : null,
    rowCap: caps.length ? Math.min(...caps) : null,
  };
}
