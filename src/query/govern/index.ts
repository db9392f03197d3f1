/**
 * The obligation pipeline: one transformer per obligation kind, applied in a fixed order.
 * Scans first (every dataset reference becomes a governed scan), then what shapes values
 * (masks) and rows (row filters), then what constrains the query's shape; the join cost
 * bound (cost-estimate.ts) after aggregation-only, whose refusals name the rule broken.
 */
import type { BoundQuery } from '../bind.ts';
import { forEachSelect, type Select } from '../ir.ts';
import { aggregationOnly, type SdcPlan } from './aggregation-only.ts';
import type { GovernContext, ObligationTransformer } from './context.ts';
import { costEstimate } from './cost-estimate.ts';
import { joinOnly } from './join-only.ts';
import { columnMasks } from './mask.ts';
import { rowCap, rowCapFor } from './row-cap.ts';
import { rowFilters } from './row-filter.ts';
import { erasureOverEngineCopies } from './erasure.ts';
import { governedScan } from './scan.ts';
import { setOperations } from './set-operation.ts';
import { differentialPrivacy, type DpReleasePlan } from './differential-privacy.ts';
import { GatehouseError } from '../../errors.ts';

export const TRANSFORMERS: readonly ObligationTransformer[] = [governedScan, columnMasks, rowFilters, erasureOverEngineCopies, setOperations, aggregationOnly, costEstimate, joinOnly, differentialPrivacy, rowCap];

export interface GovernedQuery {
  readonly query: Select;
  readonly obligationsApplied: readonly string[];
  /** The row cap in force for this query. */
  readonly rowCap: number;
  /** Rows the caller may receive; the rendered LIMIT may be one higher to detect truncation. */
  readonly rowLimit: number;
  /** Present when the result must be released with differential privacy. */
  readonly dp: DpReleasePlan | null;
  /** Present when disclosure control must protect an aggregation-only result. */
  readonly disclosure: SdcPlan | null;
}

export function govern(bound: BoundQuery, ctx: GovernContext): GovernedQuery {
  let query = bound.query;
  const applied: string[] = [];
  forEachSelect(query, (b) => {
    if (b !== query && b.offset !== null) {
      throw new GatehouseError('ROW_CAP_EXCEEDED', 'OFFSET is only allowed on the outermost query (inside a subquery or CTE it would page past the row cap)', { hint: 'move OFFSET to the outer query, or filter with WHERE' });
    }
  });
  let dp: DpReleasePlan | null = null;
  let disclosure: SdcPlan | null = null;
  for (const t of TRANSFORMERS) {
    // DP and disclosure-controlled releases are capped after release, not in SQL.
    if (t === rowCap && (dp || disclosure)) { applied.push(`rowCap:${rowCapFor(bound.query, ctx)}`); continue; }
    const r = t.apply(query, ctx);
    query = r.query;
    applied.push(...r.applied);
    if (r.release) dp = r.release;
    if (r.disclosure) disclosure = r.disclosure;
  }
  const cap = rowCapFor(bound.query, ctx);
  const allowed = cap - (bound.query.offset ?? 0);
  if (allowed <= 0) throw new GatehouseError('ROW_CAP_EXCEEDED', `OFFSET reaches past the row cap of ${cap} rows for this query`, { hint: 'narrow the query with WHERE or aggregate instead of paging through rows' });
  return { query, obligationsApplied: applied, rowCap: cap, rowLimit: Math.min(allowed, bound.query.limit ?? allowed), dp, disclosure };
}

export type { GovernContext } from './context.ts';
export type { DpReleasePlan } from './differential-privacy.ts';
export type { SdcPlan } from './aggregation-only.ts';
