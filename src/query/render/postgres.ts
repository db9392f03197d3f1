/**
 * PostgreSQL dialect.
 *
 * PostgreSQL has no TRY(...): an expression that fails aborts the whole statement, and
 * whether a statement fails is a one-bit side channel about the rows it touched (see the
 * comment on `guardable` in sql.ts). So instead of wrapping user expressions, every
 * operation reachable from allowlisted syntax that can fail on *data* is rendered in a form
 * that yields NULL instead:
 *
 *   - `/` is float division like DuckDB's, and like DuckDB over rows x/0 is ±Infinity and 0/0 NaN;
 *     `%` and mod(): divisor through NULLIF(…, 0)
 *   - CAST: the value's text is checked by a regular expression and a range test inside a
 *     CASE before it is converted (text → number, date, timestamp, boolean)
 *   - sqrt, ln, log, log10, power, exp: domain checked in a CASE first
 *   - split_part field 0, substring negative length, ntile/nth_value ≤ 0, quantile
 *     fractions outside [0, 1], make_date out of range: NULL arguments instead
 *   - date_trunc / date_part / date_diff units and regular expressions must be literals:
 *     they are checked here (units) or folded by the planner (patterns), so an invalid one
 *     fails every time, before any row is read, whatever the data
 *   - LIKE uses ESCAPE '' (no escape character, as in DuckDB), so no pattern can be invalid
 *
 * What remains (integer and floating-point overflow in + - * abs and unary minus, …) is
 * listed in docs/postgres.md. Errors that depend only on the query text (type errors, a
 * constant division by zero folded at plan time) carry no information about data.
 *
 * The keyed hash (the `hash` mask, src/query/masks/keyed-hash.ts) is HMAC-SHA-256 over the same text as DuckDB's (built-in sha256 on
 * bytea, RFC 2104 pads from hmacPads), so values hash identically on both engines.
 */
import { GatehouseError } from '../../errors.ts';
import type { ColumnType } from '../../model/types.ts';
import type { CastType, Expr } from '../ir.ts';
import { hmacPads } from './duckdb.ts';
import { quoteString, type Dialect } from './sql.ts';

/** Refuse expressions whose guarded form would grow past this (each guard repeats its argument). */
const MAX_GUARDED_ARG = 200_000;

const PG_TYPES: Record<ColumnType, string> = {
  VARCHAR: 'TEXT', BIGINT: 'BIGINT', INTEGER: 'INTEGER', DOUBLE: 'DOUBLE PRECISION', DECIMAL: 'NUMERIC',
  BOOLEAN: 'BOOLEAN', DATE: 'DATE', TIMESTAMP: 'TIMESTAMP',
};

export function pgCastTypeSql(t: CastType): string {
  switch (t.name) {
    case 'VARCHAR': return 'TEXT';
    case 'DOUBLE': return 'DOUBLE PRECISION';
    case 'DECIMAL': return `NUMERIC(${t.precision}, ${t.scale})`;
    default: return t.name;
  }
}

const NUM_RE = quoteString('^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]{1,3})?\\s*$');
const DATE_RE = quoteString('^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([ T].*)?$');
const TS_RE = quoteString('^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?)?\\s*$');
const BOOL_WORDS = "('true', 't', 'yes', 'y', '1', 'on', 'false', 'f', 'no', 'n', '0', 'off')";

const DATE_UNITS = new Set(['year', 'quarter', 'month', 'week', 'day', 'hour', 'minute', 'second', 'decade', 'century', 'millennium', 'millisecond', 'microsecond']);
const PART_UNITS = new Map<string, string>([
  ['year', 'year'], ['quarter', 'quarter'], ['month', 'month'], ['week', 'week'], ['day', 'day'], ['hour', 'hour'],
  ['minute', 'minute'], ['second', 'second'], ['dow', 'dow'], ['dayofweek', 'dow'], ['doy', 'doy'], ['dayofyear', 'doy'],
  ['isodow', 'isodow'], ['epoch', 'epoch'], ['decade', 'decade'], ['century', 'century'], ['millennium', 'millennium'],
  ['isoyear', 'isoyear'], ['millisecond', 'milliseconds'], ['microsecond', 'microseconds'],
]);

function unsupported(message: string, hint: string): GatehouseError {
  return new GatehouseError('SQL_UNSUPPORTED', message, { hint });
}

/** The literal string a unit argument must be, lower-cased. */
function unitOf(fn: string, e: Expr | undefined): string {
  if (e?.kind === 'literal' && e.type === 'string') return e.value.toLowerCase();
  throw unsupported(`${fn}: on PostgreSQL the unit must be a string literal such as 'month'`, `write ${fn}('month', …)`);
}

