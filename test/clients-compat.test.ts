/**
 * Partners' own tools on the wire port: the real clients from Debian's packages (installed
 * by scripts/clients.ts) against a served demo on free loopback ports — pgJDBC's
 * DatabaseMetaData as DBeaver and Metabase call it, psycopg2 (parameters, description,
 * named cursors), SQLAlchemy reflection and streaming, pandas read_sql in chunks, pgcli
 * under tmux, psql's backslash commands — and what a governed answer tells such a client:
 * protections as NOTICEs and gatehouse.last_* settings, metadata only of what the
 * principal may see. docs/wire-protocol.md lists every probe ("Client compatibility").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AuditRecord, AuditSink } from '../src/audit/types.ts';
import type { WireServer } from '../src/wire/server.ts';
import { JDBC_JAR, PYTHON } from '../scripts/clients.ts';
import { demoFixture, KEYS, PURPOSE, type Fixture, type Who } from './helpers/workspace.ts';

const run = promisify(execFile);
const CLIENT_TIMEOUT_MS = 60_000;

/** Records every audit entry the pipeline writes, in order. */
class RecordingSink implements AuditSink {
  readonly entries: AuditRecord[] = [];
  async append(r: AuditRecord) { this.entries.push(r); return { auditId: String(this.entries.length - 1) }; }
  async close() {}
}
const audit = new RecordingSink();

let fx: Fixture<null, WireServer>;
let port = 0;
const passwords: Partial<Record<Who, string>> = {};

before(async () => {
  fx = await demoFixture({
    patients: 1500, wire: true, audit,
    // A hashed integer key, to see the effective (masked) type in the catalog.
    edit: (ws) => {
      const f = join(ws, 'gatehouse.yaml');
      const y = readFileSync(f, 'utf8');
      writeFileSync(f, y.replace('  insurer-claims:\n    rowFilter: "region = principal.region"\n', '  insurer-claims:\n    rowFilter: "region = principal.region"\n    masks: { encounter_id: hash }\n'));
    },
  });
  port = fx.wire.port;
  for (const who of ['ada', 'ivan', 'rhea'] as const) {
    passwords[who] = (await fx.gh.issueConnectionPassword({ credential: KEYS[who], source: '127.0.0.1', channel: 'test' }, { name: 'compat' })).password;
  }
});
after(async () => { await fx?.close(); });

function env(who: Who, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: fx.dir, PGPASSWORD: passwords[who]!, PGOPTIONS: `-c gatehouse.purpose=${PURPOSE[who]}`, PGCONNECT_TIMEOUT: '10', ...extra };
}

