/**
 * Zero trust over a live keep-alive connection: after a logout, a key revocation, a grant
 * revocation or disabling a user, the very next request on the same connection is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let fx: ServerFixture;
let port = 0;
let olivia = '';
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const sockets = new Set<unknown>();

function call(method: string, path: string, credential: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: { authorization: `Bearer ${credential}`, ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      sockets.add(res.socket);
      let text = '';
      res.on('data', (c) => { text += String(c); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(data);
  });
}
const query = (credential: string, sql: string, purpose: string) => call('POST', '/v1/query', credential, { sql, purpose });

before(async () => {
  fx = await demoFixture({ patients: 300, http: true, edit: (ws) => appendFileSync(join(ws, 'gatehouse.yaml'), '\nidentity:\n  elevation:\n    roles:\n      claims-auditor: { approvers: [data-owners], maxMinutes: 120 }\n') });
  olivia = JSON.parse(readFileSync(join(fx.wsDir, 'demo-keys.json'), 'utf8')).olivia;
  port = fx.http.port;
});
after(async () => { agent.destroy(); await fx.close(); });

describe('revocation over one live connection', () => {
  it('logout: the session token fails on the next request', async () => {
    await fx.gh.adminCreateUser({ credential: olivia, source: '127.0.0.1', channel: 'test' }, { principal: 'ada', password: 'a long enough passphrase 2026' });
    const login = await call('POST', '/v1/auth/login', '', { principal: 'ada', password: 'a long enough passphrase 2026' });
    const token = login.json.accessToken as string;
    assert.equal((await query(token, 'SELECT 1', 'operations')).status, 200);
    assert.equal((await call('POST', '/v1/auth/logout', token)).status, 200);
    assert.equal((await query(token, 'SELECT 1', 'operations')).status, 401);
  });

  it('a revoked service key fails on the next request', async () => {
    const k = await call('POST', '/v1/admin/keys', olivia, { principal: 'ivan', datasets: ['claims'] });
    assert.equal((await query(k.json.key, 'SELECT count(*) FROM claims', 'claims-processing')).status, 200);
    assert.equal((await call('DELETE', `/v1/admin/keys/${k.json.id}`, olivia)).status, 200);
    assert.equal((await query(k.json.key, 'SELECT count(*) FROM claims', 'claims-processing')).status, 401);
  });

  it('a revoked elevation grant no longer decides the next query', async () => {
    const r = await call('POST', '/v1/elevation/requests', KEYS.ivan, { role: 'claims-auditor', purpose: 'claims-audit', minutes: 30, justification: 'audit AUD-9' });
    const g = await call('POST', `/v1/elevation/requests/${r.json.requestId}/approve`, olivia);
    assert.equal((await query(KEYS.ivan, 'SELECT count(*) FROM encounters', 'claims-audit')).status, 200);
    assert.equal((await call('POST', `/v1/elevation/grants/${g.json.grantId}/revoke`, olivia)).status, 200);
    assert.equal((await query(KEYS.ivan, 'SELECT count(*) FROM encounters', 'claims-audit')).status, 403);
  });

  it('kept one connection throughout', () => {
    assert.equal(sockets.size, 1);
  });
});
