/**
 * The result digest in an audit entry is what a partner or auditor recomputes from the answer
 * they hold. Its bytes must not change when its computation gets cheaper (issue 15): the
 * definition is SHA-256 over canonicalJson(column names), then "\n" + canonicalJson(row) per row.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { canonicalJson, resultDigest } from './digest.ts';

/** The definition, written the slow, obvious way. */
function byDefinition(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const h = createHash('sha256');
  h.update(canonicalJson(columns));
  for (const r of rows) { h.update('\n'); h.update(canonicalJson(r)); }
  return `sha256:${h.digest('hex')}`;
}

const cols = (names: string[]) => names.map((name) => ({ name }));

describe('the result digest', () => {
  it('equals its definition for scalars, nulls, unicode, special numbers and nested values', () => {
    const rows: unknown[][] = [
      [1, 'a', null, true], [-0, 1.5e-300, Number.NaN, Infinity], ['é"\\\n\u2028', '', 0, false],
      [{ b: 2, a: [1, { d: null, c: 'x' }] }, [3, 2, 1], null, 'z'], [undefined as unknown, 'u', 1, 2],
    ];
    assert.equal(resultDigest(cols(['n', 's', 'x', 'b']), rows), byDefinition(['n', 's', 'x', 'b'], rows));
  });

  it('equals its definition when the answer spans many hash chunks, and for an empty answer', () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => [i, `name-${i}`, i % 3 === 0 ? null : i * 0.25]);
    assert.equal(resultDigest(cols(['id', 'name', 'v']), rows), byDefinition(['id', 'name', 'v'], rows));
    assert.equal(resultDigest(cols(['id']), []), byDefinition(['id'], []));
  });

  it('tells apart answers that differ in one cell, in row order, or in a column name', () => {
    const a = resultDigest(cols(['a', 'b']), [[1, 2], [3, 4]]);
    assert.notEqual(a, resultDigest(cols(['a', 'b']), [[1, 2], [3, 5]]));
    assert.notEqual(a, resultDigest(cols(['a', 'b']), [[3, 4], [1, 2]]));
    assert.notEqual(a, resultDigest(cols(['a', 'c']), [[1, 2], [3, 4]]));
  });
});
