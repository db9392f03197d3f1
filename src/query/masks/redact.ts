/** `redact`: a fixed marker instead of the text; NULL stays NULL so missingness is still visible. */
import { isWord, maskNode, type MaskKind } from './kind.ts';

export interface RedactMask { readonly kind: 'redact' }

export const redact: MaskKind<RedactMask> = {
  kind: 'redact',
  words: ['redact'],
  mapping: null,
  parse: (y) => (isWord(y, 'redact') ? { kind: 'redact' } : null),
  appliesTo: ['VARCHAR'],
  resultType: () => 'VARCHAR',
  describe: () => 'redact',
  doc: { summary: 'A fixed marker instead of the text.', example: '`Ana Silva` → `[REDACTED]`' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (_spec, x) => `(CASE WHEN ${x} IS NULL THEN NULL ELSE '[REDACTED]' END)`,
};
