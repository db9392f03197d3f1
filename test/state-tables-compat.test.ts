/**
 * Tables declared once (src/sql/tables/) must not change what earlier code wrote: a
 * PostgreSQL schema and embedded state files created by the DDL of schema version 4 (frozen in
 * test/fixtures/state-v4/, exactly the text that version of Gatehouse ran) still open and work,
 * and a schema the current code creates has the same tables, columns, types, collations,
 * constraints, indexes and append-only triggers as that frozen one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { ArtefactStore } from '../src/keys/artefacts.ts';
import { DataKeyStore } from '../src/keys/data-keys.ts';
import { LocalKeyring } from '../src/keys/keyring.ts';
import { openPostgresState } from '../src/state/backend.ts';
import { SCHEMA_VERSION } from '../src/sql/migrations.ts';
import { startPostgres, type PgCluster } from './support/postgres.ts';

const FIXTURES = new URL('./fixtures/state-v4/', import.meta.url).pathname;
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'gh-compat-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });

/** Creates an embedded file exactly as version 4 did. */
function legacyFile(path: string, ddlFile: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(fixture(ddlFile));
  db.close();
}

function sqliteColumns(path: string): Record<string, string[]> {
  const db = new DatabaseSync(path);
  const out: Record<string, string[]> = {};
  for (const t of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]) {
    out[t.name] = (db.prepare(`PRAGMA table_info(${t.name})`).all() as { name: string; type: string; notnull: number; pk: number }[])
      .map((c) => `${c.name} ${c.type}${c.notnull ? ' NOT NULL' : ''}${c.pk ? ' PK' : ''}`);
  }
  db.close();
  return out;
}

async function keyring(): Promise<LocalKeyring> {
  return LocalKeyring.create(join(mkdtempSync(join(dir, 'kr-')), 'keyring.json'), 'compat-test-passphrase');
}

describe('embedded state files written by schema version 4', () => {
  it('open with the current code: data keys are created and shredded, artefacts saved, read and destroyed', async () => {
    const state = join(dir, 'state-v4');
    legacyFile(join(state, 'data-keys.sqlite'), 'data-keys.sqlite.sql');
    legacyFile(join(state, 'artefacts', 'artefacts.sqlite'), 'artefacts.sqlite.sql');
    const kr = await keyring();
    const keys = DataKeyStore.open(join(state, 'data-keys.sqlite'), kr);
    const artefacts = ArtefactStore.open({ dir: join(state, 'artefacts'), keys });
    const put = await artefacts.put({ kind: 'result', owner: 'ivan', retainUntil: null, content: Buffer.from('rows'), mediaType: 'text/csv' });
    assert.equal((await artefacts.get(put.id)).content.toString(), 'rows');
    const cert = await artefacts.destroy([put.id], 'compat test');
    assert.equal(cert.count, 1);
    await assert.rejects(artefacts.get(put.id), { name: 'ArtefactDestroyed' });
    assert.equal((await keys.listDestroyed()).length, 1);
    artefacts.close();
    keys.close();
    kr.close();
  });

  it('have the same columns as files the current code creates', async () => {
    const fresh = join(dir, 'state-fresh');
    const kr = await keyring();
    const keys = DataKeyStore.open(join(fresh, 'data-keys.sqlite'), kr);
    const artefacts = ArtefactStore.open({ dir: join(fresh, 'artefacts'), keys });
    artefacts.close(); keys.close(); kr.close();
    await new Promise((r) => setTimeout(r, 50)); // the drivers close asynchronously
    const legacy = join(dir, 'state-legacy-columns');
    legacyFile(join(legacy, 'data-keys.sqlite'), 'data-keys.sqlite.sql');
    legacyFile(join(legacy, 'artefacts.sqlite'), 'artefacts.sqlite.sql');
    assert.deepEqual(sqliteColumns(join(fresh, 'data-keys.sqlite')), sqliteColumns(join(legacy, 'data-keys.sqlite')));
    assert.deepEqual(sqliteColumns(join(fresh, 'artefacts', 'artefacts.sqlite')), sqliteColumns(join(legacy, 'artefacts.sqlite')));
  });
});

