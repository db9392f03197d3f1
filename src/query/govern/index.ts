/**
 * The obligation pipeline: one transformer per obligation kind, applied in a fixed order.
 * Scans first (every dataset reference becomes a governed scan), then what shapes values
 * (masks) and rows (row filters), then what constrains the query's shape.
 */
import type { BoundQuery } from '../bind.ts';
import type { Select } from '../ir.ts';
import { aggregationOnly } from './aggregation-only.ts';
import type { GovernContext, ObligationTransformer } from './context.ts';
import { joinOnly } from './join-only.ts';
import { columnMasks } from './mask.ts';
import { rowCap, rowCapFor } from './row-cap.ts';
import { rowFilters } from './row-filter.ts';
import { governedScan } from './scan.ts';
import { differentialPrivacy, type DpReleasePlan } from './differential-privacy.ts';
import { GatehouseError } from '../../errors.ts';

export const TRANSFORMERS: readonly ObligationTransformer[] = [governedScan, columnMasks, rowFilters, aggregationOnly, joinOnly, differentialPrivacy, rowCap];

export interface GovernedQuery {
  readonly query: Select;
  readonly obligationsApplied: readonly string[];
  /** The row cap in force for this query. */
  readonly rowCap: number;
  /** Rows the caller may receive; the rendered LIMIT may be one higher to detect truncation. */
  readonly rowLimit: number;
  /** Present when the result must be released with differential privacy. */
  readonly dp: DpReleasePlan | null;
}

export function govern(bound: BoundQuery, ctx: GovernContext): GovernedQuery {
  let query = bound.query;
  const applied: string[] = [];
  let dp: DpReleasePlan | null = null;
  for (const t of TRANSFORMERS) {
    // A DP release is capped after noise and partition selection, not in SQL.
    if (t === rowCap && dp) { applied.push(`rowCap:${rowCapFor(bound.query, ctx)}`); continue; }
    const r = t.apply(query, ctx);
    query = r.query;
    applied.push(...r.applied);
    if (r.release) dp = r.release;
  }
  const cap = rowCapFor(bound.query, ctx);
  const allowed = cap - (bound.query.offset ?? 0);
  if (allowed <= 0) throw new GatehouseError('ROW_CAP_EXCEEDED', `OFFSET reaches past the row cap of ${cap} rows for this query`, { hint: 'narrow the query with WHERE or aggregate instead of paging through rows' });
  return { query, obligationsApplied: applied, rowCap: cap, rowLimit: Math.min(allowed, bound.query.limit ?? allowed), dp };
}

export type { GovernContext } from './context.ts';
export type { DpReleasePlan } from './differential-privacy.ts';
