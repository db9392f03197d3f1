/** `last4`: every character but the last four becomes `*` (four or fewer: all stars). */
import { isWord, maskNode, perDialect, type MaskKind } from './kind.ts';

export interface Last4Mask { readonly kind: 'last4' }

export const last4: MaskKind<Last4Mask> = {
  kind: 'last4',
  words: ['last4'],
  mapping: null,
  parse: (y) => (isWord(y, 'last4') ? { kind: 'last4' } : null),
  appliesTo: ['VARCHAR'],
  resultType: () => 'VARCHAR',
  describe: () => 'last4',
  doc: { summary: 'Stars for all but the last four characters; four characters or fewer: all stars.', example: '`123-45-6789` → `*******6789`; `abc` → `***`' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (spec, x, _type, d) => perDialect(d, spec.kind, {
    duckdb: () => standard(x),
    postgres: () => standard(x),
    // Trino's repeat() builds an array; rpad over '' gives the stars.
    trino: () => `(CASE WHEN length(${x}) <= 4 THEN rpad('', length(${x}), '*') ELSE rpad('', length(${x}) - 4, '*') || substr(${x}, length(${x}) - 3) END)`,
  }),
};

function standard(x: string): string {
  return `(CASE WHEN length(${x}) <= 4 THEN repeat('*', length(${x})) ELSE repeat('*', length(${x}) - 4) || right(${x}, 4) END)`;
}