describe('a PostgreSQL schema written by schema version 4', () => {
  let cluster: PgCluster;
  let admin: pg.Client;
  before(async () => {
    cluster = await startPostgres();
    admin = new pg.Client({ connectionString: cluster.superuserUrl });
    await admin.connect();
    // Exactly what migrate() of version 4 ran, in the schema "legacy_v4".
    await admin.query('CREATE SCHEMA legacy_v4');
    await admin.query('CREATE TABLE legacy_v4.schema_version (version integer PRIMARY KEY CHECK (version > 0), applied_at timestamptz NOT NULL DEFAULT now())');
    await admin.query(fixture('postgres.sql'));
    await admin.query('INSERT INTO legacy_v4.schema_version (version) SELECT generate_series(1, 4)');
  });
  after(async () => {
    await admin?.end();
    await cluster?.stop();
  });

  /** Everything a store depends on, with the schema name taken out. */
  async function describeSchema(schema: string): Promise<string[]> {
    const strip = (s: string): string => s.replaceAll(`"${schema}".`, '').replaceAll(`${schema}.`, '');
    const cols = await admin.query<{ d: string }>(`
      SELECT format('%s.%s #%s %s collate=%s null=%s default=%s identity=%s storage=%s', c.relname, a.attname, a.attnum,
             format_type(a.atttypid, a.atttypmod), coalesce(co.collname, '-'), NOT a.attnotnull, coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-'),
             a.attidentity, a.attstorage) AS d
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
       WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> 'schema_version'`, [schema]);
    const cons = await admin.query<{ d: string }>(`
      SELECT format('%s constraint %s', c.relname, pg_get_constraintdef(k.oid)) AS d
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relname <> 'schema_version'`, [schema]);
    const idx = await admin.query<{ d: string }>("SELECT indexdef AS d FROM pg_indexes WHERE schemaname = $1 AND tablename <> 'schema_version'", [schema]);
    const trg = await admin.query<{ d: string }>(`
      SELECT pg_get_triggerdef(t.oid) AS d FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND NOT t.tgisinternal`, [schema]);
    return [...cols.rows, ...cons.rows, ...idx.rows, ...trg.rows].map((r) => strip(r.d)).sort();
  }

  it('has exactly the tables, columns, constraints, indexes and triggers the current code creates', async () => {
    const state = await openPostgresState({ url: cluster.superuserUrl, schema: 'fresh' });
    await state.close();
    const [legacy, fresh] = await Promise.all([describeSchema('legacy_v4'), describeSchema('fresh')]);
    assert.ok(legacy.length > 200, `the description covers the schema (${legacy.length} lines)`);
    // Tables added after version 4 (5: the audit checkpoint anchor) are new; every v4 table is unchanged.
    const added = (l: string): boolean => l.includes('audit_checkpoints');
    assert.ok(fresh.some(added), 'the current code adds the checkpoint anchor');
    assert.deepEqual(fresh.filter((l) => !added(l)), legacy.filter((l) => !added(l)));
  });

  it('opens with the current code and serves data keys and artefacts', async () => {
    const state = await openPostgresState({ url: cluster.superuserUrl, schema: 'legacy_v4' });
    try {
      assert.equal(SCHEMA_VERSION, 5, 'opening migrated the v4 schema to the current version');
      assert.equal((await admin.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'legacy_v4' AND table_name = 'audit_checkpoints'")).rows[0].n, 1);
      const kr = await keyring();
      const keys = state.keys.dataKeys(kr);
      const artefacts = state.keys.artefacts(keys);
      const put = await artefacts.put({ kind: 'export', owner: 'ivan', retainUntil: null, content: Buffer.from('bytes'), mediaType: 'application/octet-stream' });
      assert.equal((await artefacts.get(put.id)).content.toString(), 'bytes');
      await artefacts.destroy([put.id], 'compat test');
      await assert.rejects(artefacts.get(put.id), { name: 'ArtefactDestroyed' });
      await assert.rejects(admin.query('DELETE FROM legacy_v4.destroyed_keys'), /append-only/);
      kr.close();
    } finally {
      await state.close();
    }
  });
});
