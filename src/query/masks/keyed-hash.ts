/**
 * `hash`: HMAC-SHA-256 (RFC 2104) keyed with the workspace's hash key over the value's text
 * form, as lower-case hex. Equal values hash equally in every dataset of the workspace, so
 * joins and count(DISTINCT) on hashed keys still work, and on every engine: each dialect
 * renders the same keyed hash (`Dialect.keyedHash`; src/engine/postgres.test.ts checks
 * DuckDB and PostgreSQL against node:crypto).
 */
import { isWord, maskNode, type MaskKind } from './kind.ts';

export interface KeyedHashMask { readonly kind: 'hash' }

export const keyedHash: MaskKind<KeyedHashMask> = {
  kind: 'hash',
  words: ['hash'],
  mapping: null,
  parse: (y) => (isWord(y, 'hash') ? { kind: 'hash' } : null),
  appliesTo: 'any',
  resultType: () => 'VARCHAR',
  describe: () => 'hash',
  doc: {
    summary: 'HMAC-SHA-256 keyed with the workspace hash key over the value\'s text form, lower-case hex; equal values hash alike across datasets and engines, so joins still work.',
    example: '`1001` → `3a127980cf0c…f35e2` (64 hex characters)',
  },
  lower: (spec, arg, scope) => maskNode(spec, arg, scope.type),
  render: (_spec, x, type, d) => d.keyedHash(x, type),
};
