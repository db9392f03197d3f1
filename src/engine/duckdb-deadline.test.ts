/**
 * The engine's deadline holds however early it passes. DuckDB's interrupt only stops a
 * statement that is already running; one that lands while the statement is still being
 * prepared or waits for the engine's thread used to be lost, and the statement then ran to
 * completion and was answered. A partner must never get an answer past the deadline (or
 * after a cancel), nor a connection whose next statement is interrupted by a stale one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { DuckDbEngine } from './duckdb.ts';
import { emptyEngineWorkspace } from '../../test/helpers/engine-workspace.ts';

const SLOW = 'SELECT sum(i * i) AS s FROM range(30000000) t(i)';

describe('the DuckDB engine deadline', () => {
  let dir: string;
  let engine: DuckDbEngine;
  before(async () => {
    const ws = emptyEngineWorkspace('deadline');
    dir = ws.dir;
    engine = await DuckDbEngine.open(ws, { poolSize: 1 });
  });
  after(async () => { await engine?.close(); rmSync(dir, { recursive: true, force: true }); });

  it('refuses a statement cancelled before it started instead of running it to completion', async () => {
    const signal = AbortSignal.abort();
    await assert.rejects(engine.run(SLOW, { timeoutMs: 20_000, signal }), (e: { code?: string }) => e.code === 'QUERY_TIMEOUT');
  });

  it('stops every statement whose 1 ms deadline passes, twenty times in a row, on one connection', async () => {
    for (let i = 0; i < 20; i++) {
      await assert.rejects(engine.run(`${SLOW} WHERE i <> ${i}`, { timeoutMs: 1 }), (e: { code?: string }) => e.code === 'QUERY_TIMEOUT', `run ${i}`);
    }
  });

  it('leaves the connection usable: the next statement within its deadline answers', async () => {
    const r = await engine.run('SELECT 41 + 1 AS n', { timeoutMs: 20_000 });
    assert.deepEqual(r.rows, [[42]]);
  });
});
