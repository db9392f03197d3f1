/**
 * The command line in scripts, run as a real process against a real node: results on stdout
 * and nothing else, errors on stderr (JSON under --json), the exit status of docs/cli.md,
 * row formats, SQL from a file or stdin, "did you mean" that reveals nothing hidden, noisy
 * values to their interval's precision, the CSV header check and a busy port.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatNoisy, resolutionOf } from '../src/cli/precision.ts';
import { closest } from '../src/cli/suggest.ts';
import { resetDemoWorkspace } from '../src/demo/reset.ts';
import { startNode } from '../src/node/start.ts';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

const BIN = resolve(import.meta.dirname, '..', 'bin', 'gatehouse.ts');
let fx: ServerFixture;
let tmp: string;

function cli(args: string[], options: { input?: string; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? tmp, env: { PATH: process.env.PATH ?? '', GATEHOUSE_URL: fx.http.url }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += String(c); });
    child.stderr.on('data', (c) => { stderr += String(c); });
    child.stdin.end(options.input ?? '');
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

before(async () => {
  fx = await demoFixture({ http: true, patients: 1500 });
  tmp = mkdtempSync(join(tmpdir(), 'gh-cli-script-'));
});
after(async () => {
  await fx.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('errors and exit status', () => {
  it('a refused query prints nothing on stdout, the error on stderr, and exits 3', async () => {
    const r = await cli(['query', '--key', 'not-a-key', '--purpose', 'research', 'SELECT 1']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error AUTH_INVALID: /);
  });

  it('under --json the error is one object {code, message, hint, reasons} on stderr', async () => {
    const r = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', '--json', 'SELECT count(*) FROM encounters']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    const e = JSON.parse(r.stderr).error;
    assert.equal(e.code, 'POLICY_DENIED');
    assert.deepEqual(Object.keys(e).slice(0, 4), ['code', 'message', 'hint', 'reasons']);
  });

  it('a token captured with $(login …) can never be an error text: login failure writes no stdout', async () => {
    const r = await cli(['login', '--principal', 'rhea', '--password', 'wrong', '--token-only']);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
  });

  it('"audit keys > file" without a credential leaves the file empty and exits 3', async () => {
    const r = await cli(['audit', 'keys']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '', 'nothing for the redirected file');
    assert.match(r.stderr, /^error AUTH_REQUIRED|^error AUTH_INVALID/);
  });

  it('an unreachable server is an error (1), with a hint', async () => {
    const child = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const c = spawn(process.execPath, [BIN, 'datasets', '--url', 'http://127.0.0.1:9', '--key', 'k'], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      c.stderr.on('data', (x) => { stderr += String(x); });
      c.on('close', (code) => done({ code, stderr }));
    });
    assert.equal(child.code, 1);
    assert.match(child.stderr, /error UNAVAILABLE: cannot reach/);
  });
});

describe('query output and input', () => {
  const sql = 'SELECT region, count(*) AS n FROM patients GROUP BY region';
  it('--format csv prints only a header and rows on stdout; the governance summary goes to stderr', async () => {
    const r = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', '--format', 'csv', sql]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^region,n\r\nus-east,\d+\r\n$/);
    assert.match(r.stderr, /1 row · audit #\d+/);
  });

  it('--format tsv and json', async () => {
    const tsv = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', '--format', 'tsv', sql]);
    assert.match(tsv.stdout, /^region\tn\nus-east\t\d+\n$/);
    const json = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', '--format', 'json', sql]);
    const rows = JSON.parse(json.stdout) as { region: string; n: number }[];
    assert.equal(rows[0]!.region, 'us-east');
    assert.equal(typeof rows[0]!.n, 'number');
  });

  it('reads the SQL from a file (-f) and from stdin (-)', async () => {
    writeFileSync(join(tmp, 'q.sql'), `${sql};\n`);
    const f = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', '--format', 'csv', '-f', 'q.sql']);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /^region,n/);
    const s = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', '--format', 'csv', '-'], { input: sql });
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /^region,n/);
  });

  it('suggests a dataset the caller may see, and never one it may not', async () => {
    const seen = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', 'SELECT count(*) FROM patient']);
    assert.equal(seen.code, 1);
    assert.match(seen.stderr, /did you mean "patients"\?/);
    // ivan may not query encounters: its name must not come back as a suggestion.
    const hidden = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-processing', 'SELECT count(*) FROM encounter']);
    assert.doesNotMatch(hidden.stderr, /encounters/);
  });

  it('suggests a purpose from the caller\'s own datasets', async () => {
    const r = await cli(['query', '--key', KEYS.ivan, '--purpose', 'claims-procesing', 'SELECT count(*) FROM claims']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /did you mean --purpose claims-processing\?/);
  });

  it('prints noisy values to the precision their interval supports', async () => {
    const r = await cli(['query', '--key', KEYS.rhea, '--purpose', 'research', '--format', 'csv', 'SELECT department, count(*) AS n FROM encounters GROUP BY department']);
    // The budget is spent only by the last test of this file, so this answer always comes.
    assert.equal(r.code, 0, r.stderr);
    for (const line of r.stdout.trim().split('\r\n').slice(1)) assert.match(line.split(',')[1]!, /^-?\d+$/, line);
  });
});

describe('precision and suggestions', () => {
  it('rounds to two significant digits of the half-width (GUM 7.2.6)', () => {
    assert.equal(resolutionOf(88), 1);
    assert.equal(resolutionOf(0.0123), 0.001);
    assert.equal(formatNoisy(12431.377, [12343, 12519]), '12431');
    assert.equal(formatNoisy(12431.377, [11431, 13431]), '12400');
    assert.equal(formatNoisy(0.52319, [0.51, 0.536]), '0.523');
  });
  it('finds one typo, a swapped pair or a missing s, and nothing far', () => {
    assert.equal(closest('patient', ['patients', 'claims']), 'patients');
    assert.equal(closest('cliams', ['patients', 'claims']), 'claims');
    assert.equal(closest('xyz', ['patients', 'claims']), null);
  });
});

describe('validate and serve', () => {
  it('names a CSV column the file lacks and the columns it has, and serve creates nothing', async () => {
    const ws = join(tmp, 'csv-ws');
    cpSync(fx.wsDir, ws, { recursive: true });
    for (const d of ['state', 'audit']) rmSync(join(ws, d), { recursive: true, force: true });
    writeFileSync(join(ws, 'data', 'visits.csv'), 'visit_id,patient_id,cost\n1,1,10\n');
    const y = join(ws, 'gatehouse.yaml');
    writeFileSync(y, readFileSync(y, 'utf8').replace(/^datasets:\n/m, 'datasets:\n  visits:\n    source: { csv: data/visits.csv }\n    classification: internal\n    purposes: [operations]\n    columns:\n      visit_id: { type: BIGINT, classification: internal }\n      costs: { type: DOUBLE, classification: internal }\n'));
    const v = await cli(['validate', ws]);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /datasets\.visits\.columns\.costs: no column "costs" in data\/visits\.csv; its header has: visit_id, patient_id, cost/);
    const j = await cli(['validate', ws, '--json']);
    assert.equal(JSON.parse(j.stdout).ok, false);
    const s = await cli(['serve', '--workspace', ws, '--port', '0']);
    assert.equal(s.code, 1);
    assert.ok(!existsSync(join(ws, 'state')) && !existsSync(join(ws, 'audit')), 'serve created nothing');
  });

  it('a busy PostgreSQL port fails the start and leaves no HTTP listener behind', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const busy = (blocker.address() as { port: number }).port;
    const httpProbe = createServer();
    await new Promise<void>((r) => httpProbe.listen(0, '127.0.0.1', () => r()));
    const httpPort = (httpProbe.address() as { port: number }).port;
    await new Promise<void>((r) => httpProbe.close(() => r()));
    try {
      await assert.rejects(startNode({ workspaceDir: fx.wsDir, auditDir: join(tmp, 'busy-audit'), demo: true, http: { port: httpPort }, wire: { port: busy } }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'UNAVAILABLE');
        assert.match(err.message, /PostgreSQL wire-protocol on 127\.0\.0\.1:\d+: the port is already in use/);
        return true;
      });
      // The HTTP port it had opened is free again: nothing half-started is left serving.
      const again = createServer();
      await new Promise<void>((r, j) => { again.once('error', j); again.listen(httpPort, '127.0.0.1', () => r()); });
      await new Promise<void>((r) => again.close(() => r()));
    } finally {
      blocker.close();
    }
  });

  it('demo reset forgets state and the log but keeps the data and the keys', async () => {
    const demo = join(tmp, 'demo');
    cpSync(fx.wsDir, demo, { recursive: true });
    writeFileSync(join(demo, 'demo-passwords.json'), '{"rhea":"pw-0123456789"}');
    const keys = readFileSync(join(demo, 'demo-keys.json'), 'utf8');
    for (const d of ['state', 'audit']) cpSync(fx.wsDir, join(demo, d), { recursive: true });
    const t = Date.now();
    const r = await resetDemoWorkspace(demo);
    assert.ok(Date.now() - t < 5000);
    assert.ok(r.removed.includes('state') && r.removed.includes('audit'));
    assert.ok(!existsSync(join(demo, 'state')) && !existsSync(join(demo, 'audit')));
    assert.equal(readFileSync(join(demo, 'demo-keys.json'), 'utf8'), keys);
    assert.ok(existsSync(join(demo, 'data')));
  });
});

// Last: it spends the research organisation's whole budget, which the tests above need.
describe('the privacy budget from a script', () => {
  it('query --estimate exits 3 when the query does not fit the remaining budget', async () => {
    const sql = 'SELECT department, count(*) AS n FROM encounters GROUP BY department';
    const fits = await cli(['query', '--key', KEYS.rhea, '--purpose', 'research', '--estimate', sql]);
    assert.equal(fits.code, 0, fits.stderr);
    assert.match(fits.stdout, /this query fits/);
    // Spend the organisation's budget through the pipeline itself.
    for (let i = 0; i < 200; i++) {
      try { await fx.query('rhea', sql); } catch (err) { if ((err as { code?: string }).code === 'BUDGET_EXHAUSTED') break; throw err; }
    }
    const refused = await cli(['query', '--key', KEYS.rhea, '--purpose', 'research', '--estimate', sql]);
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /does NOT fit/);
  });
});
