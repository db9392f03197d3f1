/**
 * Gatehouse's state in PostgreSQL survives a crash of PostgreSQL: what a caller was told is
 * recorded (audit entries, budget charges) is still there after `pg_ctl stop -m immediate`,
 * even on a server tuned with synchronous_commit = off; and a server whose settings make that
 * impossible (fsync or full_page_writes off) is refused at open, naming the setting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { TransparencyLog } from '../src/audit/log.ts';
import { TEST_PASSPHRASE, record } from '../src/audit/testing/fixtures.ts';
import { openPostgresState } from '../src/state/postgres.ts';
import { PgDriver } from '../src/sql/postgres.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

let cluster: PgCluster;
let dir: string;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: cluster.superuserUrl });
  await c.connect();
  try { await c.query(sql); } finally { await c.end(); }
}

/** True when a new connection sees each setting as `settings` asks (null: no longer from the configuration file). */
async function applied(settings: Record<string, string | null>): Promise<boolean> {
  const c = new pg.Client({ connectionString: cluster.superuserUrl });
  await c.connect();
  try {
    for (const [k, v] of Object.entries(settings)) {
      const r = await c.query<{ setting: string; source: string }>('SELECT current_setting($1) AS setting, source FROM pg_settings WHERE name = $1', [k]);
      const row = r.rows[0]!;
      if (v === null ? row.source === 'configuration file' : row.setting !== v) return false;
    }
    return true;
  } finally { await c.end(); }
}

async function setSystem(settings: Record<string, string | null>): Promise<void> {
  for (const [k, v] of Object.entries(settings)) await admin(v === null ? `ALTER SYSTEM RESET ${k}` : `ALTER SYSTEM SET ${k} = '${v}'`);
  await admin('SELECT pg_reload_conf()');
  // The postmaster rereads its configuration when its signal arrives, and new connections then
  // start with it: poll with new connections until they see it, rather than sleep a fixed 200 ms.
  const deadline = Date.now() + 5000;
  while (!(await applied(settings))) {
    if (Date.now() > deadline) assert.fail(`PostgreSQL did not apply ${JSON.stringify(settings)} within 5 s of pg_reload_conf()`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

before(async () => {
  cluster = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'gh-durability-'));
});
after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a server that cannot keep a commit', () => {
  it('is refused at open when fsync is off, with a message that names the setting and how to fix it', async () => {
    await setSystem({ fsync: 'off' });
    try {
      await assert.rejects(openPostgresState({ url: cluster.superuserUrl, schema: 'refused_fsync' }), (e: Error & { code?: string; detail?: string }) => {
        assert.equal(e.detail, 'STATE_CONFIG_INVALID');
        assert.match(e.message, /fsync=off/);
        assert.match(e.message, /Set fsync = on/);
        assert.doesNotMatch(e.message, new RegExp(cluster.superuserPassword));
        return true;
      });
      // Nothing was created: the refusal comes before the migrations.
      const c = new pg.Client({ connectionString: cluster.superuserUrl });
      await c.connect();
      const r = await c.query("SELECT 1 FROM pg_namespace WHERE nspname = 'refused_fsync'");
      await c.end();
      assert.equal(r.rowCount, 0);
    } finally {
      await setSystem({ fsync: null });
    }
  });

  it('is refused at open when full_page_writes is off', async () => {
    await setSystem({ full_page_writes: 'off' });
    try {
      await assert.rejects(openPostgresState({ url: cluster.superuserUrl, schema: 'refused_fpw' }), /full_page_writes=off.*Set full_page_writes = on/s);
    } finally {
      await setSystem({ full_page_writes: null });
    }
  });

  it('opens anyway when a test explicitly allows unsafe durability', async () => {
    await setSystem({ fsync: 'off' });
    try {
      const state = await openPostgresState({ url: cluster.superuserUrl, schema: 'unsafe_allowed', allowUnsafeDurability: true });
      await state.close();
    } finally {
      await setSystem({ fsync: null });
    }
  });
});

describe('a crash of PostgreSQL', () => {
  it('forces synchronous_commit on inside every write transaction, even on a connection whose default is off', async () => {
    const pool = new pg.Pool({ connectionString: cluster.superuserUrl, max: 1 });
    const state = await openPostgresState({ url: cluster.superuserUrl, schema: 'sync_local' });
    try {
      const driver = new PgDriver(pool, { schema: 'sync_local' });
      assert.equal((await pool.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]!.s, 'off', 'the cluster default is off');
      for (const mode of ['write', 'serializable'] as const) {
        const inside = await driver.transaction((q) => q.get<{ s: string }>('SELECT current_setting(\'synchronous_commit\') AS s'), { mode });
        assert.equal(inside?.s, 'on', mode);
      }
    } finally {
      await state.close();
      await pool.end();
    }
  });

  it('keeps every audit entry and budget charge that was acknowledged before the crash', async () => {
    // Make an asynchronous commit lose data for sure: the WAL writer flushes only every 10 s.
    await setSystem({ wal_writer_delay: '10s' });
    const schema = 'crash';
    let state = await openPostgresState({ url: cluster.superuserUrl, schema, maxConnections: 4 });
    let log = await TransparencyLog.openOn(state.auditStorage, {
      keyDir: join(dir, 'keys'), pseudonymKeyDir: join(dir, 'pseudonym-keys'), passphrase: TEST_PASSPHRASE,
    });
    await state.budgets.defineBudget({ subject: 'org:partner', dataset: 'claims', capRho: 100, window: null });
    let acknowledgedEntries = 0;
    let acknowledgedCharges = 0;
    for (let i = 0; i < 40; i++) {
      await log.append(record(i));
      acknowledgedEntries++;
      await state.budgets.charge({ subject: 'org:partner', dataset: 'claims', rho: 0.5, queryId: `q-${i}` });
      acknowledgedCharges++;
    }
    const sizeBefore = log.size;
    await cluster.crash();
    await log.close().catch(() => undefined);
    await state.close().catch(() => undefined);
    await cluster.restart();
    try {
      state = await openPostgresState({ url: cluster.superuserUrl, schema, maxConnections: 4 });
      log = await TransparencyLog.openOn(state.auditStorage, {
        keyDir: join(dir, 'keys'), pseudonymKeyDir: join(dir, 'pseudonym-keys'), passphrase: TEST_PASSPHRASE,
      });
      assert.ok(acknowledgedEntries > 0 && sizeBefore >= acknowledgedEntries);
      assert.equal(log.size, sizeBefore, 'every acknowledged audit entry survived the crash');
      const charges = (await state.budgets.history({ subject: 'org:partner', dataset: 'claims' })).filter((e) => e.kind === 'charge');
      assert.equal(charges.length, acknowledgedCharges, 'every acknowledged budget charge survived the crash');
      await log.close();
      await state.close();
    } finally {
      await setSystem({ wal_writer_delay: null });
    }
  });
});
