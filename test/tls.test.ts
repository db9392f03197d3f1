/** HTTPS and mTLS on a real node (HTTP and the wire front), with certificates made by openssl for the test. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { PassThrough } from 'node:stream';
import { demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';
import type { NodeHttp } from '../src/node/start.ts';
import type { WireServer } from '../src/wire/server.ts';
import pg from 'pg';

let dir: string;
/** A node serving HTTPS and TLS on the wire front, requiring client certificates signed by the test CA (mTLS). */
let fx: Fixture<NodeHttp, WireServer>;
const pem = (name: string): Buffer => readFileSync(join(dir, name));

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-tls-'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test-ca');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1,DNS:localhost" > san.ext'], { cwd: dir });
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=svc-reporting');
  openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '1');
  fx = await demoFixture({ patients: 300, http: true, wire: true, tls: { key: pem('server.key'), cert: pem('server.pem'), ca: pem('ca.pem') }, edit: (ws) => appendFileSync(join(ws, 'gatehouse.yaml'), '\nidentity:\n  mtls:\n    principals: { svc-reporting: ada }\n') });
});
after(async () => { await fx.close(); rmSync(dir, { recursive: true, force: true }); });

function get(port: number, options: { cert?: Buffer; key?: Buffer } = {}, auth: string | null = `Bearer ${KEYS.ada}`): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/datasets', ca: pem('ca.pem'), headers: auth ? { authorization: auth } : {}, ...options }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.end();
  });
}


describe('TLS', () => {
  it('serves the API over HTTPS with the given certificate', async () => {
    const local = await demoFixture({ patients: 100, http: true, tls: { key: pem('server.key'), cert: pem('server.pem') } });
    try { assert.equal(await get(local.http.port), 200); } finally { await local.close(); }
  });

  it('with a client CA, refuses clients without a certificate and serves those with one (mTLS)', async () => {
    const port = fx.http.port;
    await assert.rejects(get(port));
    assert.equal(await get(port, { cert: pem('client.pem'), key: pem('client.key') }), 200);
  });

  it('maps a verified client certificate to a service principal, and a forged header form to nothing', async () => {
    const port = fx.http.port;
    const client = { cert: pem('client.pem'), key: pem('client.key') };
    assert.equal(await get(port, client, null), 200, 'CN=svc-reporting is mapped to a principal');
    assert.equal(await get(port, client, 'Bearer mtls-0000:svc-reporting'), 401, 'the mTLS form cannot come from a header');
  });

  it('refuses plain HTTP on a non-loopback address unless forced', async () => {
    const s = new PassThrough();
    let out = '';
    s.on('data', (c) => { out += String(c); });
    const code = await main(['serve', '--workspace', fx.wsDir, '--host', '0.0.0.0', '--port', '0'], s);
    assert.equal(code, 1);
    assert.match(out, /refusing to serve plain HTTP on 0\.0\.0\.0/);
  });

  it('lets a PostgreSQL client authenticate on the wire port with a verified certificate mapped to its principal', async () => {
    const wire = fx.wire;
    const connect = async (user: string, ssl: Record<string, unknown>): Promise<pg.Client> => {
      const c = new pg.Client({ host: '127.0.0.1', port: wire.port, user, database: 'gatehouse', options: '-c gatehouse.purpose=operations', ssl: { ca: pem('ca.pem'), servername: 'localhost', ...ssl } });
      await c.connect();
      return c;
    };
    const c = await connect('svc-reporting', { cert: pem('client.pem'), key: pem('client.key') });
    try {
      const r = await c.query('SELECT count(*) AS n FROM patients');
      assert.equal(Number(r.rows[0].n), 300, 'CN=svc-reporting acts as ada, who sees every patient');
    } finally { await c.end(); }
    await assert.rejects(connect('ada', { cert: pem('client.pem'), key: pem('client.key') }), /certificate is for "svc-reporting"/);
    await assert.rejects(connect('svc-reporting', {}), /password|authentication|SASL/i, 'no certificate and no password: refused');
  });
});
