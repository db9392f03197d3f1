/**
 * Tables declared once (src/sql/tables/) must not change what earlier code wrote: a
 * PostgreSQL schema and embedded state files created by the DDL of schema version 4 (frozen in
 * test/fixtures/state-v4/, exactly the text that version of Gatehouse ran) still open and work,
 * and a schema the current code creates has the same tables, columns, types, collations,
 * constraints, indexes and append-only triggers as that frozen one — on PostgreSQL, and in
 * every embedded file (data keys, artefacts, each identity store, governance).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { GovernanceStore } from '../src/governance/store.ts';
import { ApiKeyStore } from '../src/identity/api-keys.ts';
import { ConnectionPasswordStore } from '../src/identity/connection-passwords.ts';
import { ElevationStore, type ElevationStoreSettings } from '../src/identity/elevation.ts';
import { SessionService } from '../src/identity/session.ts';
import { UserStore } from '../src/identity/user-store.ts';
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

/**
 * Everything SQLite records of a file's tables and indexes: each CREATE statement with its
 * whitespace taken out (column names, declared types, defaults, CHECK and REFERENCES clauses,
 * STRICT, WITHOUT ROWID, partial-index conditions), and what the engine derived from it
 * (columns, keys, foreign keys, indexes and their columns).
 */
function sqliteSchema(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const out: string[] = [];
    const objects = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all() as { type: string; name: string; tbl_name: string; sql: string | null }[];
    for (const o of objects) {
      out.push(`${o.type} ${o.name} on ${o.tbl_name}: ${(o.sql ?? '').replace(/\s+/g, '')}`);
      if (o.type !== 'table') continue;
      const list = db.prepare('SELECT strict, wr FROM pragma_table_list WHERE name = ?').get(o.name) as { strict: number; wr: number };
      out.push(`${o.name} strict=${list.strict} without_rowid=${list.wr}`);
      for (const c of db.prepare('SELECT name, type, "notnull" AS nn, dflt_value, pk FROM pragma_table_info(?)').all(o.name) as { name: string; type: string; nn: number; dflt_value: string | null; pk: number }[]) {
        out.push(`${o.name}.${c.name} ${c.type} notnull=${c.nn} default=${c.dflt_value ?? '-'} pk=${c.pk}`);
      }
      for (const f of db.prepare('SELECT "table" AS t, "from" AS f, "to" AS k, on_delete FROM pragma_foreign_key_list(?)').all(o.name) as { t: string; f: string; k: string; on_delete: string }[]) {
        out.push(`${o.name}.${f.f} references ${f.t}(${f.k}) on delete ${f.on_delete}`);
      }
      for (const i of db.prepare('SELECT name, "unique" AS u, origin, partial FROM pragma_index_list(?)').all(o.name) as { name: string; u: number; origin: string; partial: number }[]) {
        const cols = (db.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').all(i.name) as { name: string }[]).map((c) => c.name).join(', ');
        out.push(`${o.name} index ${i.origin === 'c' ? i.name : `(${i.origin})`} unique=${i.u} partial=${i.partial} (${cols})`);
      }
    }
    return out.sort();
  } finally {
    db.close();
  }
}

const PASSPHRASE = 'compat-test-passphrase';
const PASSWORD = 'tidal-orbit-velvet-9';
const ELEVATION: ElevationStoreSettings = { isApprover: (who) => who === 'olga', maxDurationMinutes: 120 };
const IDENTITY_FILES = ['users', 'sessions', 'api-keys', 'connection-passwords', 'elevation'] as const;

/** Opens every embedded identity store on the files in `state` (named as the fixtures are). */
async function identityStores(state: string) {
  mkdirSync(state, { recursive: true });
  const file = (name: (typeof IDENTITY_FILES)[number]): string => join(state, `${name}.sqlite`);
  const users = await UserStore.open(file('users'), { passphrase: PASSPHRASE });
  const sessions = await SessionService.open({ path: file('sessions'), keyDir: join(state, 'session-keys'), passphrase: PASSPHRASE, issuer: 'https://gatehouse.test', audience: 'gatehouse' });
  const apiKeys = ApiKeyStore.open(file('api-keys'));
  const connectionPasswords = ConnectionPasswordStore.open(file('connection-passwords'));
  const elevation = ElevationStore.open({ path: file('elevation'), ...ELEVATION });
  const close = async (): Promise<void> => {
    await Promise.all([users.close(), sessions.close(), apiKeys.close(), connectionPasswords.close(), elevation.close()]);
    await new Promise((r) => setTimeout(r, 50)); // the drivers close asynchronously
  };
  return { users, sessions, apiKeys, connectionPasswords, elevation, close };
}

