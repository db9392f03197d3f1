/**
 * PSI between two real nodes (separate processes, mutual TLS with pinned keys): cardinality
 * and intersection-sum against a plain computation, the listing mode refused against an
 * aggregation-rule table, and the session in both members' logs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type Cluster } from '../src/cleanroom/cluster.ts';
import { ACCOUNT_COLUMNS, bankRows } from '../src/cleanroom/demo-bank.ts';

const ACCOUNTS = 120, OFFSET = 70;
let dir: string;
let cl: Cluster;
const ok = (r: { status: number; body: any }) => { assert.equal(r.status, 200, JSON.stringify(r.body)); return r.body; };
const refused = (r: { status: number; body: any }) => { assert.notEqual(r.status, 200, 'expected a refusal'); return r.body.error as { code: string; message: string; detail: string | null }; };
const rule = { kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment'], aggregateColumns: [{ column: 'exposure', functions: ['sum'] }], scalarFunctions: [], joinRequired: true, privacyUnit: 'customer_id', minDistinctUnits: 10 };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-cleanroom-psi-'));
  cl = await startCluster(dir, [{ nodeId: 'bank-a', accounts: ACCOUNTS, offset: OFFSET }, { nodeId: 'bank-b', accounts: ACCOUNTS, offset: OFFSET }], { paillierBits: 1024 });
  const a = cl.node('bank-a'), b = cl.node('bank-b');
  ok(await a.call('POST', '/v1/cleanrooms', { id: 'fraud-ring', name: 'Shared fraud rings', purpose: 'fraud-detection' }));
  ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/invitations', { node: 'bank-b', abilities: ['query', 'receive', 'approve'] }));
  ok(await b.call('POST', '/v1/cleanrooms/fraud-ring/join'));
  for (const [n, t] of [[a, 'a_accounts'], [b, 'b_accounts']] as const) ok(await n.call('POST', '/v1/cleanrooms/fraud-ring/contributions', { table: t, dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule }));
});

after(async () => {
  await cl?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('PSI between two banks', () => {
  it('PSI cardinality and intersection-sum between two nodes match a plain computation', async () => {
    const a = cl.node('bank-a');
    const keysA = new Set(bankRows(0, ACCOUNTS, OFFSET).map((r) => r.accountKey));
    const rowsB = bankRows(1, ACCOUNTS, OFFSET);
    const shared = rowsB.filter((r) => keysA.has(r.accountKey));
    const card = ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/psi', { table: 'a_accounts', column: 'account_key', peerTable: 'b_accounts', mode: 'cardinality' }));
    assert.equal(card.cardinality, shared.length);
    const sum = ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/psi', { table: 'a_accounts', column: 'account_key', peerTable: 'b_accounts', mode: 'sum', valueColumn: 'exposure' }));
    assert.equal(sum.cardinality, shared.length);
    assert.equal(BigInt(sum.sum), shared.reduce((s, r) => s + BigInt(r.exposure), 0n));
    // Listing which accounts are shared is refused against an aggregation-rule table.
    assert.equal(refused(await a.call('POST', '/v1/cleanrooms/fraud-ring/psi', { table: 'a_accounts', column: 'account_key', peerTable: 'b_accounts', mode: 'intersection' })).code, 'OBLIGATION_VIOLATION');
    // The client's log holds the session, with its outcome; its receipt verifies.
    const receipt = ok(await a.call('GET', `/v1/cleanrooms/fraud-ring/receipts/bank-a/${card.auditId}`));
    assert.equal(receipt.entry.action, 'cleanroom.psi');
    assert.ok(receipt.entry.reasons.includes(`cardinality ${shared.length}`));
    // The bytes on the wire are those of padded sets, never the elements.
    assert.ok(card.bytesSent < 40 * 256 + 200 && card.bytesReceived < 44 * 256 + 200, JSON.stringify(card));
  });

});
