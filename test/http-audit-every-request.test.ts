/**
 * Invariant 8 over HTTP, as an attacker probes it: every request — malformed, oversized,
 * misrouted, unauthenticated, refused or allowed — leaves exactly one audit entry, and the
 * entry says what the client received.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let f: ServerFixture;
before(async () => { f = await demoFixture({ patients: 300, http: true }); });
after(async () => { await f?.close(); });

interface Probe { readonly name: string; readonly method: string; readonly path: string; readonly headers?: Record<string, string>; readonly body?: string | Buffer }

const json = { 'content-type': 'application/json' };
const ivan = { authorization: `Bearer ${KEYS.ivan}`, ...json };
const PROBES: readonly Probe[] = [
  { name: 'a body over 256 KiB', method: 'POST', path: '/v1/query', headers: ivan, body: JSON.stringify({ sql: `SELECT '${'x'.repeat(300 * 1024)}'`, purpose: 'claims-processing' }) },
  { name: 'a body that is not JSON', method: 'POST', path: '/v1/query', headers: ivan, body: '{"sql": "SELECT 1", ' },
  { name: 'a body of the wrong media type', method: 'POST', path: '/v1/query', headers: { authorization: `Bearer ${KEYS.ivan}`, 'content-type': 'text/plain' }, body: 'SELECT 1' },
  { name: 'a body that breaks the schema', method: 'POST', path: '/v1/query', headers: ivan, body: JSON.stringify({ sql: 'SELECT 1', purpose: 'claims-processing', extra: true }) },
  { name: 'an empty JSON body', method: 'POST', path: '/v1/query', headers: ivan, body: '' },
  { name: 'an unknown route', method: 'GET', path: '/v1/../../etc/passwd', headers: ivan },
  { name: 'an unknown method on a known route', method: 'DELETE', path: '/v1/query', headers: ivan },
  { name: 'no credential', method: 'POST', path: '/v1/query', headers: json, body: JSON.stringify({ sql: 'SELECT count(*) FROM claims', purpose: 'claims-processing' }) },
  { name: 'a forged credential', method: 'POST', path: '/v1/query', headers: { ...json, authorization: 'Bearer nope' }, body: JSON.stringify({ sql: 'SELECT count(*) FROM claims', purpose: 'claims-processing' }) },
  { name: 'a refused query', method: 'POST', path: '/v1/query', headers: ivan, body: JSON.stringify({ sql: 'SELECT count(*) FROM encounters', purpose: 'claims-processing' }) },
  { name: 'an allowed query', method: 'POST', path: '/v1/query', headers: ivan, body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing' }) },
];

describe('every HTTP request leaves exactly one truthful audit entry', () => {
  for (const p of PROBES) {
    it(`${p.name}: one entry, whose decision matches the status the client got`, async () => {
      const before = f.log.size;
      const r = await fetch(`${f.http.url}${p.path}`, { method: p.method, headers: p.headers ?? {}, ...(p.body !== undefined ? { body: p.body } : {}) });
      await r.arrayBuffer();
      assert.equal(f.log.size - before, 1, `exactly one entry (status ${r.status})`);
      const e = f.log.leaf(before).entry;
      if (r.status === 200) {
        assert.equal(e.decision, 'allow');
      } else {
        assert.notEqual(e.decision, 'allow', `the client got ${r.status}, the entry must not say allow`);
        assert.ok(e.errorCode, 'the entry names the code the client received');
      }
    });
  }
});

describe('observers of recorded entries', () => {
  it('see every recorded entry exactly once, after it is durable, and a failing observer fails no request', async () => {
    const seen: string[] = [];
    const stop = f.gh.onRecorded((entry, auditId) => { seen.push(`${auditId}:${entry.action}`); });
    const stopBad = f.gh.onRecorded(() => { throw new Error('a broken observer'); });
    try {
      const before = f.log.size;
      const ok = await fetch(`${f.http.url}/v1/query`, { method: 'POST', headers: ivan, body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM claims', purpose: 'claims-processing' }) });
      assert.equal(ok.status, 200);
      const missing = await fetch(`${f.http.url}/v1/nowhere`, { headers: ivan });
      assert.equal(missing.status, 404);
      assert.equal(f.log.size - before, 2);
      assert.equal(seen.length, 2);
      assert.deepEqual(seen.map((s) => s.split(':')[1]), ['query', 'http GET unknown']);
    } finally {
      stop(); stopBad();
    }
  });
});