async function psql(who: Who, commands: readonly string[], opts: { tuples?: boolean; password?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', who, '-d', 'gatehouse', ...(opts.tuples ? ['-A', '-t'] : []), ...commands.flatMap((c) => ['-c', c])];
  try {
    const r = await run('/usr/bin/psql', args, { env: env(who, opts.password ? { PGPASSWORD: opts.password } : {}), timeout: CLIENT_TIMEOUT_MS });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

// ---- pgJDBC ------------------------------------------------------------------------------

/** The calls DBeaver and Metabase make on connect and on opening a table, each printed as one JSON line. */
const JDBC_PROBE = String.raw`
import java.sql.*;
import java.util.*;
public class Probe {
  static String q(String s) { if (s == null) return "null"; StringBuilder b = new StringBuilder("\""); for (char c : s.toCharArray()) { if (c == '"' || c == '\\') b.append('\\'); if (c < 32) b.append(' '); else b.append(c); } return b.append('"').toString(); }
  static void emit(String step, ResultSet rs, String... cols) throws SQLException {
    StringBuilder b = new StringBuilder("{\"step\":" + q(step) + ",\"rows\":[");
    boolean first = true;
    while (rs.next()) { if (!first) b.append(','); first = false; b.append('{'); for (int i = 0; i < cols.length; i++) { if (i > 0) b.append(','); b.append(q(cols[i])).append(':').append(q(rs.getString(cols[i]))); } b.append('}'); }
    System.out.println(b.append("]}"));
  }
  static void fail(String step, SQLException e) { System.out.println("{\"step\":" + q(step) + ",\"error\":" + q(e.getSQLState() + " " + e.getMessage().split("\n")[0]) + "}"); }
  public static void main(String[] a) throws Exception {
    Properties p = new Properties(); p.setProperty("user", a[1]); p.setProperty("password", a[2]); p.setProperty("options", "-c gatehouse.purpose=" + a[3]);
    try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + a[0] + "/gatehouse", p)) {
      DatabaseMetaData md = c.getMetaData();
      String[] steps = {"getTables", "getColumns", "getPrimaryKeys", "getIndexInfo", "getImportedKeys", "getExportedKeys", "getTypeInfo", "getSchemas", "getCatalogs", "select", "metabasePreview", "prepared", "latency"};
      for (String s : steps) {
        try {
          switch (s) {
            case "getTables": emit(s, md.getTables(null, "public", "%", new String[]{"TABLE", "VIEW"}), "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE"); break;
            case "getColumns": emit(s, md.getColumns(null, "public", "%", "%"), "TABLE_NAME", "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE", "ORDINAL_POSITION"); break;
            case "getPrimaryKeys": emit(s, md.getPrimaryKeys(null, "public", "claims"), "COLUMN_NAME"); break;
            case "getIndexInfo": emit(s, md.getIndexInfo(null, "public", "claims", false, true), "INDEX_NAME"); break;
            case "getImportedKeys": emit(s, md.getImportedKeys(null, "public", "claims"), "FKCOLUMN_NAME"); break;
            case "getExportedKeys": emit(s, md.getExportedKeys(null, "public", "claims"), "FKCOLUMN_NAME"); break;
            case "getTypeInfo": emit(s, md.getTypeInfo(), "TYPE_NAME", "DATA_TYPE"); break;
            case "getSchemas": emit(s, md.getSchemas(), "TABLE_SCHEM"); break;
            case "getCatalogs": emit(s, md.getCatalogs(), "TABLE_CAT"); break;
            case "select": try (Statement st = c.createStatement()) { emit(s, st.executeQuery("SELECT claim_id, payer FROM public.claims ORDER BY claim_id LIMIT 3"), "claim_id", "payer"); } break;
            case "metabasePreview": try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT TRUE AS _ FROM \"public\".\"claims\" WHERE 1 <> 1 LIMIT 0")) { System.out.println("{\"step\":\"metabasePreview\",\"columns\":" + rs.getMetaData().getColumnCount() + "}"); } break;
            case "prepared": try (PreparedStatement ps = c.prepareStatement("SELECT claim_id, amount_paid FROM claims WHERE amount_paid > ? ORDER BY claim_id LIMIT 2")) {
              ResultSetMetaData m = ps.getMetaData();
              String cols = m == null ? "null" : (q(m.getColumnName(1)) + "," + q(m.getColumnTypeName(2)));
              ps.setDouble(1, 10.0);
              int n = 0; try (ResultSet rs = ps.executeQuery()) { while (rs.next()) n++; }
              System.out.println("{\"step\":\"prepared\",\"describedBeforeExecute\":[" + cols + "],\"rows\":" + n + "}"); } break;
            case "latency": {
              long[] ms = new long[25];
              for (int i = 0; i < ms.length; i++) { long t0 = System.nanoTime(); try (ResultSet rs = md.getColumns(null, "public", "claims", "%")) { while (rs.next()) {} } ms[i] = (System.nanoTime() - t0) / 1000; }
              Arrays.sort(ms);
              System.out.println("{\"step\":\"latency\",\"p50us\":" + ms[ms.length / 2] + ",\"maxus\":" + ms[ms.length - 1] + "}"); break;
            }
          }
        } catch (SQLException e) { fail(s, e); }
      }
    }
  }
}
`;

describe('pgJDBC (Debian libpostgresql-jdbc-java), the driver DBeaver and Metabase use', () => {
  const steps = new Map<string, { rows?: Record<string, string | null>[]; error?: string; [k: string]: unknown }>();
  before(async () => {
    assert.ok(existsSync(JDBC_JAR), `pgJDBC is missing: run npx node scripts/clients.ts install (${JDBC_JAR})`);
    const dir = join(fx.dir, 'jdbc');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'Probe.java'), JDBC_PROBE);
    await run('javac', ['-cp', JDBC_JAR, '-d', dir, join(dir, 'Probe.java')], { timeout: CLIENT_TIMEOUT_MS });
    const r = await run('java', ['-cp', `${JDBC_JAR}:${dir}`, 'Probe', String(port), 'ivan', passwords.ivan!, PURPOSE.ivan], { timeout: CLIENT_TIMEOUT_MS * 2 });
    for (const line of r.stdout.trim().split('\n')) { const o = JSON.parse(line) as { step: string }; steps.set(o.step, o); }
  });
  const ok = (step: string) => { const s = steps.get(step); assert.ok(s, `${step} did not run`); assert.equal(s.error, undefined, `${step}: ${s.error}`); return s; };

  it('getTables lists exactly the datasets the principal may see, in schema public', () => {
    assert.deepEqual(ok('getTables').rows, [{ TABLE_SCHEM: 'public', TABLE_NAME: 'claims', TABLE_TYPE: 'TABLE' }, { TABLE_SCHEM: 'public', TABLE_NAME: 'patients', TABLE_TYPE: 'TABLE' }]);
  });

  it('getColumns returns every column of every visible dataset with its PostgreSQL type, in order', () => {
    const rows = ok('getColumns').rows!;
    const claims = rows.filter((r) => r.TABLE_NAME === 'claims');
    assert.deepEqual(claims.map((r) => r.COLUMN_NAME), ['claim_id', 'encounter_id', 'patient_id', 'payer', 'region', 'amount_billed', 'amount_paid', 'status', 'submitted_on']);
    assert.deepEqual(claims.map((r) => r.ORDINAL_POSITION), ['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const type = (c: string) => claims.find((r) => r.COLUMN_NAME === c)!.TYPE_NAME;
    assert.equal(type('claim_id'), 'int8');
    assert.equal(type('amount_billed'), 'float8');
    assert.equal(type('submitted_on'), 'date');
    assert.equal(rows.filter((r) => r.TABLE_NAME === 'patients').length, 9);
    assert.ok(!rows.some((r) => r.TABLE_NAME === 'encounters'), 'a dataset the principal may not query is not described');
  });

  it('getColumns reports the effective type after masking: a hashed integer key is text', () => {
    const row = ok('getColumns').rows!.find((r) => r.TABLE_NAME === 'claims' && r.COLUMN_NAME === 'encounter_id')!;
    assert.equal(row.TYPE_NAME, 'varchar');
  });

  it('getPrimaryKeys, getIndexInfo, getImportedKeys and getExportedKeys answer empty, not an error', () => {
    for (const s of ['getPrimaryKeys', 'getIndexInfo', 'getImportedKeys', 'getExportedKeys']) assert.deepEqual(ok(s).rows, [], s);
  });

  it('getTypeInfo lists the types the server has', () => {
    const names = ok('getTypeInfo').rows!.map((r) => r.TYPE_NAME);
    for (const t of ['bool', 'int4', 'int8', 'float8', 'numeric', 'varchar', 'text', 'date', 'timestamp', 'timestamptz']) assert.ok(names.includes(t), t);
  });

  it('getSchemas and getCatalogs name public and the one database', () => {
    assert.ok(ok('getSchemas').rows!.some((r) => r.TABLE_SCHEM === 'public'));
    assert.ok(!ok('getSchemas').rows!.some((r) => r.TABLE_SCHEM === 'main'), "the engine's schema is never shown");
    assert.deepEqual(ok('getCatalogs').rows, [{ TABLE_CAT: 'gatehouse' }]);
  });

  it('a schema-qualified SELECT and the Metabase preview query run through the governed path', () => {
    assert.equal(ok('select').rows!.length, 3);
    assert.equal(ok('metabasePreview').columns, 1);
  });

  it('a prepared statement is described before it runs, with governed columns, then binds a parameter', () => {
    const s = ok('prepared');
    assert.deepEqual(s.describedBeforeExecute, ['claim_id', 'float8']);
    assert.equal(s.rows, 2);
  });

  it('answers the JDBC getColumns catalog query quickly (p50 reported)', (t) => {
    const s = ok('latency') as { p50us: number; maxus: number };
    t.diagnostic(`JDBC getColumns(claims) over the wire: p50 ${(s.p50us / 1000).toFixed(1)} ms, max ${(s.maxus / 1000).toFixed(1)} ms (25 calls)`);
    assert.ok(s.p50us < 500_000, `p50 ${s.p50us} µs`);
  });
});

// ---- psycopg2, SQLAlchemy, pandas --------------------------------------------------------

const PY_PROBE = String.raw`
import json, sys
import psycopg2
port, user, password, purpose = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
dsn = dict(host='127.0.0.1', port=int(port), user=user, password=password, dbname='gatehouse', options='-c gatehouse.purpose=' + purpose)
out = {}
c = psycopg2.connect(**dsn)
cur = c.cursor()
cur.execute("SELECT claim_id, amount_billed FROM claims WHERE amount_billed > %s AND payer = %s ORDER BY claim_id LIMIT 2", (10, "x' OR '1'='1"))
out['injected'] = cur.fetchall()
cur.execute("SELECT claim_id, amount_billed FROM claims WHERE amount_billed > %s ORDER BY claim_id LIMIT 2", (10,))
out['params'] = len(cur.fetchall())
out['description'] = [[d.name, d.type_code] for d in cur.description]
cur.execute("SELECT count(*) AS n FROM claims")
out['count'] = cur.fetchone()[0]
cur.execute("SELECT current_setting('gatehouse.purpose')")
out['purpose'] = cur.fetchone()[0]
try:
    cur.execute("SELECT current_setting('gatehouse.nope')")
except psycopg2.Error as e:
    out['unknownSetting'] = e.pgcode
c.rollback()
named = c.cursor(name='compat_stream')
named.itersize = 100
named.execute("SELECT claim_id FROM claims ORDER BY claim_id")
ids = [r[0] for r in named]
out['named'] = {'rows': len(ids), 'first': ids[:3], 'description': named.description[0].name}
named.close()
c.commit()
try:
    cur = c.cursor()
    cur.execute("FETCH 5 FROM compat_stream")
except psycopg2.Error as e:
    out['closedCursor'] = e.pgcode
c.rollback()
c.close()
import sqlalchemy as sa
eng = sa.create_engine('postgresql+psycopg2://', connect_args=dsn)
insp = sa.inspect(eng)
out['sqlalchemyTables'] = insp.get_table_names()
out['sqlalchemyColumns'] = [[x['name'], str(x['type'])] for x in insp.get_columns('claims')]
with eng.connect() as conn:
    res = conn.execution_options(stream_results=True, max_row_buffer=50).execute(sa.text('SELECT claim_id FROM claims'))
    out['stream'] = len(res.fetchall())
try:
    import pandas as pd
    with eng.connect() as conn:
        chunks = list(pd.read_sql(sa.text('SELECT claim_id, amount_paid FROM public.claims'), conn, chunksize=200))
        out['pandas'] = {'chunks': len(chunks), 'rows': sum(len(x) for x in chunks), 'columns': list(chunks[0].columns)}
except ImportError as e:
    out['pandas'] = None
print(json.dumps(out))
`;

describe('psycopg2, SQLAlchemy and pandas (Debian python3-psycopg2, python3-sqlalchemy, python3-pandas)', () => {
  let out: Record<string, any> = {};
  let entries: AuditRecord[] = [];
  before(async () => {
    const n = audit.entries.length;
    const dir = join(fx.dir, 'py');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'probe.py'), PY_PROBE);
    const r = await run(PYTHON, [join(dir, 'probe.py'), String(port), 'ivan', passwords.ivan!, PURPOSE.ivan], { timeout: CLIENT_TIMEOUT_MS * 2, env: env('ivan') });
    out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    entries = audit.entries.slice(n);
  });

  it('binds parameters as values and describes the result columns with PostgreSQL type OIDs', () => {
    assert.deepEqual(out.injected, []);
    assert.equal(out.params, 2);
    assert.deepEqual(out.description, [['claim_id', 20], ['amount_billed', 701]]);
  });

  it('streams a server-side named cursor in chunks: every row once, the cursor gone after commit', () => {
    assert.equal(out.named.rows, Math.min(out.count, 1000));
    assert.deepEqual(out.named.first, [...out.named.first].sort((a: number, b: number) => a - b));
    assert.equal(out.named.description, 'claim_id');
    assert.equal(out.closedCursor, '34000');
    const declared = entries.filter((e) => e.action === 'query' && e.channel === 'pgwire' && e.decision === 'allow');
    assert.ok(declared.length >= 1, 'the DECLARE\'s query is audited');
  });

  it('answers current_setting for the purpose, and 42704 for an unknown gatehouse setting', () => {
    assert.equal(out.purpose, 'claims-processing');
    assert.equal(out.unknownSetting, '42704');
  });

  it('SQLAlchemy reflects the visible tables and their columns', () => {
    assert.deepEqual(out.sqlalchemyTables, ['claims', 'patients']);
    assert.deepEqual(out.sqlalchemyColumns.map((c: string[]) => c[0]), ['claim_id', 'encounter_id', 'patient_id', 'payer', 'region', 'amount_billed', 'amount_paid', 'status', 'submitted_on']);
    assert.equal(out.sqlalchemyColumns.find((c: string[]) => c[0] === 'amount_paid')[1], 'DOUBLE_PRECISION');
  });

  it('SQLAlchemy stream_results reads a governed query through a named cursor', () => {
    assert.equal(out.stream, Math.min(out.count, 1000));
  });

  it('pandas read_sql(chunksize=…) returns the governed rows in chunks', (t) => {
    if (out.pandas === null) { t.skip('python3-pandas is not installed (scripts/clients.ts install could not install it)'); return; }
    assert.equal(out.pandas.rows, Math.min(out.count, 1000));
    assert.equal(out.pandas.chunks, Math.ceil(out.pandas.rows / 200));
    assert.deepEqual(out.pandas.columns, ['claim_id', 'amount_paid']);
  });
});

// ---- named cursors: one governed execution ----------------------------------------------

describe('named cursors on the wire', () => {
  it('run the declared query once through the one path: one audit entry, however many FETCHes', async () => {
    const n = audit.entries.length;
    const r = await psql('ivan', ['BEGIN', 'DECLARE c CURSOR FOR SELECT claim_id FROM claims ORDER BY claim_id', 'FETCH 2 FROM c', 'FETCH 3 FROM c', 'MOVE 10 IN c', 'FETCH 1 FROM c', 'CLOSE c', 'COMMIT'], { tuples: true });
    assert.equal(r.code, 0, r.stderr);
    const ids = r.stdout.trim().split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    assert.equal(ids.length, 6);
    const direct = await fx.query('ivan', 'SELECT claim_id FROM claims ORDER BY claim_id');
    assert.deepEqual(ids, [...direct.rows.slice(0, 5).map((x) => x[0]), direct.rows[15]![0]]);
    const queries = audit.entries.slice(n).filter((e) => e.channel === 'pgwire' && e.action.startsWith('query'));
    assert.equal(queries.length, 1, JSON.stringify(queries.map((e) => e.action)));
    assert.equal(queries[0]!.decision, 'allow');
  });

  it('refuses DECLARE outside a transaction, backward FETCH and a cursor over anything but a SELECT', async () => {
    const outside = await psql('ivan', ['DECLARE c CURSOR FOR SELECT claim_id FROM claims']);
    assert.notEqual(outside.code, 0);
    assert.match(outside.stderr, /transaction blocks/);
    const backward = await psql('ivan', ['BEGIN', 'DECLARE c SCROLL CURSOR FOR SELECT claim_id FROM claims', 'FETCH BACKWARD 1 FROM c']);
    assert.match(backward.stderr, /read forward only/);
    const write = await psql('ivan', ['BEGIN', 'DECLARE c CURSOR FOR DELETE FROM claims']);
    assert.notEqual(write.code, 0);
  });

  it('a cursor over a dataset the principal may not see is refused like the query itself', async () => {
    const r = await psql('ivan', ['BEGIN', 'DECLARE c CURSOR FOR SELECT * FROM encounters', 'FETCH 5 FROM c']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ERROR/);
    assert.doesNotMatch(r.stdout, /\d{3,}/);
  });
});

// ---- pgcli --------------------------------------------------------------------------------

describe('pgcli (Debian pgcli) under tmux', () => {
  it('starts without a traceback in its completion thread, runs \\dt and completes a table name', async () => {
    const session = `gh-compat-${process.pid}`;
    const errFile = join(fx.dir, 'pgcli.err');
    const home = join(fx.dir, 'pgcli-home');
    mkdirSync(home, { recursive: true });
    const tmux = (...args: string[]) => spawnSync('tmux', args, { encoding: 'utf8', timeout: 10_000 });
    const cmd = `env HOME=${home} PGPASSWORD='${passwords.ivan}' PGOPTIONS='-c gatehouse.purpose=claims-processing' pgcli -h 127.0.0.1 -p ${port} -U ivan -d gatehouse 2>${errFile}`;
    assert.equal(tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', cmd).status, 0);
    try {
      const screen = async (want: RegExp, ms = 20_000): Promise<string> => {
        const until = Date.now() + ms;
        let text = '';
        while (Date.now() < until) {
          text = tmux('capture-pane', '-t', session, '-p').stdout ?? '';
          if (want.test(text)) return text;
          await new Promise((r) => setTimeout(r, 250));
        }
        return text;
      };
      assert.match(await screen(/ivan@.*gatehouse>/), /gatehouse>/);
      tmux('send-keys', '-t', session, '\\dt', 'Enter');
      const dt = await screen(/patients/);
      assert.match(dt, /claims/);
      assert.match(dt, /patients/);
      // The completion refresh runs in the background: until it is done, typing completes no
      // table. Type, look for the completion for a second, and type again if it is not there
      // yet (instead of waiting a fixed 1.5 s first).
      let completed = '';
      for (const until = Date.now() + 10_000; Date.now() < until && !/claims\s+table/.test(completed);) {
        tmux('send-keys', '-t', session, 'C-u');
        tmux('send-keys', '-t', session, 'SELECT * FROM cla');
        completed = await screen(/claims\s+table/, 1000);
      }
      assert.match(completed, /claims\s+table/);
      tmux('send-keys', '-t', session, 'C-u');
      tmux('send-keys', '-t', session, 'C-d');
      // pgcli has exited (and written any traceback) when its tmux session is gone.
      for (const until = Date.now() + 5000; Date.now() < until && tmux('has-session', '-t', session).status === 0;) await new Promise((r) => setTimeout(r, 50));
      const err = existsSync(errFile) ? readFileSync(errFile, 'utf8') : '';
      assert.doesNotMatch(err, /Traceback/, err);
    } finally {
      tmux('kill-session', '-t', session);
    }
  });
});

// ---- psql ---------------------------------------------------------------------------------

describe('psql backslash commands and information_schema', () => {
  it('\\l lists the one database with its collation', async () => {
    const r = await psql('ivan', ['\\l']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /gatehouse\s*\|\s*gatehouse\s*\|\s*UTF8\s*\|\s*C\s*\|/);
  });

  it('\\dt and \\d show the visible datasets and their columns', async () => {
    const r = await psql('ivan', ['\\dt', '\\d claims']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /public \| claims\s+\| table/);
    assert.doesNotMatch(r.stdout, /encounters/);
    assert.match(r.stdout, /amount_billed\s+\| double precision/);
  });

  it("\\dn shows only public (never the engine's main), \\df lists no internal helper", async () => {
    const dn = await psql('ivan', ['\\dn'], { tuples: true });
    assert.equal(dn.code, 0, dn.stderr);
    assert.deepEqual(dn.stdout.trim().split('\n'), ['public|gatehouse']);
    const df = await psql('ivan', ['\\df'], { tuples: true });
    assert.equal(df.code, 0, df.stderr);
    assert.equal(df.stdout.trim(), '');
  });

  it('information_schema spells types the PostgreSQL way and says the tables are not insertable', async () => {
    const r = await psql('ivan', ["SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'claims' AND column_name IN ('claim_id', 'payer', 'amount_paid') ORDER BY ordinal_position",
      "SELECT DISTINCT is_insertable_into FROM information_schema.tables"], { tuples: true });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['claim_id|bigint', 'payer|character varying', 'amount_paid|double precision', 'NO']);
  });

  it('a schema-qualified name is the same dataset under the same governance; another schema names nothing', async () => {
    const r = await psql('ivan', ['SELECT count(*) FROM public.claims', 'SELECT count(*) FROM claims', 'SELECT ssn FROM "public"."patients" LIMIT 1'], { tuples: true });
    assert.equal(r.code, 0, r.stderr);
    const [qualified, plain, ssn] = r.stdout.trim().split('\n');
    assert.equal(qualified, plain);
    assert.match(ssn!, /^\*+\d{4}$/, 'the mask applies through the qualified name');
    for (const sql of ['SELECT * FROM main.claims', 'SELECT * FROM information_schema.claims', 'SELECT * FROM gatehouse.public.claims']) {
      const bad = await psql('ivan', [sql]);
      assert.notEqual(bad.code, 0, sql);
      assert.doesNotMatch(bad.stdout, /\d/, sql);
    }
    const other = await psql('ivan', ['SELECT * FROM main.claims']);
    assert.match(other.stderr, /there is no dataset "main\.claims"/);
  });

  it('SELECT current_user answers a column named current_user', async () => {
    const r = await psql('ivan', ['SELECT current_user']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\s*current_user\s*\n-+\n\s*ivan\s*\n/);
  });
});

// ---- protections visible over the wire ---------------------------------------------------

describe('protections visible over the wire', () => {
  it('a differentially private answer arrives with a NOTICE of its interval and the ε spent and left, and SHOW gatehouse.last_privacy', async () => {
    const r = await psql('rhea', ['SELECT department, count(*) AS n FROM encounters GROUP BY department', 'SHOW gatehouse.last_privacy'], { tuples: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /NOTICE: {2}differentially private result: gaussian noise, ε=1, .*95% interval n ±[\d.]+; budget of org:northwind-research: ε spent [\d.]+ of 10, ε left [\d.]+/);
    assert.match(r.stdout, /gaussian noise, ε=1/);
  });

  it('a result cut at the row cap says so in a NOTICE and in gatehouse.last_truncated', async () => {
    const r = await psql('ivan', ['SELECT claim_id FROM claims', 'SHOW gatehouse.last_truncated'], { tuples: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /NOTICE: {2}result truncated at the row cap of 1000 rows/);
    assert.equal(r.stdout.trim().split('\n').at(-1), 'on');
    const small = await psql('ivan', ['SELECT claim_id FROM claims LIMIT 5', 'SHOW gatehouse.last_truncated'], { tuples: true });
    assert.doesNotMatch(small.stderr, /NOTICE/);
    assert.equal(small.stdout.trim().split('\n').at(-1), 'off');
  });

  it('suppressed small groups are counted in a NOTICE and in gatehouse.last_rows_suppressed', async () => {
    const r = await psql('rhea', ['SELECT zip, count(*) AS n FROM patients GROUP BY zip', 'SHOW gatehouse.last_rows_suppressed'], { tuples: true });
    assert.equal(r.code, 0, r.stderr);
    const m = /NOTICE: {2}(\d+) row\(s\) suppressed by disclosure control/.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(r.stdout.trim().split('\n').at(-1), m[1]);
  });

  it('the gatehouse.last_* settings cannot be set by the client', async () => {
    const r = await psql('ivan', ["SET gatehouse.last_truncated = 'off'"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not allowed/);
  });
});

// ---- named connection passwords ----------------------------------------------------------

describe('several named connection passwords per principal', () => {
  it('a second tool does not break the first; each is listed and revoked on its own', async () => {
    const meta = { credential: KEYS.ada, source: '127.0.0.1', channel: 'test' } as const;
    const dbeaver = await fx.gh.issueConnectionPassword(meta, { name: 'dbeaver' });
    const metabase = await fx.gh.issueConnectionPassword(meta, { name: 'metabase' });
    assert.equal((await psql('ada', ['SELECT 1 AS one'], { password: dbeaver.password, tuples: true })).stdout.trim(), '1');
    assert.equal((await psql('ada', ['SELECT 1 AS one'], { password: metabase.password, tuples: true })).stdout.trim(), '1');
    const listed = await fx.gh.listConnectionPasswords(meta);
    assert.deepEqual(listed.passwords.map((p) => p.name).sort(), ['compat', 'dbeaver', 'metabase']);
    assert.ok(!JSON.stringify(listed).includes(dbeaver.password));
    await fx.gh.revokeConnectionPassword(meta, 'dbeaver');
    const refused = await psql('ada', ['SELECT 1'], { password: dbeaver.password });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /password authentication failed/);
    assert.equal((await psql('ada', ['SELECT 1 AS one'], { password: metabase.password, tuples: true })).stdout.trim(), '1');
    // Issuing a name again replaces only that one.
    const again = await fx.gh.issueConnectionPassword(meta, { name: 'metabase' });
    assert.notEqual((await psql('ada', ['SELECT 1'], { password: metabase.password })).code, 0);
    assert.equal((await psql('ada', ['SELECT 1 AS one'], { password: again.password, tuples: true })).stdout.trim(), '1');
    assert.equal((await psql('ada', ['SELECT 1 AS one'], { tuples: true })).stdout.trim(), '1', 'the compat password still works');
    await assert.rejects(fx.gh.revokeConnectionPassword(meta, 'dbeaver'), (e: { code?: string }) => e.code === 'NOT_FOUND');
    await assert.rejects(fx.gh.issueConnectionPassword(meta, { name: 'Bad Name' }), (e: { code?: string }) => e.code === 'REQUEST_INVALID');
  });
});
