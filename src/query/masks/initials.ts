/**
 * `initials`: a name becomes its initials — the first character of each whitespace-separated
 * word, upper-cased, each followed by a full stop ("Ada Lovelace" → "A. L."). NULL stays
 * NULL; an empty or blank name becomes ''. Upper-casing beyond ASCII follows each engine's
 * own rules (PostgreSQL's depend on the database's collation).
 */
import { quoteString } from '../render/sql.ts';
import { isWord, maskNode, perDialect, type MaskKind } from './kind.ts';

export interface InitialsMask { readonly kind: 'initials' }

/** One word and the blanks around it; the capture is its first character. */
const WORD = quoteString('\\s*(\\S)\\S*\\s*');
const TRAILING_BLANKS = quoteString('\\s+$');

export const initials: MaskKind<InitialsMask> = {
  kind: 'initials',
  words: ['initials'],
  mapping: null,
  parse: (y) => (isWord(y, 'initials') ? { kind: 'initials' } : null),
  appliesTo: ['VARCHAR'],
  resultType: () => 'VARCHAR',
  describe: () => 'initials',
  doc: { summary: 'A name becomes its initials: the first character of each word, upper-cased, with a full stop.', example: '`Ada Lovelace` → `A. L.`' },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (spec, x, _type, d) => perDialect(d, spec.kind, {
    duckdb: () => `upper(regexp_replace(regexp_replace(${x}, ${WORD}, '\\1. ', 'g'), ${TRAILING_BLANKS}, ''))`,
    postgres: () => `upper(regexp_replace(regexp_replace(${x}, ${WORD}, '\\1. ', 'g'), ${TRAILING_BLANKS}, ''))`,
    trino: () => `upper(regexp_replace(regexp_replace(${x}, ${WORD}, '$1. '), ${TRAILING_BLANKS}, ''))`,
  }),
};
