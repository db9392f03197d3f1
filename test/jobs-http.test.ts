/**
 * The code-to-data routes over real HTTP: documented in /openapi.json, schema-checked (a
 * malformed body is refused before the façade and still audited once), and the whole path
 * — submit, approve, run, airlock submit, two reviews, release — works as a client drives it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addJobPrincipals, admitJobPrincipal, bundleOf, JOB_KEY, JOB_PRINCIPAL, NADIA_KEY, OSCAR_KEY, partnerKey } from '../src/jobs/testing.ts';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let f: ServerFixture;
// The demo's governance records Northwind's agreement, under which a release goes into its workspace.
before(async () => {
  f = await demoFixture({ patients: 300, http: true, governance: true, edit: (ws) => addJobPrincipals(ws, OSCAR_KEY, NADIA_KEY, { jobKey: JOB_KEY }) });
  await admitJobPrincipal(f.gh, KEYS.olivia, new Date());
});
after(async () => { await f?.close(); });

async function call(key: string | null, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, any> }> {
  const r = await fetch(`${f.http.url}${path}`, {
    method, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, json: await r.json() as Record<string, any> };
}

describe('code-to-data over HTTP', () => {
  it('lists the job, attestation and airlock routes in /openapi.json with bearer auth', async () => {
    const doc = (await call(null, 'GET', '/openapi.json')).json;
    for (const p of ['/v1/jobs', '/v1/jobs/{id}/approve', '/v1/jobs/{id}/run', '/v1/jobs/mock', '/v1/attestation/release', '/v1/airlock', '/v1/airlock/{id}/review', '/v1/airlock/{id}/release']) {
      assert.ok(doc.paths[p], `${p} is documented`);
    }
    assert.ok(doc.paths['/v1/jobs'].post.requestBody, 'submit documents its body');
  });

  it('refuses a malformed bundle by schema, with one audit entry, and an anonymous caller', async () => {
    const before = f.log.size;
    const bad = await call(KEYS.rhea, 'POST', '/v1/jobs', { manifest: {}, code: 'x', signer: 'k', signature: 's', extra: 1 });
    assert.equal(bad.status, 400);
    assert.equal(f.log.size - before, 1);
    const anon = await call(null, 'POST', '/v1/jobs', bundleOf(partnerKey()));
    assert.equal(anon.status, 401);
  });

  it('carries a job from submission to released outputs', async () => {
    const key = partnerKey();
    assert.equal((await call(KEYS.olivia, 'POST', '/v1/jobs/signers', { keyId: key.keyId, org: 'northwind-research', publicKeyPem: key.publicKeyPem })).status, 200);
    const sub = await call(KEYS.rhea, 'POST', '/v1/jobs', bundleOf(key));
    assert.equal(sub.status, 200, JSON.stringify(sub.json));
    const { jobId, codeHash } = sub.json;
    const ok = await call(KEYS.olivia, 'POST', `/v1/jobs/${jobId}/approve`, { codeHash, datasets: ['encounters'], purpose: 'research', principal: JOB_PRINCIPAL });
    assert.equal(ok.json.status, 'approved');
    const run = await call(KEYS.rhea, 'POST', `/v1/jobs/${jobId}/run`, { params: { min_count: 10 } });
    assert.equal(run.status, 200, JSON.stringify(run.json));
    const air = await call(KEYS.rhea, 'POST', '/v1/airlock', { runId: run.json.runId });
    assert.equal(air.json.state, 'in_review', JSON.stringify(air.json));
    assert.equal((await call(KEYS.olivia, 'POST', `/v1/airlock/${air.json.id}/review`, { decision: 'approve', reason: 'ok' })).json.state, 'in_review');
    assert.equal((await call(OSCAR_KEY, 'POST', `/v1/airlock/${air.json.id}/review`, { decision: 'approve', reason: 'ok' })).json.state, 'approved');
    const rel = await call(KEYS.rhea, 'POST', `/v1/airlock/${air.json.id}/release`);
    assert.equal(rel.json.state, 'released');
    assert.equal(rel.json.outputsSha256, run.json.outputsSha256);
    const ws = await call(KEYS.rhea, 'GET', '/v1/governance/workspace');
    assert.ok(ws.json.items.some((i: { id: string; source: string }) => i.id === rel.json.workspace[0].item && i.source === `airlock:${air.json.id}`), JSON.stringify(ws.json));
    const list = await call(KEYS.rhea, 'GET', '/v1/airlock');
    assert.ok(list.json.requests.some((r: { id: string; state: string }) => r.id === air.json.id && r.state === 'released'));
  });
});
