/** `"null"`: the column reads as NULL of its own type. */
import { isWord, maskNode, type MaskKind } from './kind.ts';

export interface NullMask { readonly kind: 'null' }

export const nullMask: MaskKind<NullMask> = {
  kind: 'null',
  words: ['null'],
  mapping: null,
  parse: (y) => (isWord(y, 'null') ? { kind: 'null' } : null),
  appliesTo: 'any',
  resultType: (type) => type,
  describe: () => 'null',
  doc: { summary: 'The column reads as NULL. Write it quoted: an unquoted YAML null means no mask.', example: 'anything → `NULL`' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (_spec, _x, type, d) => `CAST(NULL AS ${d.typeName(type)})`,
};
