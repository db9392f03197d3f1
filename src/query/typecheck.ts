/**
 * Bind-time type check of a bound query (security invariant 11: no side channel through
 * errors). An engine that meets `textcol = intcol` casts one side at run time, and the cast
 * fails only on rows whose text is not a number — so whether a query fails would tell the
 * caller something about a row it may not see (one bit per query, enough for a binary
 * search of a hidden value). Every operator and function here is checked against the
 * catalog's declared column types before anything runs: a mismatch is SQL_INVALID for
 * every row or for none, never a run-time error that depends on data.
 *
 * Types are tracked as families (text, number, boolean, date, timestamp, interval); an
 * unknown family (NULL, a parameter) is compatible with everything. Explicit CASTs are
 * rendered as TRY_CAST and so never fail; they give the expression the target's family.
 */
import { GatehouseError } from '../errors.ts';
import type { ColumnType } from '../model/types.ts';
import type { Catalog } from './bind.ts';
import { lookupFunction } from './functions.ts';
import type { CastType, Expr, FromItem, Select } from './ir.ts';

export type TypeFamily = 'text' | 'number' | 'boolean' | 'date' | 'timestamp' | 'interval' | 'unknown';

type Columns = ReadonlyMap<string, TypeFamily>;
interface Env {
  readonly relations: ReadonlyMap<string, Columns>;
  readonly parent: Env | null;
  readonly ctes: ReadonlyMap<string, Columns>;
}

export function familyOfColumnType(t: ColumnType): TypeFamily {
  switch (t) {
    case 'VARCHAR': return 'text';
    case 'BIGINT': case 'INTEGER': case 'DOUBLE': case 'DECIMAL': return 'number';
    case 'BOOLEAN': return 'boolean';
    case 'DATE': return 'date';
    case 'TIMESTAMP': return 'timestamp';
  }
}

function familyOfCast(t: CastType): TypeFamily {
  switch (t.name) {
    case 'VARCHAR': return 'text';
    case 'BOOLEAN': return 'boolean';
    case 'DATE': return 'date';
    case 'TIMESTAMP': return 'timestamp';
    default: return 'number';
  }
}

function invalid(message: string, hint: string): never {
  throw new GatehouseError('SQL_INVALID', message, { hint });
}

const NUMERIC_TEXT = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
const DATE_TEXT = /^\d{4}-\d{2}-\d{2}$/;
const TIMESTAMP_TEXT = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$/;

/** A string literal the engine converts once at plan time (never per row) to the other side's type. */
function literalFits(e: Expr, family: TypeFamily): boolean {
  if (e.kind !== 'literal' || e.type !== 'string') return false;
  if (family === 'number') return NUMERIC_TEXT.test(e.value);
  if (family === 'date') return DATE_TEXT.test(e.value);
  if (family === 'timestamp') return TIMESTAMP_TEXT.test(e.value);
  if (family === 'boolean') return /^(true|false|t|f)$/i.test(e.value);
  return false;
}

function comparable(a: TypeFamily, b: TypeFamily): boolean {
  if (a === 'unknown' || b === 'unknown' || a === b) return true;
  const temporal = (x: TypeFamily): boolean => x === 'date' || x === 'timestamp';
  return temporal(a) && temporal(b);
}

const NUMERIC_FNS = new Set(['abs', 'sign', 'sqrt', 'exp', 'ln', 'log10', 'floor', 'ceil', 'ceiling', 'round', 'trunc', 'power', 'pow', 'log', 'mod',
  'sum', 'avg', 'stddev', 'stddev_samp', 'stddev_pop', 'variance', 'var_samp', 'var_pop']);
const TEXT_FNS = new Set(['lower', 'upper', 'length', 'reverse', 'char_length', 'character_length', 'substr', 'substring', 'trim', 'ltrim', 'rtrim', 'btrim',
  'replace', 'split_part', 'left', 'right', 'strpos', 'starts_with', 'contains', 'position', 'regexp_matches']);
/** The argument positions of a text function that must be text (the others are numbers). */
const TEXT_ARGS: Readonly<Record<string, readonly number[]>> = {
  substr: [0], substring: [0], left: [0], right: [0], split_part: [0, 1],
};
const TEMPORAL_FNS = new Set(['year', 'month', 'day', 'quarter', 'dayofweek']);

