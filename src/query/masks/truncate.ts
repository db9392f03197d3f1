/** `year`, `month`, `{truncate: year|month}`: a date or timestamp cut down to the start of its year or month. */
import { quoteString } from '../render/sql.ts';
import { maskNode, TEMPORAL_TYPES, type MaskKind, type MaskYaml } from './kind.ts';

export interface TruncateMask { readonly kind: 'truncate'; readonly unit: 'year' | 'month' }

function unitOf(y: MaskYaml): 'year' | 'month' | null {
  const v = y.form === 'word' ? y.word : y.key === 'truncate' ? y.arg : null;
  return v === 'year' || v === 'month' ? v : null;
}

export const truncate: MaskKind<TruncateMask> = {
  kind: 'truncate',
  words: ['year', 'month'],
  mapping: { key: 'truncate', arg: 'year|month', schema: { enum: ['year', 'month'] } },
  parse: (y) => { const unit = unitOf(y); return unit ? { kind: 'truncate', unit } : null; },
  appliesTo: TEMPORAL_TYPES,
  resultType: (type) => type,
  describe: (spec) => `truncate(${spec.unit})`,
  doc: { summary: 'The start of the value\'s year or month (`year` is `{truncate: year}`).', example: '`2024-05-17 13:45:00` → `2024-05-01 00:00:00` (month)' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (spec, x, type, d) => `CAST(date_trunc(${quoteString(spec.unit)}, ${x}) AS ${d.typeName(type)})`,
};
