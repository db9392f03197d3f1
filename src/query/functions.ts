/**
 * The function allowlist. A function not listed here cannot be called: nothing that reads
 * files, the network, settings, the catalog or other databases is reachable from user SQL.
 * `engineName` is the DuckDB/PostgreSQL spelling we render.
 */
export type FunctionKind = 'scalar' | 'aggregate' | 'window';

export interface FunctionInfo {
  readonly kind: FunctionKind;
  readonly engineName: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  /** Aggregates whose result is one of the input values (refused under aggregation-only). */
  readonly revealsValue: boolean;
  /** Used by Gatehouse's own rewrites only; user SQL cannot call it. */
  readonly internal: boolean;
}

const fns = new Map<string, FunctionInfo>();
function def(kind: FunctionKind, names: string, minArgs: number, maxArgs: number, opts: { engineName?: string; revealsValue?: boolean; internal?: boolean } = {}): void {
  for (const name of names.split(/\s+/)) {
    fns.set(name, { kind, engineName: opts.engineName ?? name, minArgs, maxArgs, revealsValue: opts.revealsValue ?? false, internal: opts.internal ?? false });
  }
}

// numeric
def('scalar', 'abs sign sqrt exp ln log10 floor ceil', 1, 1);
def('scalar', 'ceiling', 1, 1, { engineName: 'ceil' });
def('scalar', 'round', 1, 2);
def('scalar', 'trunc', 1, 1);
def('scalar', 'power', 2, 2);
def('scalar', 'pow', 2, 2, { engineName: 'power' });
def('scalar', 'log', 1, 2);
def('scalar', 'mod', 2, 2);
def('scalar', 'greatest least coalesce concat', 1, 64);
def('scalar', 'nullif', 2, 2);
// text
def('scalar', 'lower upper length reverse', 1, 1);
def('scalar', 'char_length character_length', 1, 1, { engineName: 'length' });
def('scalar', 'substr substring', 2, 3, { engineName: 'substring' });
def('scalar', 'trim ltrim rtrim', 1, 2);
def('scalar', 'btrim', 1, 2, { engineName: 'trim' });
def('scalar', 'replace split_part', 3, 3);
def('scalar', 'left right strpos starts_with contains', 2, 2);
def('scalar', 'position', 2, 2, { engineName: 'strpos' });
def('scalar', 'regexp_matches', 2, 2);
// dates
def('scalar', 'date_trunc date_part', 2, 2);
def('scalar', 'extract', 2, 2, { engineName: 'date_part' });
def('scalar', 'year month day quarter dayofweek', 1, 1);
def('scalar', 'date_diff', 3, 3);
def('scalar', 'make_date', 3, 3);
def('scalar', 'current_date', 0, 0);
// aggregates
def('aggregate', 'count', 0, 1);
def('aggregate', 'sum avg stddev stddev_samp stddev_pop variance var_samp var_pop bool_and bool_or approx_count_distinct', 1, 1);
def('aggregate', 'min max median mode any_value first last', 1, 1, { revealsValue: true });
def('aggregate', 'quantile_cont quantile_disc', 2, 2, { revealsValue: true });
// Not allowed: list, array_agg, string_agg (they pack any number of rows into one cell,
// which would defeat the row cap) and lpad/rpad/repeat (unbounded output size).
// window-only
def('window', 'row_number rank dense_rank percent_rank cume_dist', 0, 0);
def('window', 'ntile', 1, 1);
def('window', 'lag lead', 1, 3);
def('window', 'first_value last_value', 1, 1);
def('window', 'nth_value', 2, 2);

// internal: deterministic pseudo-random ordering for contribution bounding (seeded per query)
def('scalar', 'hash', 1, 64, { internal: true });
// internal: evaluate an expression with errors turned into NULL
def('scalar', 'try', 1, 1, { internal: true, engineName: 'TRY' });

export function lookupFunction(name: string): FunctionInfo | undefined {
  return fns.get(name);
}

export function allowedFunctionNames(kind?: FunctionKind): string[] {
  return [...fns].filter(([, f]) => !f.internal && (kind === undefined || f.kind === kind)).map(([n]) => n).sort();
}
