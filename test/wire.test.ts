/**
 * The PostgreSQL wire front end to end: the real `psql` binary and the `pg` driver against
 * a real Gatehouse (demo workspace), compared with the same queries over the one path
 * in-process (as HTTP runs them): same rows, same governance, same kind of audit entries.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import type { WireServer } from '../src/wire/server.ts';
import { demoFixture, KEYS, PURPOSE, type Fixture, type Who } from './helpers/workspace.ts';

const run = promisify(execFile);

/** Records every audit entry the pipeline writes (in order). */
export class RecordingSink implements AuditSink {
  readonly entries: AuditRecord[] = [];
  async append(r: AuditRecord) { this.entries.push(r); return { auditId: String(this.entries.length - 1) }; }
  async close() {}
  since(n: number): AuditRecord[] { return this.entries.slice(n); }
}

let fx: Fixture<null, WireServer>;
let wire: WireServer;
const audit = new RecordingSink();
const passwords: Partial<Record<Who, string>> = {};

before(async () => {
  fx = await demoFixture({ patients: 1500, audit, wire: true });
  wire = fx.wire;
  for (const who of ['ada', 'ivan', 'rhea'] as const) {
    const p = await fx.gh.issueConnectionPassword({ credential: KEYS[who], source: '127.0.0.1', channel: 'test' });
    assert.equal(p.username, who);
    passwords[who] = p.password;
  }
});
after(async () => { await fx.close(); });

async function psql(who: Who, sql: string, opts: { purpose?: string | null; password?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const purpose = opts.purpose === undefined ? PURPOSE[who] : opts.purpose;
  try {
    const r = await run('/usr/bin/psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(wire.port), '-U', who, '-d', 'gatehouse', '-c', sql], {
      env: { PATH: process.env.PATH ?? '/usr/bin', PGPASSWORD: opts.password ?? passwords[who]!, PGSSLMODE: 'prefer', PGCONNECT_TIMEOUT: '10', ...(purpose ? { PGOPTIONS: `-c gatehouse.purpose=${purpose}` } : {}) },
      timeout: 20_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function client(who: Who, purpose: string | null = PURPOSE[who]): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: wire.port, user: who, password: passwords[who], database: 'gatehouse', ...(purpose ? { options: `-c gatehouse.purpose=${purpose}` } : {}) });
}

describe('wire protocol with psql', () => {
  it('returns the same governed rows as the one path in-process, with a pgwire audit entry', async () => {
    const sql = 'SELECT region, count(*) AS n FROM patients GROUP BY region ORDER BY region';
    const direct = await fx.query('ada', sql);
    const n = audit.entries.length;
    const r = await psql('ada', sql);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), direct.rows.map((row) => row.join('|')).join('\n'));
    const entries = audit.since(n).filter((e) => e.action === 'query');
    assert.equal(entries.length, 1);
    assert.equal(entries[0]!.channel, 'pgwire');
    assert.equal(entries[0]!.principal, 'ada');
    assert.equal(entries[0]!.decision, 'allow');
    assert.equal(entries[0]!.purpose, 'operations');
  });

  it('applies masks and row filters per principal exactly as the path does', async () => {
    const ssn = await psql('ivan', 'SELECT ssn FROM patients ORDER BY patient_id LIMIT 3');
    assert.equal(ssn.code, 0, ssn.stderr);
    const lines = ssn.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    for (const l of lines) assert.match(l, /^\*+\d{4}$/);
    const regions = await psql('ivan', 'SELECT DISTINCT region FROM patients');
    assert.equal(regions.stdout.trim(), 'us-east');
  });

  it('refuses a policy denial with SQLSTATE 42501 and the reason, and audits it', async () => {
    const n = audit.entries.length;
    const r = await psql('rhea', 'SELECT count(*) FROM patients', { purpose: 'marketing' });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /access denied/);
    assert.match(r.stderr, /regulated data may not be used for marketing/);
    const e = audit.since(n).find((x) => x.action === 'query');
    assert.equal(e?.decision, 'deny');
    assert.equal(e?.channel, 'pgwire');
  });

  it('fails a wrong password and an unknown user the same way, and audits both', async () => {
    const n = audit.entries.length;
    const wrong = await psql('ada', 'SELECT 1', { password: 'not-the-password' });
    const unknown = await run('/usr/bin/psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(wire.port), '-U', 'mallory', '-d', 'gatehouse', '-c', 'SELECT 1'], {
      env: { PATH: '/usr/bin', PGPASSWORD: 'whatever', PGSSLMODE: 'disable' }, timeout: 20_000,
    }).then(() => ({ stderr: '', code: 0 }), (e: { stderr: string; code: number }) => e);
    assert.notEqual(wrong.code, 0);
    assert.notEqual(unknown.code, 0);
    assert.match(wrong.stderr, /password authentication failed for user "ada"/);
    assert.match(unknown.stderr, /password authentication failed for user "mallory"/);
    const fails = audit.since(n).filter((e) => e.action === 'pgwire.auth');
    assert.equal(fails.length, 2);
    assert.ok(fails.every((e) => e.decision === 'deny' && e.errorCode === 'AUTH_INVALID' && e.channel === 'pgwire'));
  });

  it('takes the purpose from SET and shows it', async () => {
    const r = await psql('rhea', "SET gatehouse.purpose = 'research'; SHOW gatehouse.purpose", { purpose: null });
    // psql -c with two statements sends one Query message: refused as a whole.
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /2 statements were sent in one query; nothing was executed/);
    const c = client('rhea', null);
    await c.connect();
    try {
      await assert.rejects(c.query('SELECT count(*) FROM patients'), /no purpose is declared for this connection/);
      await c.query("SET gatehouse.purpose = 'research'");
      assert.equal((await c.query('SHOW gatehouse.purpose')).rows[0]['gatehouse.purpose'], 'research');
      const r2 = await c.query('SELECT count(*) AS n FROM patients');
      assert.equal(r2.rows.length, 1);
    } finally { await c.end(); }
  });

  it('answers psql\'s \\dt and \\d from the catalog with only what the principal may see', async () => {
    const dt = await psql('ivan', '\\dt');
    assert.equal(dt.code, 0, dt.stderr);
    assert.match(dt.stdout, /patients/);
    assert.doesNotMatch(dt.stdout, /encounters/, 'the insurer is not granted encounters');
    const d = await psql('ivan', '\\d patients');
    assert.equal(d.code, 0, d.stderr);
    for (const col of ['patient_id', 'ssn', 'region']) assert.match(d.stdout, new RegExp(`^${col}\\|`, 'm'));
    const hidden = await psql('ivan', '\\d encounters');
    assert.match(hidden.stderr + hidden.stdout, /Did not find any relation named "encounters"/);
  });
});