export class TypeChecker {
  readonly #catalog: Catalog;
  constructor(catalog: Catalog) { this.#catalog = catalog; }

  /** Checks a whole query; returns the families of its output columns. */
  select(q: Select, parent: Env | null = null, outerCtes: ReadonlyMap<string, Columns> = new Map()): TypeFamily[] {
    const ctes = new Map(outerCtes);
    for (const c of q.with) ctes.set(c.name.toLowerCase(), this.#outputs(c.query, this.select(c.query, parent, ctes)));
    const relations = new Map<string, Columns>();
    const env: Env = { relations, parent, ctes };
    if (q.from) this.#from(q.from, env, relations);
    const out = q.targets.map((t) => this.expr(t.expr, env));
    if (q.where) this.#boolean(q.where, env, 'WHERE');
    for (const g of q.groupBy) this.expr(g, env);
    if (q.having) this.#boolean(q.having, env, 'HAVING');
    for (const o of q.orderBy) this.expr(o.expr, env);
    return out;
  }

  #outputs(q: Select, families: readonly TypeFamily[]): Columns {
    return new Map(q.targets.map((t, i) => [t.alias.toLowerCase(), families[i]!]));
  }

  #from(f: FromItem, env: Env, into: Map<string, Columns>): void {
    switch (f.kind) {
      case 'dataset': {
        const ds = this.#catalog.dataset(f.dataset);
        into.set(f.alias.toLowerCase(), new Map((ds?.columns ?? []).map((c) => [c.name.toLowerCase(), familyOfColumnType(c.type)])));
        return;
      }
      case 'cteRef': into.set(f.alias.toLowerCase(), env.ctes.get(f.name.toLowerCase()) ?? new Map()); return;
      case 'derived': into.set(f.alias.toLowerCase(), this.#outputs(f.query, this.select(f.query, env.parent, env.ctes))); return;
      case 'setOp': into.set(f.alias.toLowerCase(), this.#setOperation(f, env)); return;
      case 'join':
        this.#from(f.left, env, into);
        this.#from(f.right, env, into);
        if (f.on) this.#boolean(f.on, env, 'JOIN ... ON');
    }
  }

  /**
   * Each branch is checked on its own; the branches' columns must then be of one family
   * pairwise, or the engine would convert one side per row (or refuse at run time).
   */
  #setOperation(f: Extract<FromItem, { kind: 'setOp' }>, env: Env): Columns {
    const left = this.select(f.left, env.parent, env.ctes), right = this.select(f.right, env.parent, env.ctes);
    const families = left.map((a, i) => {
      const b = right[i] ?? 'unknown';
      if (!comparable(a, b)) invalid(`column ${i + 1} ("${f.left.targets[i]!.alias}") of ${f.op.toUpperCase()} is ${a} in one branch and ${b} in the other`, `cast both branches to one type, e.g. CAST(x AS ${a === 'text' || b === 'text' ? 'VARCHAR' : 'DOUBLE'})`);
      return a === 'unknown' ? b : a;
    });
    return this.#outputs(f.left, families);
  }

  #column(relation: string, name: string, env: Env): TypeFamily {
    for (let e: Env | null = env; e; e = e.parent) {
      const r = e.relations.get(relation.toLowerCase());
      if (r) return r.get(name.toLowerCase()) ?? 'unknown';
    }
    return 'unknown';
  }