/** Uses every governance table: vendors, agreements, requests and grants, findings and their notes, retention, the gate's settings. */
async function exerciseGovernance(gov: GovernanceStore): Promise<void> {
  await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
  const { agreement } = await gov.agreements.create({
    kind: 'DPA', title: 'Northwind research DPA', parties: { ours: 'st-avery', partner: 'northwind-research' },
    effectiveFrom: '2020-01-01', endsOn: '2099-12-31', datasets: ['patients'], purposes: ['research'],
    clauses: { ip: 'Results belong to St Avery', termination: { destruction: 'required', withinDays: 30 }, resultRetentionDays: 90 }, by: 'olivia',
  }, { knownDatasets: new Set(['patients']) });
  const { request } = await gov.grants.request({ principalId: 'rhea', org: 'northwind-research', dataset: 'patients', purpose: 'research', days: 30, justification: 'cohort study 12' });
  const { grant } = await gov.grants.approve(request.id, { approverId: 'olivia', isOwner: () => true, agreementId: agreement.id });
  assert.equal((await gov.grants.get(grant.id))!.agreementId, agreement.id);
  const { finding } = await gov.findings.create({ title: 'MFA not enforced', severity: 'high', owner: 'olivia', dueDate: '2099-01-01', notes: 'first', by: 'audrey' });
  await gov.findings.setStatus(finding.id, { status: 'closed', by: 'olivia', note: 'second' });
  assert.deepEqual((await gov.findings.get(finding.id))!.notes.map((n) => n.text), ['first', 'second'], 'notes read back in the order they were written');
  await gov.retention.setRule({ kind: 'result', scope: '*', days: 30, by: 'olivia' });
  assert.deepEqual((await gov.retention.rules()).map((r) => r.days), [30]);
  await gov.gate.setRequirements('regulated', { maxVendorTier: 2, courses: [], documents: [], by: 'olivia' });
  assert.equal((await gov.gate.requirements('regulated')).maxVendorTier, 2);
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

describe('embedded identity and governance files written by schema version 4', () => {
  it('open with the current code: users log in, sessions refresh, keys and connection passwords verify, elevations are granted', async () => {
    const state = join(dir, 'identity-v4');
    for (const name of IDENTITY_FILES) legacyFile(join(state, `${name}.sqlite`), `${name}.sqlite.sql`);
    const s = await identityStores(state);
    try {
      await s.users.createUser('ivan', PASSWORD, { by: 'admin:olu' });
      assert.equal((await s.users.verifyPassword('ivan', PASSWORD)).principalId, 'ivan');
      await assert.rejects(s.users.verifyPassword('ivan', 'wrong-password-123'), { detail: 'IDENTITY_CREDENTIALS_INVALID' });
      const issued = await s.sessions.issue('ivan', { amr: ['pwd'] });
      assert.equal((await s.sessions.verify(issued.accessToken)).principalId, 'ivan');
      const refreshed = await s.sessions.refresh(issued.refreshToken);
      assert.equal((await s.sessions.verify(refreshed.accessToken)).principalId, 'ivan');
      await assert.rejects(s.sessions.refresh(issued.refreshToken), 'a refresh token is used once');
      await assert.rejects(s.sessions.verify(refreshed.accessToken), { detail: 'SESSION_REVOKED' }, 'its reuse revokes the session');
      const { key, id } = await s.apiKeys.create({ principalId: 'svc-etl', scopes: { actions: ['query'] } });
      assert.deepEqual(await s.apiKeys.verify(key), { id, principalId: 'svc-etl', scopes: { actions: ['query'] } });
      const cp = await s.connectionPasswords.issue('ivan', { mfaAt: null, expiresAt: Math.floor(Date.now() / 1000) + 3600 });
      assert.equal((await s.connectionPasswords.resolve(cp.id)).principalId, 'ivan');
      const { request } = await s.elevation.request({ principalId: 'rhea', role: 'dataset-admin', purpose: 'incident-review', durationMinutes: 30, justification: 'investigate ticket INC-1234' });
      await assert.rejects(s.elevation.approve(request.id, 'rhea'), 'the requester cannot approve her own elevation');
      const { grant } = await s.elevation.approve(request.id, 'olga');
      assert.deepEqual((await s.elevation.activeElevations('rhea')).map((g) => g.id), [grant.id]);
    } finally {
      await s.close();
    }
  });

  it('open with the current code: every governance table is written and read back', async () => {
    const path = join(dir, 'governance-v4', 'governance.db');
    legacyFile(path, 'governance.sqlite.sql');
    const gov = GovernanceStore.open(path);
    try {
      await exerciseGovernance(gov);
    } finally {
      await gov.close();
    }
  });

  it('are exactly the tables, columns, types, constraints and indexes the current code creates', async () => {
    const fresh = join(dir, 'identity-fresh');
    await (await identityStores(fresh)).close();
    const legacy = join(dir, 'identity-legacy-schema');
    for (const name of IDENTITY_FILES) legacyFile(join(legacy, `${name}.sqlite`), `${name}.sqlite.sql`);
    for (const name of IDENTITY_FILES) {
      const [now, then] = [sqliteSchema(join(fresh, `${name}.sqlite`)), sqliteSchema(join(legacy, `${name}.sqlite`))];
      assert.ok(now.length > 5, `${name}: the description covers the file`);
      assert.deepEqual(now, then, `${name}.sqlite`);
    }
    const gov = GovernanceStore.open(join(dir, 'governance-fresh.db'));
    await gov.close();
    await new Promise((r) => setTimeout(r, 50));
    legacyFile(join(dir, 'governance-legacy.db'), 'governance.sqlite.sql');
    const [now, then] = [sqliteSchema(join(dir, 'governance-fresh.db')), sqliteSchema(join(dir, 'governance-legacy.db'))];
    assert.ok(now.length > 200, `the governance description covers the file (${now.length} lines)`);
    assert.deepEqual(now, then);
    const version = (p: string): number => { const db = new DatabaseSync(p); try { return (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version; } finally { db.close(); } };
    assert.equal(version(join(dir, 'governance-fresh.db')), version(join(dir, 'governance-legacy.db')));
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
    // Tables added after version 4 (5: the audit checkpoint anchor; 6: privacy-loss targets and
    // losses; 7: erasures; 8: jobs, airlock and attestation) are new; every v4 table is unchanged.
    const added = (l: string): boolean => ['audit_checkpoints', 'budget_targets', 'budget_losses', 'erasures', 'jobs', 'job_', 'airlock_', 'attestation_'].some((t) => l.includes(t));
    assert.ok(fresh.some(added), 'the current code adds the checkpoint anchor');
    assert.deepEqual(fresh.filter((l) => !added(l)), legacy.filter((l) => !added(l)));
  });

  it('opens with the current code and serves data keys, artefacts, governance, users and elevations', async () => {
    const state = await openPostgresState({ url: cluster.superuserUrl, schema: 'legacy_v4' });
    try {
      assert.equal(SCHEMA_VERSION, 8, 'opening migrated the v4 schema to the current version');
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
      await exerciseGovernance(state.governance);
      const users = await UserStore.openOn(state.identity!, { passphrase: PASSPHRASE });
      await users.createUser('ivan', PASSWORD, { by: 'admin:olu' });
      assert.equal((await users.verifyPassword('ivan', PASSWORD)).principalId, 'ivan');
      const elevation = ElevationStore.openOn(state.identity!, ELEVATION);
      const { request } = await elevation.request({ principalId: 'rhea', role: 'dataset-admin', purpose: 'incident-review', durationMinutes: 30, justification: 'investigate ticket INC-1234' });
      assert.equal((await elevation.approve(request.id, 'olga')).grant.principalId, 'rhea');
    } finally {
      await state.close();
    }
  });
});
