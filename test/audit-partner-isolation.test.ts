/**
 * Issue 12 §5, as the attacker: the insurer (ivan) tries every audit route, over HTTP and
 * the CLI, with the research contractor's (rhea's) entry ids. He must get NOT_FOUND (or
 * only hashes, for proofs) and learn nothing: "exists but not yours" answers exactly like
 * "does not exist". The real Gatehouse authorises each read (authorizeAuditRead); the
 * plugin is wired as the server wires it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { auditHttpPlugin } from '../src/audit/http.ts';
import { auditExport, auditTail, auditVerifyReceipt } from '../src/audit/cli.ts';
import { metaOf } from '../src/server/app.ts';
import { demoFixture, KEYS, type Fixture, type Who } from './helpers/workspace.ts';

let fx: Fixture;
let app: FastifyInstance;
let url: string;
let rheaIds: number[];
let ivanId: string;
let rheaPseudonyms: Set<string>;
let ivanPseudonyms: Set<string>;

const get = (who: Who, path: string) => app.inject({ url: path, headers: { authorization: `Bearer ${KEYS[who]}` } });

function cli(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { out, text: () => Buffer.concat(chunks).toString('utf8') };
}

before(async () => {
  fx = await demoFixture({ patients: 1500 });
  app = Fastify();
  await app.register(auditHttpPlugin, { log: fx.log, authorize: (request, scope) => fx.gh.authorizeAuditRead(metaOf(request), scope) });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  await fx.query('rhea', 'SELECT count(*) AS n FROM encounters');
  await fx.query('rhea', 'SELECT region, count(*) AS n FROM patients GROUP BY region');
  ivanId = (await fx.query('ivan', 'SELECT count(*) AS n FROM claims')).governance.auditId;
  await fx.log.checkpoint();
  rheaPseudonyms = new Set(fx.log.pseudonymsOf('rhea'));
  ivanPseudonyms = new Set(fx.log.pseudonymsOf('ivan'));
  const asAuditor = (await get('audrey', '/v1/audit/entries?principal=rhea')).json();
  rheaIds = asAuditor.entries.map((e: { index: number }) => e.index);
  assert.ok(rheaIds.length >= 2, 'test premise: rhea has entries');
});
after(async () => { await app.close(); await fx.close(); });

/** Everything of rhea's that ivan must not learn from a body. */
function assertNothingOfRhea(body: string, where: string): void {
  for (const p of rheaPseudonyms) assert.ok(!body.includes(p), `${where}: rhea's pseudonym leaked`);
  for (const id of rheaIds) {
    const leaf = JSON.stringify(fx.log.leaf(id).entry.time);
    assert.ok(!body.includes(leaf), `${where}: the time of rhea's entry ${id} leaked`);
  }
}

describe('audit reads are scoped to the caller (partner isolation)', () => {
  it('a receipt for another partner\'s entry answers exactly like one that does not exist', async () => {
    const missing = await get('ivan', '/v1/audit/receipt/999999');
    for (const id of rheaIds) {
      const res = await get('ivan', `/v1/audit/receipt/${id}`);
      assert.equal(res.statusCode, 404);
      assert.equal(res.statusCode, missing.statusCode);
      assert.deepEqual(res.json().error.code, 'AUDIT_ENTRY_NOT_FOUND');
      assert.equal(res.json().error.message.replace(String(id), 'N'), missing.json().error.message.replace('999999', 'N'));
      assertNothingOfRhea(res.body, `receipt ${id}`);
    }
    // rhea herself, and an auditor, get it.
    assert.equal((await get('rhea', `/v1/audit/receipt/${rheaIds[0]}`)).statusCode, 200);
    assert.equal((await get('audrey', `/v1/audit/receipt/${rheaIds[0]}`)).statusCode, 200);
  });

  it('a search narrowed to another partner, by principal, pseudonym or index, returns only the caller\'s own entries', async () => {
    for (const q of ['principal=rhea', `pseudonym=${encodeURIComponent([...rheaPseudonyms][0]!)}`, `fromIndex=${rheaIds[0]}&limit=1`, 'purpose=research', 'limit=10000']) {
      const res = await get('ivan', `/v1/audit/entries?${q}`);
      assert.equal(res.statusCode, 200, q);
      const entries = res.json().entries as { index: number; entry: { principal: string } }[];
      for (const e of entries) assert.ok(ivanPseudonyms.has(e.entry.principal), `${q}: entry ${e.index} is not ivan's`);
      assertNothingOfRhea(res.body, q);
    }
    const own = (await get('ivan', '/v1/audit/entries')).json().entries as { auditId: string }[];
    assert.ok(own.some((e) => e.auditId === ivanId), 'ivan sees his own query entry');
  });

  it('an export holds only the caller\'s own entries, and says it is partial', async () => {
    const res = await get('ivan', '/v1/audit/export');
    assert.equal(res.statusCode, 200);
    const lines = res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(lines[0].complete, false);
    const entries = lines.filter((l) => l.type === 'entry');
    assert.ok(entries.length > 0);
    for (const l of entries) assert.ok(ivanPseudonyms.has(l.leaf.entry.principal));
    assertNothingOfRhea(res.body, 'export');
    const full = (await get('audrey', '/v1/audit/export')).body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(full[0].complete, true);
  });

  it('an inclusion proof for another partner\'s entry is hashes only', async () => {
    for (const id of rheaIds) {
      const res = await get('ivan', `/v1/audit/proof/inclusion?index=${id}`);
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.deepEqual(Object.keys(body).sort(), ['index', 'leafHash', 'proof', 'size']);
      for (const h of [body.leafHash, ...body.proof]) assert.match(h, /^[A-Za-z0-9+/]{43}=$/);
      assertNothingOfRhea(res.body, `proof ${id}`);
    }
  });

  it('over the CLI: tail and export show only ivan\'s entries, verify-receipt refuses rhea\'s ids and verifies ivan\'s own offline', async () => {
    const tail = cli();
    assert.equal(await auditTail({ url, token: KEYS.ivan, limit: 1000, json: true }, tail.out), 0);
    const tailed = tail.text().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(tailed.length > 0);
    for (const h of tailed) assert.ok(ivanPseudonyms.has(h.entry.principal));
    assertNothingOfRhea(tail.text(), 'cli tail');

    const exp = cli();
    assert.equal(await auditExport({ url, token: KEYS.ivan }, exp.out), 0);
    assertNothingOfRhea(exp.text(), 'cli export');

    for (const id of rheaIds) {
      const r = cli();
      assert.equal(await auditVerifyReceipt({ receipt: String(id), url, token: KEYS.ivan }, r.out), 2);
      assert.match(r.text(), /AUDIT_ENTRY_NOT_FOUND/);
      assertNothingOfRhea(r.text(), 'cli verify-receipt');
    }

    // Item 4: the partner verifies its own receipt with its own credential, no auditor rights.
    const keys = fx.log.publicKeys().vkeys;
    const mine = cli();
    assert.equal(await auditVerifyReceipt({ receipt: ivanId, url, token: KEYS.ivan, publicKey: keys }, mine.out), 0, mine.text());
    assert.match(mine.text(), new RegExp(`^OK: entry ${ivanId} is included`));
    const unpinned = cli();
    assert.equal(await auditVerifyReceipt({ receipt: ivanId, url, token: KEYS.ivan }, unpinned.out), 0);
    assert.match(unpinned.text(), /pin it with --public-key/);
  });
});
