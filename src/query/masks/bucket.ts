/** `{bucket: N}`: rounds down to a multiple of N (the bucket's lower bound). */
import { maskNode, NUMERIC_TYPES, perDialect, positiveNumberArg, type MaskKind } from './kind.ts';

export interface BucketMask { readonly kind: 'bucket'; readonly width: number }

export const bucket: MaskKind<BucketMask> = {
  kind: 'bucket',
  words: [],
  mapping: { key: 'bucket', arg: 'N', schema: { description: 'Round down to a multiple of this width (> 0).', type: 'number', exclusiveMinimum: 0 } },
  parse: (y) => { const width = positiveNumberArg(y, 'bucket'); return width === null ? null : { kind: 'bucket', width }; },
  appliesTo: NUMERIC_TYPES,
  resultType: (type) => type,
  describe: (spec) => `bucket(${spec.width})`,
  doc: { summary: 'Rounds down to a multiple of N (> 0).', example: 'N=10: `47` → `40`; `-15` → `-20`' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (spec, x, type, d) => perDialect(d, spec.kind, {
    duckdb: () => `CAST(floor(${x} / ${spec.width}) * ${spec.width} AS ${d.typeName(type)})`,
    postgres: () => `CAST(floor(CAST(${x} AS DOUBLE PRECISION) / ${spec.width}) * ${spec.width} AS ${d.typeName(type)})`,
    trino: () => `CAST(floor(CAST(${x} AS DOUBLE) / ${spec.width}) * ${spec.width} AS ${d.typeName(type)})`,
  }),
};
