import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { TransparencyLog } from './log.ts';
import { auditHttpPlugin } from './http.ts';
import { verifyExport, verifyReceipt } from './verify.ts';
import { parseVkey } from './note.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

async function setup(t: import('node:test').TestContext) {
  const d = tempDir();
  const log = TransparencyLog.open(d.dir, { passphrase: TEST_PASSPHRASE });
  await Promise.all(Array.from({ length: 25 }, (_, i) => log.append(record(i))));
  const app = Fastify();
  await app.register(auditHttpPlugin, {
    log,
    authorize: (request) => {
      if (request.headers.authorization !== 'Bearer auditor') throw Object.assign(new Error('not allowed to read the audit log'), { statusCode: 403, code: 'FORBIDDEN' });
      return { principal: 'audrey', auditor: true };
    },
  });
  t.after(async () => { await app.close(); await log.close(); d.cleanup(); });
  const get = (url: string, auth = true) => app.inject({ method: 'GET', url, headers: auth ? { authorization: 'Bearer auditor' } : {} });
  return { log, get };
}

test('every audit route requires the caller-supplied authorization', async (t) => {
  const { get } = await setup(t);
  for (const url of ['/v1/audit/checkpoint', '/v1/audit/keys', '/v1/audit/proof/inclusion?index=1', '/v1/audit/proof/consistency?first=1', '/v1/audit/receipt/1', '/v1/audit/entries', '/v1/audit/export']) {
    const res = await get(url, false);
    assert.equal(res.statusCode, 403, url);
    assert.equal(res.json().error.code, 'FORBIDDEN');
  }
});

test('checkpoint, proofs, receipt, entries and export work over HTTP and verify offline', async (t) => {
  const { log, get } = await setup(t);
  const cp = (await get('/v1/audit/checkpoint')).json();
  assert.equal(cp.size, 25);
  const vkeys: string[] = (await get('/v1/audit/keys')).json().vkeys;
  const verifiers = vkeys.map(parseVkey);
  const incl = (await get('/v1/audit/proof/inclusion?index=7&size=20')).json();
  assert.equal(incl.proof.length > 0, true);
  const cons = (await get('/v1/audit/proof/consistency?first=10&second=25')).json();
  assert.deepEqual(cons, log.consistencyProof(10, 25));
  const receipt = (await get('/v1/audit/receipt/7')).json();
  assert.equal(verifyReceipt(receipt, verifiers).index, 7);
  const entries = (await get('/v1/audit/entries?decision=deny&limit=3')).json().entries;
  assert.deepEqual(entries.map((e: { index: number }) => e.index), [0, 5, 10]);
  const byPrincipal = (await get(`/v1/audit/entries?principal=${encodeURIComponent('user-2@partner.example')}`)).json().entries;
  assert.ok(byPrincipal.length > 0 && byPrincipal.every((e: { entry: { principal: string } }) => e.entry.principal.startsWith('p1:')));
  const exp = await get('/v1/audit/export');
  assert.match(String(exp.headers['content-type']), /application\/x-ndjson/);
  const report = await verifyExport(exp.body.split('\n'), { verifiers });
  assert.equal(report.ok, true, JSON.stringify(report.problems));
  const partial = await get('/v1/audit/export?dataset=claims');
  const pr = await verifyExport(partial.body.split('\n'), { verifiers });
  assert.equal(pr.ok, true);
  assert.equal(pr.complete, false);
  assert.equal(pr.entries, 9);
});

test('hostile query input gets a 400 with a stable code and out-of-range proofs a typed error', async (t) => {
  const { get } = await setup(t);
  const cases: [string, number, string][] = [
    ['/v1/audit/proof/inclusion?index=-1', 400, 'AUDIT_INPUT_INVALID'],
    ['/v1/audit/proof/inclusion?index=abc', 400, 'AUDIT_INPUT_INVALID'],
    ['/v1/audit/proof/inclusion?index=25&size=25', 400, 'AUDIT_PROOF_RANGE'],
    ['/v1/audit/proof/inclusion?index=1&size=26', 400, 'AUDIT_PROOF_RANGE'],
    ['/v1/audit/proof/consistency?first=9&second=3', 400, 'AUDIT_PROOF_RANGE'],
    ['/v1/audit/receipt/99', 404, 'AUDIT_ENTRY_NOT_FOUND'],
    ['/v1/audit/receipt/..%2F..%2Fetc', 400, 'AUDIT_INPUT_INVALID'],
    ['/v1/audit/entries?decision=maybe', 400, 'AUDIT_INPUT_INVALID'],
    ['/v1/audit/entries?from=yesterday', 400, 'AUDIT_INPUT_INVALID'],
  ];
  for (const [url, status, code] of cases) {
    const res = await get(url);
    assert.equal(res.statusCode, status, url);
    assert.equal(res.json().error.code, code, url);
  }
});
