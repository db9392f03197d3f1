/**
 * `{date_shift: N}`: a date or timestamp moved by a whole number of days between -N and N
 * (never 0), the same for every row a principal reads from one column, different between
 * principals and between columns. Intervals within one column stay exact for that
 * principal (a cohort's spacing, a patient's visit rhythm), while the calendar dates do
 * not line up with another principal's view or with outside data such as a birthday.
 *
 * The offset is derived from the workspace's keyed hash (the `hash` mask's
 * HMAC-SHA-256, rendered by each dialect as `Dialect.keyedHash`) over a label naming the
 * mask, the principal and the column: the engine computes it from constants, so the key
 * never leaves the renderer and no offset appears in the query. The first 32 bits of the
 * digest, taken modulo 2N, pick one of the 2N non-zero shifts (modulo bias below 2N/2^32).
 *
 * What it does not hide: a principal who knows one true date in a column learns that
 * column's shift, and with it every true date in the column.
 */
import { quoteString } from '../render/sql.ts';
import { maskNode, perDialect, TEMPORAL_TYPES, type MaskKind } from './kind.ts';

export interface DateShiftMask {
  readonly kind: 'date_shift';
  /** The largest shift, in days. */
  readonly days: number;
  /** Set when lowered: whose view and which column the shift is keyed to. */
  readonly scope?: string;
}

export const MAX_SHIFT_DAYS = 3650;

export const dateShift: MaskKind<DateShiftMask> = {
  kind: 'date_shift',
  words: [],
  mapping: {
    key: 'date_shift', arg: 'N',
    schema: { description: `Shift by a keyed, per-principal and per-column number of days between -N and N, never 0 (1 ≤ N ≤ ${MAX_SHIFT_DAYS}).`, type: 'integer', minimum: 1, maximum: MAX_SHIFT_DAYS },
  },
  parse(y) {
    if (y.form !== 'mapping' || y.key !== 'date_shift') return null;
    const n = y.arg;
    return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= MAX_SHIFT_DAYS ? { kind: 'date_shift', days: n } : null;
  },
  appliesTo: TEMPORAL_TYPES,
  resultType: (type) => type,
  describe: (spec) => `date_shift(${spec.days})`,
  doc: {
    summary: `Moves the value by 1 to N days (N ≤ ${MAX_SHIFT_DAYS}) either way, keyed per principal and column: intervals within a column are kept, calendar dates are not.`,
    example: 'N=30: `2024-05-17` → `2024-06-02` for one principal, `2024-05-03` for another',
  },
  lower: (spec, arg, scope) => maskNode({ kind: 'date_shift', days: spec.days, scope: `${scope.principal}|${scope.dataset}.${scope.column}` }, arg, scope.type),
  render(spec, x, type, d) {
    if (spec.scope === undefined) throw new Error('date_shift must be lowered (keyed to a principal and column) before it is rendered');
    const digest = d.keyedHash(quoteString(`gatehouse/date_shift/v1|${spec.scope}`), 'VARCHAR');
    const word = perDialect(d, spec.kind, {
      duckdb: () => `CAST('0x' || substr(${digest}, 1, 8) AS BIGINT)`,
      postgres: () => `CAST(CAST('x' || substr(${digest}, 1, 8) AS BIT(32)) AS BIGINT)`,
      trino: () => `from_base(substr(${digest}, 1, 8), 16)`,
    });
    const n = spec.days;
    const k = `(${word} % ${2 * n})`;
    const shift = `CAST((CASE WHEN ${k} < ${n} THEN ${k} - ${n} ELSE ${k} - ${n - 1} END) AS INTEGER)`;
    return perDialect(d, spec.kind, {
      duckdb: () => (type === 'DATE' ? `(${x} + ${shift})` : `(${x} + to_days(${shift}))`),
      postgres: () => (type === 'DATE' ? `(${x} + ${shift})` : `(${x} + make_interval(days => ${shift}))`),
      trino: () => `date_add('day', ${shift}, ${x})`,
    });
  },
};
