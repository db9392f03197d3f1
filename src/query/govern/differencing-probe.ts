/**
 * The differencing probe's shape, built by the planner (aggregation-only.ts) and read by the
 * differencing check (src/privacy/differencing.ts): the query's governed scan, filter and group
 * keys moved onto one alias, so the check can count units for any remembered filter. It is IR
 * and lives with the planner; the check, its history and its thresholds live in privacy.
 */
import type { Expr, FromItem } from '../ir.ts';
import { mapExpr, subqueriesOf } from '../ir.ts';

export const PROBE_ALIAS = '__gh_d';

export interface DifferencingProbe {
  readonly dataset: string;
  /** The governed scan (row filters, masks, unit column) under the alias PROBE_ALIAS. */
  readonly scan: Extract<FromItem, { kind: 'dataset' }>;
  /** The query's WHERE over PROBE_ALIAS (TRUE when absent). */
  readonly predicate: Expr;
  /**
   * The query's GROUP BY keys over PROBE_ALIAS ([] when it does not group; null when they
   * cannot be moved onto the probe, e.g. with joins): each released cell is the predicate
   * and one value of the keys, and cells are compared too (see `checkQuery`).
   */
  readonly keys?: readonly Expr[] | null;
  readonly unitColumn: string;
  readonly threshold: number;
  /**
   * The row predicate (over PROBE_ALIAS) of one released cell, from the values of the
   * result's group-key columns in order; null when the cell cannot be written back as a
   * filter (a group key that is not selected, or a value with no literal form).
   */
  readonly cell?: (keyValues: readonly unknown[]) => Expr | null;
}

const TRUE: Expr = { kind: 'literal', type: 'boolean', value: true };

/**
 * Rebinds a predicate from the query's alias to the probe alias; null if it reads anything
 * else. Uncorrelated subqueries (the caller checks) move as they are.
 */
export function probePredicate(where: Expr | null, alias: string): Expr | null {
  return where === null ? TRUE : probeExpr(where, alias);
}

/** Rebinds any expression (a predicate, a group key) from the query's alias to the probe alias; null if it reads anything else. */
export function probeExpr(e: Expr, alias: string): Expr | null {
  let foreign = false;
  if (subqueriesOf(e).some((q) => JSON.stringify(q, (k, v) => (k === 'lineage' ? undefined : v)).includes(`"relation":${JSON.stringify(alias)}`))) return null;
  const out = mapExpr(e, (x) => {
    if (x.kind === 'column') {
      if (x.relation !== alias) foreign = true;
      return { ...x, relation: PROBE_ALIAS };
    }
    return x;
  });
  return foreign ? null : out;
}