function checkSize(arg: string): string {
  if (arg.length > MAX_GUARDED_ARG) {
    throw unsupported('the expression is too large to render safely for PostgreSQL', 'split the query into simpler expressions or nest fewer casts');
  }
  return arg;
}

/** Guarded casts: the value's text form is validated before PostgreSQL converts it. */
export function pgSafeCast(arg: string, t: CastType): string {
  checkSize(arg);
  const txt = `CAST(${arg} AS TEXT)`;
  const num = `CAST(${txt} AS NUMERIC)`;
  const numeric = (range: string, target: string): string =>
    `(CASE WHEN ${txt} ~ ${NUM_RE} THEN (CASE WHEN ${range} THEN CAST(${num} AS ${target}) END) END)`;
  switch (t.name) {
    case 'VARCHAR': return txt;
    case 'BOOLEAN': return `(CASE WHEN lower(trim(${txt})) IN ${BOOL_WORDS} THEN CAST(trim(${txt}) AS BOOLEAN) END)`;
    case 'BIGINT': return numeric(`${num} > -9223372036854775808.5 AND ${num} < 9223372036854775807.5`, 'BIGINT');
    case 'INTEGER': return numeric(`${num} > -2147483648.5 AND ${num} < 2147483647.5`, 'INTEGER');
    case 'SMALLINT': return numeric(`${num} > -32768.5 AND ${num} < 32767.5`, 'SMALLINT');
    // Below the smallest normal value PostgreSQL raises an underflow error where DuckDB gives 0: render 0.
    case 'DOUBLE': return numeric(`abs(${num}) <= 1e308`, 'DOUBLE PRECISION').replace(`CAST(${num} AS DOUBLE PRECISION)`, `CAST((CASE WHEN abs(${num}) >= 1e-307 THEN ${num} ELSE 0 END) AS DOUBLE PRECISION)`);
    case 'REAL': return numeric(`abs(${num}) <= 3.4e38`, 'REAL').replace(`CAST(${num} AS REAL)`, `CAST((CASE WHEN abs(${num}) >= 1e-37 THEN ${num} ELSE 0 END) AS REAL)`);
    case 'DECIMAL': {
      if (!Number.isInteger(t.precision) || !Number.isInteger(t.scale) || t.precision < 1 || t.precision > 1000 || t.scale < 0 || t.scale > t.precision) {
        throw unsupported('DECIMAL precision and scale are out of range', 'use DECIMAL(p, s) with 1 ≤ p ≤ 1000 and 0 ≤ s ≤ p');
      }
      // The outer CAST keeps the precision and scale on the result column (a CASE drops the typmod); it cannot fail.
      return `CAST(${numeric(`abs(round(${num}, ${t.scale})) < 1e${t.precision - t.scale}`, `NUMERIC(${t.precision}, ${t.scale})`)} AS NUMERIC(${t.precision}, ${t.scale}))`;
    }
    case 'DATE': case 'TIMESTAMP': {
      const s = `trim(${txt})`;
      const day = `substr(${s}, 1, 10)`;
      // the calendar date must exist: year ≥ 1, month 1–12, day within the month
      const valid = `(CASE WHEN substr(${s}, 1, 4) <> '0000' AND substr(${s}, 6, 2) BETWEEN '01' AND '12' AND substr(${s}, 9, 2) BETWEEN '01' AND '31' ` +
        `THEN CAST(substr(${s}, 9, 2) AS INTEGER) <= date_part('day', CAST(substr(${s}, 1, 7) || '-01' AS DATE) + INTERVAL '1 month' - INTERVAL '1 day') END)`;
      if (t.name === 'DATE') return `(CASE WHEN ${txt} ~ ${DATE_RE} THEN (CASE WHEN ${valid} THEN CAST(${day} AS DATE) END) END)`;
      return `(CASE WHEN ${txt} ~ ${TS_RE} THEN (CASE WHEN ${valid} THEN CAST(${s} AS TIMESTAMP) END) END)`;
    }
  }
}

/** The same text DuckDB's CAST(x AS VARCHAR) gives for a column of this type (keyed hash input). */
function duckdbText(x: string, type: ColumnType): string {
  if (type === 'DOUBLE' || type === 'DECIMAL') {
    // DuckDB prints integral doubles below 1e16 as "3.0"; otherwise both print the shortest round-trip form.
    const d = `CAST(${x} AS DOUBLE PRECISION)`;
    return `(CASE WHEN ${d} = trunc(${d}) AND abs(${d}) < 1e16 THEN CAST(CAST(${d} AS BIGINT) AS TEXT) || '.0' ELSE CAST(${d} AS TEXT) END)`;
  }
  return `CAST(${x} AS TEXT)`;
}

