/**
 * Describe: the columns a query would return, for PostgreSQL clients' Describe and BI tools'
 * field lists — governed exactly like the query, and releasing nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { codeOf, demoFixture, KEYS, PURPOSE, type Fixture, type Who } from './helpers/workspace.ts';

let f: Fixture;
before(async () => { f = await demoFixture({ patients: 400 }); });
after(async () => { await f?.close(); });

const req = (who: Who, sql: string, purpose = PURPOSE[who]) => ({ credential: KEYS[who], sql, purpose, source: '127.0.0.1', channel: 'test' });

test('describe gives the governed columns and types of a query, returns no row and leaves one audit entry', async () => {
  const before = f.log.size;
  const d = await f.gh.describe(req('ivan', 'SELECT name, ssn, region FROM patients'));
  assert.deepEqual(d.columns.map((c) => c.name), ['name', 'ssn', 'region']);
  assert.ok(d.columns.every((c) => typeof c.type === 'string' && c.type.length > 0));
  assert.equal(f.log.size, before + 1);
  const e = f.log.leaf(before).entry;
  assert.equal(e.action, 'query.describe');
  assert.equal(e.decision, 'allow');
  assert.equal(e.rowsReturned, 0);
  const r = await f.gh.query(req('ivan', 'SELECT name, ssn, region FROM patients'));
  assert.deepEqual(d.columns, r.columns, 'the same names and types as the rows the query releases');
});

test('describe is refused exactly as the query would be', async () => {
  assert.equal(await codeOf(f.gh.describe(req('ivan', 'SELECT count(*) FROM encounters'))), 'POLICY_DENIED');
  assert.equal(await codeOf(f.gh.describe(req('rhea', 'SELECT name FROM patients'))), 'OBLIGATION_VIOLATION');
  assert.equal(await codeOf(f.gh.describe(req('ada', "SELECT read_text('/etc/passwd')"))), 'SQL_FUNCTION_NOT_ALLOWED');
});

test('describing a differentially private query spends no budget and gives the released column types', async () => {
  const sql = 'SELECT diagnosis, count(*) AS n FROM encounters GROUP BY diagnosis';
  const est0 = await f.gh.estimate(req('rhea', sql));
  const d = await f.gh.describe(req('rhea', sql));
  assert.deepEqual(d.columns.map((c) => c.name), ['diagnosis', 'n']);
  const est1 = await f.gh.estimate(req('rhea', sql));
  assert.equal(est1.privacy!.budget!.remainingRho, est0.privacy!.budget!.remainingRho, 'nothing was charged');
  const r = await f.gh.query(req('rhea', sql));
  assert.deepEqual(r.columns.map((c) => [c.name, c.type]), d.columns.map((c) => [c.name, c.type]), 'describe and the released result agree');
});
