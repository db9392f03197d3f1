/**
 * Binding a join written in WHERE over many tables (sqllogictest's select5 joins up to 64
 * tables, naming every column unqualified: `FROM t1, ..., t64 WHERE a51 = b31 AND ...`) takes
 * time linear in the query, not in (names × columns in scope): the binder looks names up
 * through a per-scope index. Measured as a ratio between two sizes on the same machine (the
 * minimum of several runs each), so machine load cancels out: 8× the tables must cost well
 * under the 64× a search of every column per name costs.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ColumnDef, DatasetDef } from '../src/model/types.ts';
import { bindQuery } from '../src/query/bind.ts';
import { loadParser, parseSql } from '../src/query/parse.ts';

const col = (name: string): ColumnDef => ({ name, type: 'INTEGER', classification: 'internal', tags: [], mask: null, bounds: null, description: null });
const datasets = new Map<string, DatasetDef>();
for (let i = 1; i <= 400; i++) datasets.set(`t${i}`, { name: `t${i}`, columns: [col(`a${i}`), col(`b${i}`), col(`c${i}`), col(`d${i}`)] } as unknown as DatasetDef);
const catalog = { dataset: (n: string) => datasets.get(n) };

/** A chain join of n tables written in WHERE, every column unqualified. */
const chain = (n: number): string => {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  return `SELECT ${ids.map((i) => `d${i}`).join(', ')} FROM ${ids.map((i) => `t${i}`).join(', ')} WHERE ${ids.slice(1).map((i) => `a${i} = b${i - 1}`).join(' AND ')}`;
};

const fastest = (sql: string): number => {
  const parsed = parseSql(sql);
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    bindQuery(parsed, catalog);
    best = Math.min(best, performance.now() - t);
  }
  return best;
};

describe('binding joins written in WHERE over many tables', () => {
  before(async () => { await loadParser(); });

  it('binds every unqualified column of a 400-table join to its one table', () => {
    const bound = bindQuery(parseSql(chain(400)), catalog);
    assert.equal(bound.datasets.length, 400);
    assert.equal(bound.query.targets.length, 400);
    const t = bound.query.targets[399]!.expr;
    assert.ok(t.kind === 'column' && t.relation === 't400' && t.name === 'd400');
  });

  it('grows about linearly with the number of tables: 8× the tables costs well under 64×', () => {
    fastest(chain(50)); fastest(chain(400)); // warm the JIT
    const small = fastest(chain(50)), large = fastest(chain(400));
    assert.ok(large / small < 24, `50 tables ${small.toFixed(3)} ms, 400 tables ${large.toFixed(3)} ms: ${(large / small).toFixed(1)}×`);
  });

  it('still refuses an unqualified name that two tables share, naming both', () => {
    const twin = new Map([...datasets, ['u1', { name: 'u1', columns: [col('a1'), col('z')] } as unknown as DatasetDef]]);
    assert.throws(() => bindQuery(parseSql('SELECT a1 FROM t1, u1'), { dataset: (n) => twin.get(n) }), (e: Error & { code?: string }) => e.code === 'SQL_AMBIGUOUS_COLUMN' && /t1\.a1 or u1\.a1/.test(e.message + JSON.stringify(e)));
  });
});