function positiveOrNull(x: string): string {
  return `CAST((CASE WHEN ${x} > 0 AND ${x} <= 2147483647 THEN ${x} END) AS INTEGER)`;
}

/** An INTEGER argument; NULL instead of an overflow error. */
function int32(x: string): string {
  return `CAST((CASE WHEN ${x} BETWEEN -2147483648 AND 2147483647 THEN ${x} END) AS INTEGER)`;
}

function dateDiff(unit: string, a: string, b: string): string {
  const part = (u: string, x: string): string => `date_part('${u}', ${x})`;
  const epochDiff = (u: string, secs: number): string =>
    `CAST((date_part('epoch', date_trunc('${u}', CAST(${b} AS TIMESTAMP))) - date_part('epoch', date_trunc('${u}', CAST(${a} AS TIMESTAMP)))) / ${secs} AS BIGINT)`;
  switch (unit) {
    case 'year': return `CAST(${part('year', b)} - ${part('year', a)} AS BIGINT)`;
    case 'quarter': return `CAST((${part('year', b)} - ${part('year', a)}) * 4 + ${part('quarter', b)} - ${part('quarter', a)} AS BIGINT)`;
    case 'month': return `CAST((${part('year', b)} - ${part('year', a)}) * 12 + ${part('month', b)} - ${part('month', a)} AS BIGINT)`;
    case 'week': return `CAST(trunc((CAST(${b} AS DATE) - CAST(${a} AS DATE)) / 7.0) AS BIGINT)`;
    case 'day': return `CAST(CAST(${b} AS DATE) - CAST(${a} AS DATE) AS BIGINT)`;
    case 'hour': return epochDiff('hour', 3600);
    case 'minute': return epochDiff('minute', 60);
    case 'second': return epochDiff('second', 1);
    default: throw unsupported(`date_diff: unit '${unit}' is not supported on PostgreSQL`, 'use year, quarter, month, week, day, hour, minute or second');
  }
}

