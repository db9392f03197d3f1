/**
 * Erasure and consent withdrawal as an obligation: every governed scan of a dataset that
 * carries a privacy-unit column with recorded erasures (or opt-outs for this purpose) gets
 * the filter `(unit IN (…subjects…)) IS NOT TRUE` at the source. Like a row filter it
 * sits inside the governed scan, so it holds in every reference, subquery, CTE, join and
 * aggregate, on every path that plans through `govern` (HTTP, wire, CLI, estimate, and the
 * ways in still to come) — without deleting source data Gatehouse does not own.
 *
 * The subject values come from the state (src/governance/erasure/registry.ts) as data, keyed
 * by the unit column's name: a dataset is covered when it has a column of that name,
 * whether or not it declares it as its privacyUnit (a claims table keyed by patient_id loses
 * the patient's claims too). Rows whose unit is NULL belong to nobody and stay.
 *
 * The applied label names the dataset, never a subject or a count.
 */
import type { ColumnType } from '../../model/types.ts';
import { mapQuery, type Expr } from '../ir.ts';
import type { ObligationTransformer } from './context.ts';

const NUMERIC: ReadonlySet<ColumnType> = new Set<ColumnType>(['INTEGER', 'BIGINT', 'DOUBLE', 'DECIMAL']);

/** A subject value as a literal of the unit column's type; null when it cannot be one (never matches). */
function literal(value: string, type: ColumnType): Expr | null {
  if (NUMERIC.has(type)) return /^-?\d+(\.\d+)?$/.test(value) ? { kind: 'literal', type: 'number', value } : null;
  if (type === 'VARCHAR') return { kind: 'literal', type: 'string', value };
  return null;
}

/** The exclusion predicate for one unit column, or null when no value can match its type. */
export function exclusion(column: string, type: ColumnType, values: readonly string[]): Expr | null {
  const list = values.map((v) => literal(v, type)).filter((x): x is Expr => x !== null);
  if (list.length === 0) return null;
  // `(unit IN (…)) IS NOT TRUE`: false for a listed subject, true for everyone else and for
  // NULL units (rows of nobody stay). The positive IN is what engines turn into one hash
  // lookup per row (DuckDB through its dialect's long-list form, PostgreSQL ≥ 14 hashes it).
  return { kind: 'isBool', arg: { kind: 'inList', arg: { kind: 'raw', name: column, type }, list, negated: false }, value: true, negated: true };
}

/**
 * What the engine already reads without some subjects' rows: per dataset, the copy's unit
 * column and the exact set it excludes (src/governance/erasure/erased-copy.ts, built once
 * per erasure version). Those subjects need no per-row filter; any other subject does.
 */
export type ErasedCopies = ReadonlyMap<string, { readonly unit: string; readonly values: ReadonlySet<string> }>;

/**
 * The erasure transformer over an engine that reads some datasets from erased copies: each
 * scan is filtered for the subjects its copy does not already exclude (all of them when
 * there is no copy). A subject erased after the copy was built is therefore still filtered
 * until the next copy: never a window where they reappear.
 */
export function erasureOver(copies: ErasedCopies): ObligationTransformer {
  return {
    name: 'erasure',
    apply(query, ctx) {
      const erased = ctx.erased;
      if (!erased || erased.size === 0) return { query, applied: [] };
      const applied = new Set<string>();
      const out = mapQuery(query, {
        dataset: (d) => {
          const ds = ctx.datasets.get(d.dataset)!;
          const copy = copies.get(ds.name);
          const filters: Expr[] = [];
          let covered = false;
          for (const [unit, values] of erased) {
            const col = ds.columns.find((c) => c.name === unit);
            if (!col || values.length === 0) continue;
            const residual = copy && copy.unit === unit ? values.filter((v) => !copy.values.has(v)) : values;
            if (residual.length < values.length) covered = true;
            const f = residual.length > 0 ? exclusion(col.name, col.type, residual) : null;
            if (f) filters.push(f);
          }
          if (filters.length === 0 && !covered) return d;
          applied.add(`erasure:${ds.name}`);
          return filters.length === 0 ? d : { ...d, scan: { ...d.scan!, filters: [...d.scan!.filters, ...filters] } };
        },
      });
      return { query: out, applied: [...applied].sort() };
    },
  };
}

/** Without erased copies: every erased subject is filtered in every scan. */
export const erasure: ObligationTransformer = erasureOver(new Map());

const NONE: ErasedCopies = new Map();

/**
 * The erasure transformer in the pipeline: over the copies of the engine this request's
 * state holds (`ctx.erasedCopies`, the DuckDB engine's), so a request on an engine opened
 * before the newest erasure still filters that subject per row.
 */
export const erasureOverEngineCopies: ObligationTransformer = {
  name: 'erasure',
  apply(query, ctx) {
    return erasureOver(ctx.erasedCopies ?? NONE).apply(query, ctx);
  },
};