  #boolean(e: Expr, env: Env, where: string): void {
    const t = this.expr(e, env);
    if (t !== 'boolean' && t !== 'unknown') invalid(`${where} must be a true/false condition, not a ${t} value`, 'compare the value, e.g. col = 1');
  }

  #compare(l: Expr, r: Expr, env: Env, what: string): void {
    const a = this.expr(l, env), b = this.expr(r, env);
    if (comparable(a, b) || literalFits(l, b) || literalFits(r, a)) return;
    invalid(`${what} compares a ${a} value with a ${b} value`, `cast one side explicitly, e.g. CAST(x AS ${b === 'text' ? 'VARCHAR' : a === 'text' ? 'BIGINT' : b.toUpperCase()}), so the conversion is part of the query and not a run-time error`);
  }

  expr(e: Expr, env: Env): TypeFamily {
    switch (e.kind) {
      case 'literal':
        switch (e.type) {
          case 'null': return 'unknown';
          case 'string': return 'text';
          case 'number': return 'number';
          default: return e.type;
        }
      case 'param': case 'ref': return 'unknown';
      case 'column': return this.#column(e.relation, e.name, env);
      case 'raw': return familyOfColumnType(e.type);
      case 'mask': this.expr(e.arg, env); return familyOfColumnType(e.type);
      case 'cast': this.expr(e.arg, env); return familyOfCast(e.type);
      case 'unary': {
        const t = this.expr(e.arg, env);
        if (e.op === 'NOT') { if (t !== 'boolean' && t !== 'unknown') invalid(`NOT needs a true/false operand, not ${t}`, 'compare the value first'); return 'boolean'; }
        if (t !== 'number' && t !== 'unknown' && t !== 'interval') invalid(`unary ${e.op} needs a number, not ${t}`, 'apply it to a numeric column');
        return t;
      }
      case 'binary': return this.#binary(e, env);
      case 'isNull': this.expr(e.arg, env); return 'boolean';
      case 'isBool': { const t = this.expr(e.arg, env); if (t !== 'boolean' && t !== 'unknown') invalid(`IS TRUE/FALSE needs a true/false operand, not ${t}`, 'compare the value first'); return 'boolean'; }
      case 'like': {
        for (const x of [e.arg, e.pattern]) { const t = this.expr(x, env); if (t !== 'text' && t !== 'unknown') invalid(`LIKE needs text on both sides, not ${t}`, 'cast the value to VARCHAR'); }
        return 'boolean';
      }
      case 'between': this.#compare(e.arg, e.low, env, 'BETWEEN'); this.#compare(e.arg, e.high, env, 'BETWEEN'); return 'boolean';
      case 'inList': for (const x of e.list) this.#compare(e.arg, x, env, 'IN (...)'); return 'boolean';
      case 'inQuery': {
        const a = this.expr(e.arg, env);
        const inner = this.select(e.query, env, env.ctes);
        const b = inner[0] ?? 'unknown';
        if (!comparable(a, b) && !literalFits(e.arg, b)) invalid(`IN (subquery) compares a ${a} value with a ${b} column`, 'cast one side explicitly');
        return 'boolean';
      }
      case 'exists': this.select(e.query, env, env.ctes); return 'boolean';
      case 'scalarQuery': return this.select(e.query, env, env.ctes)[0] ?? 'unknown';
      case 'case': {
        const operand = e.operand ? this.expr(e.operand, env) : null;
        let result: TypeFamily = 'unknown';
        const unify = (x: Expr): void => {
          const t = this.expr(x, env);
          if (t === 'unknown') return;
          if (result === 'unknown') result = t;
          else if (!comparable(result, t)) invalid(`CASE branches return both ${result} and ${t} values`, 'cast the branches to one type');
        };
        for (const w of e.whens) {
          if (e.operand) this.#compare(e.operand, w.when, env, 'CASE');
          else this.#boolean(w.when, env, 'CASE WHEN');
          unify(w.then);
        }
        if (e.else) unify(e.else);
        void operand;
        return result;
      }
      case 'func': return this.#func(e, env);
    }
  }

  #binary(e: Extract<Expr, { kind: 'binary' }>, env: Env): TypeFamily {
    switch (e.op) {
      case 'AND': case 'OR': this.#boolean(e.left, env, e.op); this.#boolean(e.right, env, e.op); return 'boolean';
      case '=': case '<>': case '<': case '>': case '<=': case '>=': case 'IS DISTINCT FROM': case 'IS NOT DISTINCT FROM':
        this.#compare(e.left, e.right, env, `"${e.op}"`); return 'boolean';
      case '||': this.expr(e.left, env); this.expr(e.right, env); return 'text';
      default: {
        const a = this.expr(e.left, env), b = this.expr(e.right, env);
        if (a === 'text' || b === 'text' || a === 'boolean' || b === 'boolean') invalid(`"${e.op}" cannot combine ${a} and ${b} values`, 'use numbers (cast text explicitly with CAST(x AS BIGINT))');
        if (a === 'unknown') return b;
        if (b === 'unknown') return a;
        if ((a === 'date' || a === 'timestamp') && (b === 'date' || b === 'timestamp')) {
          if (e.op !== '-') invalid(`"${e.op}" cannot combine two dates`, 'subtract dates, or use date_diff');
          return 'number';
        }
        if (a === 'date' || a === 'timestamp') {
          if (e.op !== '+' && e.op !== '-') invalid(`"${e.op}" cannot apply to a ${a}`, 'add or subtract an interval');
          return a;
        }
        if (b === 'date' || b === 'timestamp') {
          if (e.op !== '+') invalid(`"${e.op}" cannot apply to a ${b}`, 'add an interval');
          return b;
        }
        if (a === 'interval' || b === 'interval') return 'interval';
        return 'number';
      }
    }
  }

  #func(e: Extract<Expr, { kind: 'func' }>, env: Env): TypeFamily {
    const args = e.args.map((a) => this.expr(a, env));
    if (e.filter) this.#boolean(e.filter, env, 'FILTER');
    if (e.over) { e.over.partitionBy.forEach((p) => this.expr(p, env)); e.over.orderBy.forEach((o) => this.expr(o.expr, env)); }
    const need = (i: number, fam: TypeFamily | 'temporal'): void => {
      const t = args[i];
      if (t === undefined || t === 'unknown') return;
      const ok = fam === 'temporal' ? t === 'date' || t === 'timestamp' : t === fam;
      if (!ok) invalid(`argument ${i + 1} of ${e.name}() must be ${fam === 'temporal' ? 'a date or timestamp' : fam}, not ${t}`, `cast it explicitly, e.g. CAST(x AS ${fam === 'text' ? 'VARCHAR' : fam === 'number' ? 'DOUBLE' : 'DATE'})`);
    };
    const n = e.name;
    if (NUMERIC_FNS.has(n)) { args.forEach((_, i) => need(i, 'number')); return 'number'; }
    if (TEXT_FNS.has(n)) {
      const textArgs = TEXT_ARGS[n];
      args.forEach((_, i) => need(i, textArgs === undefined || textArgs.includes(i) ? 'text' : 'number'));
      return ['length', 'char_length', 'character_length', 'strpos', 'position'].includes(n) ? 'number'
        : ['starts_with', 'contains', 'regexp_matches'].includes(n) ? 'boolean' : 'text';
    }
    if (TEMPORAL_FNS.has(n)) { need(0, 'temporal'); return 'number'; }
    switch (n) {
      case 'count': case 'approx_count_distinct': case 'row_number': case 'rank': case 'dense_rank': case 'ntile': return 'number';
      case 'percent_rank': case 'cume_dist': return 'number';
      case 'bool_and': case 'bool_or': need(0, 'boolean'); return 'boolean';
      case 'date_trunc': need(0, 'text'); need(1, 'temporal'); return args[1] === 'date' ? 'timestamp' : (args[1] ?? 'timestamp');
      case 'date_part': case 'extract': need(0, 'text'); need(1, 'temporal'); return 'number';
      case 'date_diff': need(0, 'text'); need(1, 'temporal'); need(2, 'temporal'); return 'number';
      case 'make_date': args.forEach((_, i) => need(i, 'number')); return 'date';
      case 'current_date': return 'date';
      case 'concat': return 'text';
      case 'coalesce': case 'greatest': case 'least': case 'nullif': {
        let r: TypeFamily = 'unknown';
        e.args.forEach((a, i) => {
          const t = args[i]!;
          if (t === 'unknown') return;
          if (r === 'unknown') r = t;
          else if (!comparable(r, t) && !literalFits(a, r)) invalid(`${n}() mixes ${r} and ${t} values`, 'cast the arguments to one type');
        });
        return r;
      }
      default: {
        // min/max/median/mode/quantiles/any_value/first/last and window value functions return their first argument's type.
        const info = lookupFunction(n);
        if (['quantile_cont', 'quantile_disc'].includes(n)) need(1, 'number');
        if (['lag', 'lead', 'nth_value'].includes(n) && args.length > 1) need(1, 'number');
        return info && args.length > 0 ? args[0]! : 'unknown';
      }
    }
  }
}

/** Throws SQL_INVALID if any expression of the bound query mixes types the engine would convert at run time. */
export function typecheckQuery(q: Select, catalog: Catalog): void {
  new TypeChecker(catalog).select(q);
}
