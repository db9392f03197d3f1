/**
 * Trino dialect (rendering only: no live Trino is available here; docs/trino.md says what
 * is verified). Trino has TRY(...) and TRY_CAST like DuckDB, so the renderer's guards carry
 * over; what differs is spelling: no ILIKE, integer `/` is integer division, OFFSET precedes
 * LIMIT, interval literals name their unit, and a few functions have other names. The
 * keyed hash (the `hash` mask) is Trino's own hmac_sha256 over the same UTF-8 text DuckDB hashes.
 */
import { GatehouseError } from '../../errors.ts';
import type { ColumnType } from '../../model/types.ts';
import type { CastType } from '../ir.ts';
import { quoteString, type Dialect } from './sql.ts';

const INTERVAL = /^\s*(\d+)\s+(year|month|day|hour|minute|second)s?\s*$/i;
const PART_FUNCS: Record<string, string> = { year: 'year', month: 'month', day: 'day', quarter: 'quarter', hour: 'hour', minute: 'minute', second: 'second', week: 'week', doy: 'day_of_year', dayofyear: 'day_of_year' };

function unsupported(message: string, hint: string): GatehouseError {
  return new GatehouseError('SQL_UNSUPPORTED', message, { hint });
}

export function trinoCastTypeSql(t: CastType): string {
  return t.name === 'DECIMAL' ? `DECIMAL(${t.precision}, ${t.scale})` : t.name;
}

export function trinoDialect(options: { sourceOf: (dataset: string) => string; hashKey: Buffer }): Dialect {
  const key = options.hashKey.toString('hex');
  const typeName = (t: ColumnType): string => (t === 'DECIMAL' ? 'DOUBLE' : t);
  return {
    name: 'trino',
    source: options.sourceOf,
    typeName,
    functionName: (n) => n,
    guard: (sql) => `try(${sql})`,
    cast: (arg, t) => `try_cast(${arg} AS ${trinoCastTypeSql(t)})`,
    binary(op, l, r) {
      if (op === '/') return `(CAST(${l} AS DOUBLE) / ${r})`;
      return undefined;
    },
    like(a, p, negated, ci) {
      return ci ? `(lower(${a}) ${negated ? 'NOT ' : ''}LIKE lower(${p}))` : undefined;
    },
    literal(lit) {
      if (lit.type !== 'interval') return undefined;
      const m = INTERVAL.exec(lit.value);
      if (!m) throw unsupported('this interval literal cannot be rendered for Trino', "write one amount and unit, e.g. INTERVAL '3 day'");
      return `INTERVAL ${quoteString(m[1]!)} ${m[2]!.toUpperCase()}`;
    },
    limitOffset(limit, offset) {
      return [offset !== null ? `OFFSET ${offset}` : null, limit !== null ? `LIMIT ${limit}` : null].filter(Boolean).join(' ');
    },
    func(name, args, ir) {
      const [a, b, c] = args;
      switch (name) {
        case 'log': return args.length === 1 ? `log10(${a})` : `log(${a}, ${b})`;
        case 'trunc': return `truncate(${a})`;
        case 'substring': return `substr(${args.join(', ')})`;
        case 'left': return `substr(${a}, 1, ${b})`;
        case 'right': return `(CASE WHEN ${b} >= length(${a}) THEN ${a} WHEN ${b} <= 0 THEN '' ELSE substr(${a}, length(${a}) - ${b} + 1) END)`;
        case 'contains': return `(strpos(${a}, ${b}) > 0)`;
        case 'regexp_matches': return `regexp_like(${a}, ${b})`;
        case 'date_part': {
          const u = ir[0]?.kind === 'literal' && ir[0].type === 'string' ? ir[0].value.toLowerCase() : null;
          if (u === 'dow' || u === 'dayofweek') return `mod(day_of_week(${b}), 7)`;
          if (u === 'epoch') return `to_unixtime(CAST(${b} AS TIMESTAMP))`;
          const f = u ? PART_FUNCS[u] : undefined;
          if (!f) throw unsupported('date_part: on Trino the unit must be a literal such as \'month\'', "write date_part('month', …)");
          return `${f}(${b})`;
        }
        case 'dayofweek': return `mod(day_of_week(${a}), 7)`;
        case 'make_date': return `date(format('%04d-%02d-%02d', ${a}, ${b}, ${c}))`;
        case 'current_date': return 'current_date';
        case 'approx_count_distinct': return `approx_distinct(${a})`;
        case 'median': return `approx_percentile(${a}, 0.5)`;
        case 'quantile_cont': case 'quantile_disc': return `approx_percentile(${a}, ${b})`;
        case 'any_value': case 'first': case 'last': return `arbitrary(${a})`;
        case 'mode': throw unsupported('mode() has no Trino equivalent', 'group by the column and order by count(*) instead');
        case 'hash': return `from_big_endian_64(xxhash64(to_utf8(concat_ws('|', ${args.map((x) => `coalesce(CAST(${x} AS VARCHAR), '')`).join(', ')}))))`;
        case 'TRY': return `try(${a})`;
        default: return undefined;
      }
    },
    keyedHash(x: string): string {
      return `lower(to_hex(hmac_sha256(to_utf8(CAST(${x} AS VARCHAR)), from_hex('${key}'))))`;
    },
  };
}
