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

export const TRANSFORMERS: readonly ObligationTransformer[] = [governedScan, columnMasks, rowFilters, aggregationOnly, joinOnly, rowCap];

export interface GovernedQuery {
  readonly query: Select;
  readonly obligationsApplied: readonly string[];
  /** The row cap in force for this query. */
  readonly rowCap: number;
  /** Rows the caller may receive; the rendered LIMIT may be one higher to detect truncation. */
  readonly rowLimit: number;
}

export function govern(bound: BoundQuery, ctx: GovernContext): GovernedQuery {
  let query = bound.query;
  const applied: string[] = [];
  for (const t of TRANSFORMERS) {
    const r = t.apply(query, ctx);
    query = r.query;
    applied.push(...r.applied);
  }
  const cap = rowCapFor(bound.query, ctx);
  const allowed = cap - (bound.query.offset ?? 0);
  return { query, obligationsApplied: applied, rowCap: cap, rowLimit: Math.min(allowed, bound.query.limit ?? allowed) };
}

export type { GovernContext } from './context.ts';
