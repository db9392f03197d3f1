/**
 * The state SQL driver's one retry policy (src/sql/retry.ts), provoked for real: a
 * PostgreSQL serialization failure (40001) from a concurrent committed update, and SQLITE_BUSY
 * from another connection holding the write lock. Each is retried and the transaction then
 * succeeds; with retries turned off the same race surfaces as STATE_BUSY and changes nothing.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { StateBusy } from '../src/sql/errors.ts';
import { PgDriver } from '../src/sql/postgres.ts';
import { SqliteDriver } from '../src/sql/sqlite.ts';
import { backoffMs, DEFAULT_RETRY, isRetryable } from '../src/sql/retry.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
let pool: pg.Pool;
let schemas = 0;

before(async () => {
  cluster = await startPostgres();
  pool = new pg.Pool({ connectionString: cluster.superuserUrl, max: 4 });
});
after(async () => {
  await pool?.end();
  await cluster?.stop();
});

async function counterSchema(): Promise<string> {
  const schema = `retry_${++schemas}`;
  await pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.counters (id integer PRIMARY KEY, n bigint NOT NULL); INSERT INTO ${schema}.counters VALUES (1, 0)`);
  return schema;
}

/**
 * A SERIALIZABLE transaction reads the counter, then another session commits an update to the
 * same row (only during the first attempt), then the transaction writes: PostgreSQL refuses the
 * write with 40001 "could not serialize access due to concurrent update".
 */
async function raceOnce(driver: PgDriver, schema: string, attempts: { n: number }): Promise<number> {
  return driver.transaction(async (q) => {
    attempts.n++;
    const row = await q.get<{ n: number }>('SELECT n FROM {counters} WHERE id = 1');
    if (attempts.n === 1) await pool.query(`UPDATE ${schema}.counters SET n = n + 100 WHERE id = 1`);
    await q.run('UPDATE {counters} SET n = ? WHERE id = 1', [row!.n + 1]);
    return row!.n + 1;
  }, { mode: 'serializable' });
}

test('a real PostgreSQL serialization failure is rolled back, re-run and then succeeds on the fresh snapshot', async () => {
  const schema = await counterSchema();
  const driver = new PgDriver(pool, { schema });
  const attempts = { n: 0 };
  const out = await raceOnce(driver, schema, attempts);
  assert.equal(attempts.n, 2, 'the first attempt lost the race, the second won');
  assert.equal(out, 101, 'the re-run read the concurrent update instead of overwriting it');
  assert.equal(Number((await pool.query(`SELECT n FROM ${schema}.counters`)).rows[0].n), 101);
});

test('with no retries allowed the same PostgreSQL race fails with STATE_BUSY and the losing write is not applied', async () => {
  const schema = await counterSchema();
  const driver = new PgDriver(pool, { schema, retry: { maxRetries: 0 } });
  const attempts = { n: 0 };
  await assert.rejects(raceOnce(driver, schema, attempts), (e: unknown) => e instanceof StateBusy && e.detail === 'STATE_BUSY' && (e.cause as { code?: string }).code === '40001');
  assert.equal(attempts.n, 1);
  assert.equal(Number((await pool.query(`SELECT n FROM ${schema}.counters`)).rows[0].n), 100, 'only the concurrent update is there');
});

function tempFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-retry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'state.sqlite');
}

test('a real SQLITE_BUSY from another connection holding the write lock is retried until the lock is released', async (t) => {
  const path = tempFile(t);
  const driver = await SqliteDriver.open(path, { busyTimeoutMs: 0 });
  t.after(() => driver.close());
  await driver.exec('CREATE TABLE IF NOT EXISTS counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counters VALUES (1, 0)');
  const blocker = new DatabaseSync(path);
  blocker.exec('BEGIN IMMEDIATE');
  let released = false;
  setTimeout(() => { blocker.exec('ROLLBACK'); released = true; blocker.close(); }, 40);
  let bodyRuns = 0;
  await driver.transaction(async (q) => {
    bodyRuns++;
    assert.equal(released, true, 'the body only runs once the lock is ours');
    await q.run('UPDATE counters SET n = n + 1 WHERE id = 1');
  }, { mode: 'write' });
  assert.equal(bodyRuns, 1);
  assert.equal((await driver.get<{ n: number }>('SELECT n FROM counters'))!.n, 1);
});

test('with no retries allowed a held SQLite write lock fails the transaction with STATE_BUSY and nothing is written', async (t) => {
  const path = tempFile(t);
  const driver = await SqliteDriver.open(path, { busyTimeoutMs: 0, retry: { maxRetries: 0 } });
  t.after(() => driver.close());
  await driver.exec('CREATE TABLE IF NOT EXISTS counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counters VALUES (1, 0)');
  const blocker = new DatabaseSync(path);
  blocker.exec('BEGIN IMMEDIATE');
  try {
    await assert.rejects(driver.transaction(async (q) => { await q.run('UPDATE counters SET n = n + 1 WHERE id = 1'); }, { mode: 'write' }),
      (e: unknown) => e instanceof StateBusy && ((e.cause as { errcode?: number }).errcode! & 0xff) === 5);
  } finally {
    blocker.exec('ROLLBACK');
    blocker.close();
  }
  assert.equal((await driver.get<{ n: number }>('SELECT n FROM counters'))!.n, 0);
});

test('only lost races are retried: constraint violations and the body\'s own errors are not, and backoff stays within its ceiling', () => {
  assert.equal(isRetryable(Object.assign(new Error('x'), { code: '40001', severity: 'ERROR' })), true);
  assert.equal(isRetryable(Object.assign(new Error('x'), { code: '40P01', severity: 'ERROR' })), true);
  assert.equal(isRetryable(Object.assign(new Error('x'), { code: '23505', severity: 'ERROR' })), false);
  assert.equal(isRetryable(Object.assign(new Error('x'), { code: '23505', severity: 'ERROR' }), true), true, 'a unique race under SERIALIZABLE is a conflict');
  assert.equal(isRetryable(Object.assign(new Error('x'), { errcode: 19 })), false, 'SQLITE_CONSTRAINT');
  assert.equal(isRetryable(Object.assign(new Error('x'), { errcode: 5 | (3 << 8) })), true, 'SQLITE_BUSY_SNAPSHOT');
  assert.equal(isRetryable(Object.assign(new Error('40001'), { code: '40001' })), false, 'a body error that merely carries the code is not a server error');
  for (let i = 0; i < 40; i++) {
    const w = backoffMs(DEFAULT_RETRY, i);
    assert.ok(w >= 0 && w < Math.min(DEFAULT_RETRY.capMs, DEFAULT_RETRY.baseMs * 2 ** i));
  }
});
