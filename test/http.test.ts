/**
 * End-to-end over the real Fastify server: in-process with inject(), and once over a
 * socket with a keep-alive connection (revocation must take effect on a live connection).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { demoFixture, KEYS, PURPOSE, type ServerFixture, type Who } from './helpers/workspace.ts';

let fx: ServerFixture;
let app: FastifyInstance;

before(async () => {
  fx = await demoFixture({ patients: 3000, http: true });
  app = fx.http.app;
});
after(async () => { await fx.close(); });

function query(who: Who | null, sql: string, purpose?: string) {
  return app.inject({
    method: 'POST', url: '/v1/query',
    headers: who ? { authorization: `Bearer ${KEYS[who]}` } : {},
    payload: { sql, purpose: purpose ?? (who ? PURPOSE[who] : 'research') },
  });
}

describe('HTTP API', () => {
  it('answers health with the policy version in force', async () => {
    const r = await app.inject({ url: '/v1/health' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().policyVersion, fx.gh.policyVersion);
  });

  it('serves an OpenAPI document built from the route schemas', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    assert.equal(doc.openapi, '3.1.0');
    for (const p of ['/v1/query', '/v1/datasets', '/v1/health', '/v1/audit/checkpoint']) assert.ok(doc.paths[p], p);
    assert.deepEqual(doc.paths['/v1/query'].post.requestBody.content['application/json'].schema.required, ['sql', 'purpose']);
  });

  it('gives each partner a different, correctly governed answer to the same question', async () => {
    const sql = 'SELECT region, count(*) AS n FROM patients GROUP BY region ORDER BY region';
    const ada = (await query('ada', sql)).json();
    const ivan = (await query('ivan', sql)).json();
    const rhea = (await query('rhea', sql)).json();
    assert.equal(ada.rows.length, 3);
    assert.deepEqual(ivan.rows.map((r: unknown[]) => r[0]), ['us-east']);
    assert.equal(ivan.rows[0][1], ada.rows.find((r: unknown[]) => r[0] === 'us-east')[1]);
    assert.deepEqual(rhea.rows, ada.rows, 'large groups pass the aggregation threshold unchanged');
    assert.ok(rhea.governance.obligationsApplied.some((o: string) => o.startsWith('aggregationOnly:patients')));
    const ssn = (await query('ivan', 'SELECT ssn FROM patients LIMIT 1')).json();
    assert.match(ssn.rows[0][0], /^\*+\d{4}$/);
    const hashed = (await query('ada', 'SELECT ssn FROM patients LIMIT 1')).json();
    assert.match(hashed.rows[0][0], /^[0-9a-f]{64}$/);
  });

  it('returns 401 without a key and with a wrong one', async () => {
    const none = await query(null, 'SELECT 1');
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, 'AUTH_REQUIRED');
    const wrong = await app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: 'Bearer nope' }, payload: { sql: 'SELECT 1', purpose: 'research' } });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().error.code, 'AUTH_INVALID');
  });

  it('returns 403 with reasons a user can act on, never a data value', async () => {
    const r = await query('rhea', 'SELECT count(*) FROM patients', 'marketing');
    assert.equal(r.statusCode, 403);
    assert.equal(r.json().error.code, 'POLICY_DENIED');
    assert.deepEqual(r.json().error.reasons, ['regulated data may not be used for marketing']);
    const v = await query('rhea', 'SELECT name FROM patients');
    assert.equal(v.statusCode, 403);
    assert.equal(v.json().error.code, 'OBLIGATION_VIOLATION');
    assert.ok(v.json().error.hint);
  });

  it('rejects malformed bodies with 400 and still writes one audit entry', async () => {
    const before = fx.log.size;
    const r = await app.inject({ method: 'POST', url: '/v1/query', headers: { authorization: `Bearer ${KEYS.ada}` }, payload: { sql: 'SELECT 1', purpose: 'operations', extra: 1 } });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.code, 'REQUEST_INVALID');
    assert.equal(fx.log.size, before + 1);
  });

  it('lists only the datasets the caller may query, with masked and join-only columns marked', async () => {
    const ivan = (await app.inject({ url: '/v1/datasets', headers: { authorization: `Bearer ${KEYS.ivan}` } })).json();
    assert.deepEqual(ivan.datasets.map((d: { name: string }) => d.name).sort(), ['claims', 'patients']);
    const patients = ivan.datasets.find((d: { name: string }) => d.name === 'patients');
    assert.equal(patients.columns.find((c: { name: string }) => c.name === 'ssn').masked, 'last4');
    assert.equal(patients.rowFilter, true);
    const rhea = (await app.inject({ url: '/v1/datasets?purpose=research', headers: { authorization: `Bearer ${KEYS.rhea}` } })).json();
    assert.equal(rhea.datasets.length, 3);
    assert.equal(rhea.datasets[0].columns.find((c: { name: string }) => c.name === 'patient_id').joinOnly, true);
    const audrey = (await app.inject({ url: '/v1/datasets', headers: { authorization: `Bearer ${KEYS.audrey}` } })).json();
    assert.deepEqual(audrey.datasets, []);
  });

  it('turns a query\'s auditId into a signed receipt the partner can keep', async () => {
    const q = (await query('ivan', 'SELECT count(*) FROM claims')).json();
    const receipt = await app.inject({ url: `/v1/audit/receipt/${q.governance.auditId}`, headers: { authorization: `Bearer ${KEYS.ivan}` } });
    assert.equal(receipt.statusCode, 200, receipt.body);
    const entries = await app.inject({ url: '/v1/audit/entries', headers: { authorization: `Bearer ${KEYS.ivan}` } });
    assert.equal(entries.statusCode, 200, 'a partner reads its own entries');
    const own = entries.json() as { entries: { entry: { principal: string } }[] };
    assert.ok(own.entries.length > 0);
    assert.equal(new Set(own.entries.map((e) => e.entry.principal)).size, 1, 'and only its own (one pseudonymised principal)');
    const asAuditor = await app.inject({ url: '/v1/audit/entries?limit=5', headers: { authorization: `Bearer ${KEYS.audrey}` } });
    assert.equal(asAuditor.statusCode, 200);
  });
});

describe('HTTP API over a socket', () => {
  it('denies the next request on the same keep-alive connection after revocation', async () => {
    const local = await demoFixture({ patients: 300, http: true });
    try {
      const url = local.http.url;
      const ask = () => fetch(`${url}/v1/query`, {
        method: 'POST', keepalive: true,
        headers: { authorization: `Bearer ${KEYS.ivan}`, 'content-type': 'application/json', connection: 'keep-alive' },
        body: JSON.stringify({ sql: 'SELECT count(*) FROM claims', purpose: 'claims-processing' }),
      });
      assert.equal((await ask()).status, 200);
      rmSync(join(local.wsDir, 'policies', 'insurer.cedar'));
      await local.gh.reload();
      const denied = await ask();
      assert.equal(denied.status, 403);
      assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'POLICY_DENIED');
    } finally {
      await local.close();
    }
  });
});
