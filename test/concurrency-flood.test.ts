/**
 * Denial of service by one partner (issue 12 §3): twenty heavy queries at once from one
 * principal must not starve the others. The node admits queries fairly and refuses the
 * flood's overflow with RATE_LIMITED and a Retry-After, each refusal audited once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let f: ServerFixture;

before(async () => {
  f = await demoFixture({
    patients: 3000, http: true,
    edit: (ws) => {
      const p = join(ws, 'gatehouse.yaml');
      writeFileSync(p, readFileSync(p, 'utf8').replace('defaults:\n', 'defaults:\n  concurrency: { total: 2, perPrincipal: 1, perOrganisation: 1, queuePerPrincipal: 2 }\n'));
    },
  });
});
after(async () => { await f?.close(); });

async function post(who: keyof typeof KEYS, sql: string, purpose: string): Promise<{ status: number; retryAfter: string | null; code: string | null; at: number }> {
  const r = await fetch(`${f.http.url}/v1/query`, { method: 'POST', headers: { authorization: `Bearer ${KEYS[who]}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql, purpose }) });
  const body = await r.json() as { error?: { code: string } };
  return { status: r.status, retryAfter: r.headers.get('retry-after'), code: body.error?.code ?? null, at: performance.now() };
}

test('a flood of heavy queries from one principal is admitted fairly: the overflow gets 429 with Retry-After, another partner is still served', async () => {
  const heavy = 'SELECT count(*) AS n FROM encounters a JOIN encounters b ON a.cost < b.cost';
  const before = f.log.size;
  const flood = Array.from({ length: 20 }, () => post('ada', heavy, 'operations'));
  const other = post('ivan', "SELECT count(*) AS n FROM claims", 'claims-processing');
  const [floodResults, otherResult] = [await Promise.all(flood), await other];
  assert.equal(otherResult.status, 200, 'the other partner is served during the flood');
  const refused = floodResults.filter((r) => r.status === 429);
  const served = floodResults.filter((r) => r.status === 200);
  assert.ok(refused.length >= 10, `most of the flood is refused at once (${refused.length} of 20)`);
  assert.ok(served.length >= 1, 'the flooder still gets its fair share');
  for (const r of refused) {
    assert.equal(r.code, 'RATE_LIMITED');
    assert.equal(r.retryAfter, '1');
  }
  assert.ok(otherResult.at < Math.max(...served.map((r) => r.at)), 'the other partner did not wait behind the whole flood');
  // Every request left exactly one entry, and each refusal is a denial with its code.
  assert.equal(f.log.size - before, 21);
  const entries = Array.from({ length: 21 }, (_, i) => f.log.leaf(before + i).entry);
  assert.equal(entries.filter((e) => e.errorCode === 'RATE_LIMITED' && e.decision === 'deny').length, refused.length);
});
