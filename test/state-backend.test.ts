/**
 * StateBackend (src/state/backend.ts): one call opens a node's state, embedded or PostgreSQL,
 * with the same stores on either; an embedded state directory written by earlier versions
 * (budget tables named windows/charges/ledger) opens as it is and keeps its history.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openEmbeddedState, openPostgresState, type StateBackend } from '../src/state/backend.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
before(async () => { cluster = await startPostgres(); });
after(async () => { await cluster?.stop(); });

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-backend-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The budgets file exactly as the node:sqlite BudgetStore of earlier versions wrote it. */
const LEGACY_BUDGETS = `
CREATE TABLE budgets (subject TEXT NOT NULL, dataset TEXT NOT NULL, cap_nano INTEGER NOT NULL CHECK (cap_nano > 0),
  window_kind TEXT NOT NULL CHECK (window_kind IN ('none', 'calendar-month', 'rolling-days')),
  window_days INTEGER CHECK ((window_kind = 'rolling-days') = (window_days IS NOT NULL)),
  anchor_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (subject, dataset)) STRICT;
CREATE TABLE windows (subject TEXT NOT NULL, dataset TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER,
  spent_nano INTEGER NOT NULL DEFAULT 0 CHECK (spent_nano >= 0), PRIMARY KEY (subject, dataset, start_ms)) STRICT;
CREATE TABLE charges (charge_id TEXT PRIMARY KEY, subject TEXT NOT NULL, dataset TEXT NOT NULL, query_id TEXT NOT NULL,
  nano INTEGER NOT NULL CHECK (nano > 0), at_ms INTEGER NOT NULL, window_start INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('charged', 'released', 'refunded')), released_ms INTEGER, refunded_ms INTEGER,
  refund_reason TEXT, UNIQUE (subject, dataset, query_id)) STRICT;
CREATE TABLE ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
  charge_id TEXT NOT NULL REFERENCES charges (charge_id), subject TEXT NOT NULL, dataset TEXT NOT NULL, query_id TEXT NOT NULL,
  nano INTEGER NOT NULL CHECK (nano > 0), at_ms INTEGER NOT NULL, window_start INTEGER NOT NULL, reason TEXT,
  UNIQUE (charge_id, kind)) STRICT;
CREATE INDEX ledger_by_budget ON ledger (subject, dataset, seq);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
INSERT INTO budgets VALUES ('org:acme', 'patients', 1000000000, 'none', NULL, 0, 0);
INSERT INTO windows VALUES ('org:acme', 'patients', 0, NULL, 400000000);
INSERT INTO charges VALUES ('chg_old', 'org:acme', 'patients', 'q-old', 400000000, 1700000000000, 0, 'released', 1700000000001, NULL, NULL);
INSERT INTO ledger (kind, charge_id, subject, dataset, query_id, nano, at_ms, window_start, reason)
  VALUES ('charge', 'chg_old', 'org:acme', 'patients', 'q-old', 400000000, 1700000000000, 0, NULL);
`;

test('an embedded state directory written by an earlier version opens as it is: its budget history stays and new charges append to it', async (t) => {
  const dir = tempDir(t);
  mkdirSync(dir, { recursive: true });
  const legacy = new DatabaseSync(join(dir, 'budgets.sqlite'));
  legacy.exec(LEGACY_BUDGETS);
  legacy.close();

  const state = await openEmbeddedState({ dir });
  t.after(() => state.close());
  assert.equal(state.kind, 'embedded');
  assert.equal((await state.budgets.status('org:acme', 'patients'))!.spentRho, 0.4);
  const c = await state.budgets.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.5, queryId: 'q-new' });
  assert.equal(c.ok, true);
  const denied = await state.budgets.charge({ subject: 'org:acme', dataset: 'patients', rho: 0.2, queryId: 'q-over' });
  assert.equal(denied.ok, false, 'the old spend still counts against the cap');
  assert.deepEqual((await state.budgets.history()).map((e) => e.queryId), ['q-old', 'q-new']);
  await state.close();

  const raw = new DatabaseSync(join(dir, 'budgets.sqlite'));
  t.after(() => raw.close());
  const tables = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  // The earlier tables keep their names (no second copy); migration 6 adds the tight-accounting tables beside them.
  assert.deepEqual(tables, ['budget_losses', 'budget_targets', 'budgets', 'charges', 'ledger', 'windows'], 'no second copy of the tables under new names');
  assert.throws(() => raw.exec("DELETE FROM ledger WHERE query_id = 'q-old'"), /append-only/);
});

async function exercise(state: StateBackend): Promise<void> {
  await state.budgets.defineBudget({ subject: 'org:acme', dataset: 'd', capRho: 1, window: null });
  assert.equal((await state.budgets.charge({ subject: 'org:acme', dataset: 'd', rho: 0.25, queryId: 'q1' })).ok, true);
  await state.governance.vendors.register({ name: 'northwind', by: 'olivia' });
  assert.deepEqual((await state.governance.vendors.list()).map((o) => o.name), ['northwind']);
}

test('the embedded and the PostgreSQL state give the same stores, and two PostgreSQL nodes share them', async (t) => {
  const embedded = await openEmbeddedState({ dir: tempDir(t) });
  t.after(() => embedded.close());
  await exercise(embedded);
  assert.equal(embedded.identity, null, 'embedded identity stores keep their own files');
  assert.equal(embedded.logStorage, null, 'the embedded audit log keeps its append-only files');

  const a = await openPostgresState({ url: cluster.superuserUrl, schema: 'backend_ab' });
  const b = await openPostgresState({ url: cluster.superuserUrl, schema: 'backend_ab' });
  t.after(async () => { await a.close(); await b.close(); });
  await exercise(a);
  assert.equal(a.kind, 'postgres');
  assert.equal((await b.budgets.status('org:acme', 'd'))!.spentRho, 0.25, 'node b sees node a\'s charge');
  assert.deepEqual((await b.governance.vendors.list()).map((o) => o.name), ['northwind']);
  assert.ok(a.identity !== null && a.identity.dialect === 'postgres');
  assert.ok(a.logStorage !== null);
});
