/**
 * Cost bounds checked before anything runs (security invariant 11, and plain availability).
 *
 * A 2 KB query of nested `replace(replace(..., 'a', 'aa'), 'a', 'aa')` doubles a string at
 * each level: thirty levels ask the engine for gigabytes per row, inside one expression
 * evaluation where the engine never checks its interrupt flag, so the statement timeout
 * does not fire. How long such a query runs also depends on the data it touches (a timing
 * side channel). So the size of what an expression can produce is bounded statically:
 *
 * - every query has at most MAX_NODES expression nodes in all;
 * - every text expression has an upper bound on its length in bytes, derived from the
 *   declared column limit (MAX_TEXT_BYTES per stored value) and each function's worst-case
 *   growth (replace(x, f, t) ≤ |x|·max(1, |t|/|f|); concat and || add; casts to text are
 *   short); a bound above MAX_EXPR_BYTES is refused.
 *
 * Refusals are QUERY_TOO_COSTLY and depend only on the query text, never on data.
 */
import { GatehouseError } from '../errors.ts';
import { childExprs, forEachSelect, selectExprs, type Expr, type FromItem, type Select } from './ir.ts';

/** Assumed upper bound of one stored text value (bytes). */
export const MAX_TEXT_BYTES = 4096;
/** Largest text value any expression may be able to produce (bytes). */
export const MAX_EXPR_BYTES = 1 << 20;
/** Largest number of expression nodes in one query (all blocks together). */
export const MAX_NODES = 4000;

function tooCostly(message: string, hint: string): never {
  throw new GatehouseError('QUERY_TOO_COSTLY', message, { hint });
}

function literalBytes(e: Expr): number | null {
  return e.kind === 'literal' && e.type === 'string' ? Buffer.byteLength(e.value) : null;
}

/** Upper bound (bytes) of the text an expression yields; numbers and dates are short. */
export function maxBytes(e: Expr): number {
  switch (e.kind) {
    case 'literal': return e.type === 'string' ? Buffer.byteLength(e.value) : 64;
    case 'column': case 'raw': case 'mask': case 'ref': case 'param': return MAX_TEXT_BYTES;
    case 'cast': return e.type.name === 'VARCHAR' ? Math.max(64, maxBytes(e.arg)) : 64;
    case 'binary': return e.op === '||' ? maxBytes(e.left) + maxBytes(e.right) : 64;
    case 'case': return Math.max(64, ...e.whens.map((w) => maxBytes(w.then)), e.else ? maxBytes(e.else) : 0);
    case 'scalarQuery': return e.query.targets[0] ? maxBytes(e.query.targets[0].expr) : 64;
    case 'func': {
      const a = e.args.map(maxBytes);
      switch (e.name) {
        case 'replace': {
          const from = literalBytes(e.args[1]!);
          const factor = Math.max(1, a[2]! / Math.max(1, from ?? 1));
          return a[0]! * factor;
        }
        case 'concat': return a.reduce((s, x) => s + x, 0);
        case 'coalesce': case 'greatest': case 'least': case 'nullif': case 'lower': case 'upper': case 'reverse':
        case 'trim': case 'ltrim': case 'rtrim': case 'btrim': case 'substr': case 'substring': case 'left': case 'right':
        case 'split_part': case 'min': case 'max': case 'any_value': case 'first': case 'last': case 'mode': case 'lag': case 'lead':
        case 'first_value': case 'last_value': case 'nth_value':
          return Math.max(64, ...a);
        default: return 64;
      }
    }
    default: return 64;
  }
}

function checkExpr(e: Expr, count: { n: number }): void {
  const walk = (x: Expr): void => {
    if (++count.n > MAX_NODES) tooCostly(`the query has more than ${MAX_NODES} expression nodes`, 'split it into smaller queries');
    if (x.kind === 'func' || (x.kind === 'binary' && x.op === '||') || x.kind === 'case' || x.kind === 'cast') {
      const bytes = maxBytes(x);
      if (bytes > MAX_EXPR_BYTES) tooCostly(`an expression could produce text of ${Math.round(bytes / 1024).toLocaleString('en')} KiB per row (the limit is ${MAX_EXPR_BYTES / 1024} KiB)`, 'nest fewer replace/concat calls, or replace with a shorter string');
    }
    for (const c of childExprs(x)) walk(c);
  };
  walk(e);
}

/** Refuses a query whose expressions are too many or can grow text past the limit. */
export function checkExpressionCost(q: Select): void {
  const count = { n: 0 };
  forEachSelect(q, (b) => {
    for (const e of selectExprs(b)) checkExpr(e, count);
    const ons = (f: FromItem | null): void => {
      if (f?.kind === 'join') { ons(f.left); ons(f.right); if (f.on) checkExpr(f.on, count); }
    };
    ons(b.from);
  });
}
