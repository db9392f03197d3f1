/**
 * Structural identity of an expression: two expressions with the same key compute the same
 * value in the same query block (a GROUP BY key written again in the select list, HAVING or
 * ORDER BY). Lineage is bookkeeping, not meaning, so it is left out.
 */
import type { Expr } from '../ir.ts';

export function exprKey(e: Expr): string {
  return JSON.stringify(e, (k, v) => (k === 'lineage' ? undefined : v));
}