describe('wire protocol with the pg driver', () => {
  it('answers SELECT version() with a PostgreSQL version in a column named version', async () => {
    const c = client('ada');
    await c.connect();
    try {
      const r = await c.query('SELECT version()');
      assert.deepEqual(r.fields.map((f) => f.name), ['version']);
      assert.match(String(r.rows[0].version), /^PostgreSQL 15\./);
    } finally { await c.end(); }
  });

  it('runs simple and parameterised queries with PostgreSQL types and the same rows', async () => {
    const c = client('ada');
    await c.connect();
    try {
      const simple = await c.query('SELECT patient_id, region FROM patients ORDER BY patient_id LIMIT 5');
      const direct = await fx.query('ada', 'SELECT patient_id, region FROM patients ORDER BY patient_id LIMIT 5');
      assert.deepEqual(simple.rows.map((r) => [r.patient_id, r.region]), direct.rows.map((r) => [String(r[0]), r[1]]));
      assert.equal(simple.fields[0]!.dataTypeID, 20, 'BIGINT is int8');
      assert.equal(simple.command, 'SELECT');
      assert.equal(simple.rowCount, 5);
      const param = await c.query('SELECT count(*) AS n FROM patients WHERE region = $1', ['us-east']);
      const same = await fx.query('ada', "SELECT count(*) AS n FROM patients WHERE region = 'us-east'");
      assert.equal(Number(param.rows[0].n), same.rows[0]![0]);
      const named = { name: 'by-region', text: 'SELECT count(*) AS n FROM patients WHERE region = $1', values: ['us-west'] };
      const a = await c.query(named);
      const b = await c.query({ ...named, values: ['us-central'] });
      assert.ok(Number(a.rows[0].n) > 0 && Number(b.rows[0].n) > 0);
    } finally { await c.end(); }
  });

  it('keeps the connection usable after an error, in both protocols', async () => {
    const c = client('ivan');
    await c.connect();
    try {
      await assert.rejects(c.query('SELECT * FROM nowhere'), (e: { code?: string }) => e.code === '42P01');
      await assert.rejects(c.query('SELECT * FROM nowhere WHERE x = $1', ['1']), (e: { code?: string }) => e.code === '42P01');
      const ok = await c.query('SELECT count(*) AS n FROM claims WHERE claim_id > $1', ['0']);
      assert.equal(ok.rows.length, 1);
      await c.query('BEGIN');
      await c.query('COMMIT');
    } finally { await c.end(); }
  });
});