export function postgresDialect(options: { sourceOf: (dataset: string) => string; hashKey: Buffer }): Dialect {
  const pads = hmacPads(options.hashKey);
  const typeName = (t: ColumnType): string => PG_TYPES[t];
  return {
    name: 'postgres',
    source: options.sourceOf,
    typeName,
    functionName: (n) => n,
    // No TRY in PostgreSQL: failure-prone operations are guarded where they are rendered.
    guard: (sql) => sql,
    cast: pgSafeCast,
    binary(op, l, r) {
      if (op === '/') {
        // IEEE semantics, as DuckDB evaluates `/` over rows: x/0 is ±Infinity, 0/0 NaN (PostgreSQL would raise).
        const dl = `CAST(${l} AS DOUBLE PRECISION)`, dr = `CAST(${checkSize(r)} AS DOUBLE PRECISION)`;
        return `(CASE WHEN ${dr} = 0 THEN CAST((CASE WHEN ${dl} > 0 THEN 'Infinity' WHEN ${dl} < 0 THEN '-Infinity' WHEN ${dl} = 0 THEN 'NaN' END) AS DOUBLE PRECISION) ELSE ${dl} / ${dr} END)`;
      }
      if (op === '%') return `(${l} % NULLIF(${r}, 0))`;
      return undefined;
    },
    like(a, p, negated, ci) {
      return `(${a} ${negated ? 'NOT ' : ''}${ci ? 'ILIKE' : 'LIKE'} ${p} ESCAPE '')`;
    },
    func(name, args, ir) {
      const [a, b, c] = args;
      switch (name) {
        case 'sqrt': return `sqrt(CASE WHEN ${a} >= 0 THEN ${a} END)`;
        case 'ln': case 'log10': return `${name}(CASE WHEN ${a} > 0 THEN ${a} END)`;
        case 'log':
          if (args.length === 1) return `log10(CASE WHEN ${a} > 0 THEN ${a} END)`;
          return `(CASE WHEN ${a} > 0 AND ${a} <> 1 AND ${b} > 0 THEN log(CAST(${a} AS NUMERIC), CAST(${b} AS NUMERIC)) END)`;
        case 'exp': return `exp(CASE WHEN ${a} <= 709 THEN ${a} END)`;
        case 'power':
          return `(CASE WHEN ${a} = 0 AND ${b} < 0 THEN NULL WHEN ${a} < 0 AND ${b} <> trunc(${b}) THEN NULL ELSE power(${a}, ${b}) END)`;
        case 'mod': return `mod(${a}, NULLIF(${b}, 0))`;
        case 'round': return args.length === 1 ? `round(CAST(${a} AS NUMERIC))` : `round(CAST(${a} AS NUMERIC), ${int32(b!)})`;
        case 'substring': return args.length === 2 ? `substring(${a}, ${int32(b!)})` : `substring(${a}, ${int32(b!)}, CAST((CASE WHEN ${c} >= 0 AND ${c} <= 2147483647 THEN ${c} END) AS INTEGER))`;
        case 'split_part': return `split_part(${a}, ${b}, ${int32(`NULLIF(${c}, 0)`)})`;
        case 'left': case 'right': return `${name}(${a}, ${int32(b!)})`;
        case 'contains': return `(strpos(${a}, ${b}) > 0)`;
        case 'regexp_matches': {
          const p = ir[1];
          if (!(p?.kind === 'literal' && p.type === 'string')) {
            throw unsupported('regexp_matches: on PostgreSQL the pattern must be a string literal', 'write the pattern as a literal, e.g. regexp_matches(name, \'^A\')');
          }
          // '' ~ pattern is constant: the planner folds it, so an invalid pattern fails before any row is read.
          return `(CASE WHEN ('' ~ ${b}) IS NULL THEN NULL ELSE (${a} ~ ${b}) END)`;
        }
        case 'date_trunc': {
          const u = unitOf('date_trunc', ir[0]);
          if (!DATE_UNITS.has(u)) throw unsupported(`date_trunc: unknown unit '${u}'`, 'use year, quarter, month, week, day, hour, minute or second');
          return `CAST(date_trunc(${quoteString(u)}, ${b}) AS TIMESTAMP)`;
        }
        case 'date_part': {
          const u = unitOf('date_part', ir[0]);
          const pgUnit = PART_UNITS.get(u);
          if (!pgUnit) throw unsupported(`date_part: unknown unit '${u}'`, 'use year, quarter, month, week, day, hour, minute, second, dow, doy or epoch');
          return pgUnit === 'epoch' ? `date_part('epoch', ${b})` : `CAST(floor(date_part(${quoteString(pgUnit)}, ${b})) AS BIGINT)`;
        }
        case 'year': case 'month': case 'day': case 'quarter': return `CAST(date_part('${name}', ${a}) AS BIGINT)`;
        case 'dayofweek': return `CAST(date_part('dow', ${a}) AS BIGINT)`;
        case 'date_diff': return dateDiff(unitOf('date_diff', ir[0]), b!, c!);
        case 'make_date':
          return `(CASE WHEN ${a} BETWEEN 1 AND 9999 AND ${b} BETWEEN 1 AND 12 AND ${c} BETWEEN 1 AND 31 THEN (CASE WHEN ${c} <= date_part('day', make_date(CAST(${a} AS INTEGER), CAST(${b} AS INTEGER), 1) + INTERVAL '1 month' - INTERVAL '1 day') ` +
            `THEN make_date(CAST(${a} AS INTEGER), CAST(${b} AS INTEGER), CAST(${c} AS INTEGER)) END) END)`;
        case 'current_date': return 'CURRENT_DATE';
        case 'approx_count_distinct': return `count(DISTINCT ${a})`;
        case 'median': return `percentile_cont(0.5) WITHIN GROUP (ORDER BY ${a})`;
        case 'mode': return `mode() WITHIN GROUP (ORDER BY ${a})`;
        case 'quantile_cont': case 'quantile_disc':
          return `percentile_${name === 'quantile_cont' ? 'cont' : 'disc'}(CAST((CASE WHEN ${b} BETWEEN 0 AND 1 THEN ${b} END) AS DOUBLE PRECISION)) WITHIN GROUP (ORDER BY ${a})`;
        // PostgreSQL 15 has no any_value/first/last: any value of the group is a correct answer.
        case 'any_value': case 'first': return `min(${a})`;
        case 'last': return `max(${a})`;
        case 'ntile': return `ntile(${positiveOrNull(a!)})`;
        case 'nth_value': return `nth_value(${a}, ${positiveOrNull(b!)})`;
        case 'lag': case 'lead':
          return args.length === 1 ? `${name}(${a})` : `${name}(${a}, ${int32(b!)}${args.length === 3 ? `, ${c}` : ''})`;
        // internal: deterministic pseudo-random order for contribution bounding
        case 'hash': return `hashtextextended(CAST(ROW(${args.join(', ')}) AS TEXT), 0)`;
        // internal: every operation is already guarded where it is rendered
        case 'TRY': return `(${a})`;
        default: return undefined;
      }
    },
    keyedHash(x: string, type: ColumnType): string {
      return `encode(sha256(decode('${pads.opad}', 'hex') || sha256(decode('${pads.ipad}', 'hex') || convert_to(${duckdbText(x, type)}, 'UTF8'))), 'hex')`;
    },
  };
}
