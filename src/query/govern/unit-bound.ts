/**
 * A per-unit contribution bound (issue 12 §2): in every output group, the rows of one
 * privacy unit count at most `rows` times. `unit` is the unit column of one protected
 * dataset as the query block reads it (its governed scan's hidden unit column).
 * The two plans that enforce it: unit-bound-preaggregate.ts (one aggregate per unit and
 * group, the default) and unit-bound-window.ts (a row ranking, for aggregates that cannot
 * be recombined from per-unit partial aggregates).
 */
import type { Expr } from '../ir.ts';

export interface UnitBound {
  readonly unit: Extract<Expr, { kind: 'column' }>;
  readonly rows: number;
}
