/** `{round: N}`: the nearest multiple of N, halves away from zero, on every engine. */
import { maskNode, NUMERIC_TYPES, perDialect, positiveNumberArg, type MaskKind } from './kind.ts';

export interface RoundMask { readonly kind: 'round'; readonly step: number }

export const round: MaskKind<RoundMask> = {
  kind: 'round',
  words: [],
  mapping: { key: 'round', arg: 'N', schema: { description: 'Round to the nearest multiple of this step (> 0).', type: 'number', exclusiveMinimum: 0 } },
  parse: (y) => { const step = positiveNumberArg(y, 'round'); return step === null ? null : { kind: 'round', step }; },
  appliesTo: NUMERIC_TYPES,
  resultType: (type) => type,
  describe: (spec) => `round(${spec.step})`,
  doc: { summary: 'The nearest multiple of N (> 0, fractions allowed), halves away from zero.', example: 'N=100: `1234.56` → `1200`; N=10: `-15` → `-20`' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (spec, x, type, d) => perDialect(d, spec.kind, {
    duckdb: () => `CAST(round(${x} / ${spec.step}) * ${spec.step} AS ${d.typeName(type)})`,
    postgres: () => {
      // DuckDB's round() is half away from zero on the double quotient; PostgreSQL's round(double) is half-even.
      const q = `(CAST(${x} AS DOUBLE PRECISION) / ${spec.step})`;
      return `CAST(sign(${q}) * floor(abs(${q}) + 0.5) * ${spec.step} AS ${d.typeName(type)})`;
    },
    trino: () => `CAST(round(CAST(${x} AS DOUBLE) / ${spec.step}) * ${spec.step} AS ${d.typeName(type)})`,
  }),
};
