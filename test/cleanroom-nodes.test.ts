/**
 * Three banks, three real nodes (separate processes on loopback ports, each a Gatehouse
 * node with its own policy, engine, node key and transparency log): the collaboration from
 * invitation to leaving, analyses against a plain computation, rule violations from every
 * angle over HTTP, receipts verified across nodes (PSI between nodes: cleanroom-psi-nodes.test.ts),
 * a node presenting the wrong key, and a member leaving mid-query.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type Cluster } from '../src/cleanroom/cluster.ts';
import { ACCOUNT_COLUMNS, bankRows } from '../src/cleanroom/demo-bank.ts';
import { FederationClient, PeerRegistry, initNodeIdentity, parsePublicKey } from '../src/federation/index.ts';

const ACCOUNTS = 300, OFFSET = 150;
let dir: string;
let cl: Cluster;

const rule = (min: number) => ({
  kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'],
  aggregateColumns: [{ column: 'exposure', functions: ['sum', 'avg', 'count'] }], scalarFunctions: ['round'],
  joinRequired: true, privacyUnit: 'customer_id', minDistinctUnits: min,
});
const ok = (r: { status: number; body: any }) => { assert.equal(r.status, 200, JSON.stringify(r.body)); return r.body; };
const refused = (r: { status: number; body: any }) => { assert.notEqual(r.status, 200, 'expected a refusal'); return r.body.error as { code: string; message: string; detail: string | null }; };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-cleanroom-nodes-'));
  cl = await startCluster(dir, [
    { nodeId: 'bank-a', accounts: ACCOUNTS, offset: OFFSET },
    { nodeId: 'bank-b', accounts: ACCOUNTS, offset: OFFSET },
    { nodeId: 'bank-c', accounts: ACCOUNTS, offset: OFFSET, readDelayMs: 1500 },
  ]);
});

after(async () => {
  await cl?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('three banks in a clean room', () => {
  it('a member creates a collaboration; signed invitations are accepted by the invitees', async () => {
    const a = cl.node('bank-a'), b = cl.node('bank-b'), c = cl.node('bank-c');
    ok(await a.call('POST', '/v1/cleanrooms', { id: 'fraud-ring', name: 'Shared fraud rings', purpose: 'fraud-detection' }));
    ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/invitations', { node: 'bank-b', abilities: ['query', 'receive', 'approve'] }));
    ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/invitations', { node: 'bank-c', abilities: ['approve'] }));
    assert.equal(ok(await b.call('GET', '/v1/cleanrooms')).invitations[0].collaborationId, 'fraud-ring');
    ok(await b.call('POST', '/v1/cleanrooms/fraud-ring/join'));
    const joined = ok(await c.call('POST', '/v1/cleanrooms/fraud-ring/join')).collaboration;
    assert.deepEqual(joined.members.map((m: any) => `${m.nodeId}:${m.status}`).sort(), ['bank-a:active', 'bank-b:active', 'bank-c:active']);
    // The routes validate their bodies and require the node's credential.
    assert.equal(refused(await a.call('POST', '/v1/cleanrooms/fraud-ring/invitations', { node: 'bank-c', abilities: ['admin'] })).code, 'REQUEST_INVALID');
    const anonymous = await fetch(`${a.controlUrl}/v1/cleanrooms`);
    assert.equal(anonymous.status, 401);
    // A second acceptance of the same invitation is refused (each is used once).
    assert.equal(refused(await c.call('POST', '/v1/cleanrooms/fraud-ring/join')).code, 'NOT_FOUND');
  });

  it('each bank contributes its accounts under its own rule; every member holds the same version', async () => {
    for (const [id, min] of [['bank-a', 25], ['bank-b', 10], ['bank-c', 40]] as const) {
      ok(await cl.node(id).call('POST', '/v1/cleanrooms/fraud-ring/contributions', { table: id.replace('bank-', '') + '_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule: rule(min) }));
    }
    const versions = await Promise.all(cl.nodes.map(async (n) => ok(await n.call('GET', '/v1/cleanrooms/fraud-ring')).collaboration.version));
    assert.equal(new Set(versions).size, 1, `versions ${versions.join(',')}`);
  });

  it('an analysis joins two banks on the compute node, matches a plain computation, and reaches only receivers', async () => {
    const a = cl.node('bank-a');
    const sql = 'SELECT a.segment, count(*) AS accounts, sum(b.exposure) AS exposure FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.segment ORDER BY a.segment';
    const out = ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { sql }));
    const ra = bankRows(0, ACCOUNTS, OFFSET), rb = new Map(bankRows(1, ACCOUNTS, OFFSET).map((r) => [r.accountKey, r]));
    const plain = new Map<string, { n: number; e: number; units: Set<string> }>();
    for (const r of ra) {
      const m = rb.get(r.accountKey);
      if (!m) continue;
      const g = plain.get(r.segment) ?? { n: 0, e: 0, units: new Set() };
      g.n++; g.e += m.exposure; g.units.add(r.customerId);
      plain.set(r.segment, g);
    }
    assert.ok(out.rows.length >= 1);
    for (const [segment, n, e] of out.rows) {
      assert.equal(Number(n), plain.get(segment)!.n);
      assert.equal(Number(e), plain.get(segment)!.e);
      assert.ok(plain.get(segment)!.units.size >= 25, 'every released group has at least the strictest threshold of the tables touched (25, bank-a) of customers');
    }
    assert.ok(plain.get('private')!.units.size < 25 && !out.rows.some((r: unknown[]) => r[0] === 'private'), 'the small "private" group is withheld');
    assert.ok(out.obligationsApplied.some((l: string) => l.startsWith('aggregationOnly:b_accounts(min 25')), 'bank-b\'s table is held to bank-a\'s stricter threshold');
    assert.ok(out.obligationsApplied.includes('cleanroom.rule:b_accounts:aggregation'));
    // bank-b may receive and got the result; bank-c may not and got nothing.
    const atB = ok(await cl.node('bank-b').call('GET', '/v1/cleanrooms/fraud-ring/results')).results;
    assert.equal(atB.length, 1);
    assert.equal(atB[0].resultDigest, out.resultDigest);
    assert.equal(ok(await cl.node('bank-c').call('GET', '/v1/cleanrooms/fraud-ring/results')).results.length, 0);
    // bank-a verifies bank-b's receipt for releasing its columns, from bank-b's own log.
    const receipt = ok(await a.call('GET', `/v1/cleanrooms/fraud-ring/receipts/bank-b/${out.receipts['bank-b']}`));
    assert.equal(receipt.verified, true);
    assert.equal(receipt.entry.action, 'cleanroom.release-columns');
    assert.deepEqual([...receipt.entry.columns].sort(), ['b_accounts.account_key', 'b_accounts.customer_id', 'b_accounts.exposure']);
    assert.equal(readdirSync('/dev/shm').filter((n) => n.startsWith(`gh-cleanroom-${a.process.pid}-`)).length, 0, 'the compute node deleted the columns');
  });

  it('refuses rule violations from every angle', async () => {
    const a = cl.node('bank-a');
    const q = async (sql: string) => refused(await a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { sql }));
    const J = 'FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key';
    assert.match((await q(`SELECT a.account_key, sum(b.exposure) ${J} GROUP BY a.account_key`)).message, /join column/);
    assert.match((await q('SELECT segment, sum(exposure) FROM a_accounts GROUP BY segment')).message, /joined with another member/);
    assert.match((await q(`SELECT a.segment, max(b.exposure) ${J} GROUP BY a.segment`)).message, /not an allowed clean-room aggregate/);
    assert.match((await q(`SELECT upper(a.segment), sum(b.exposure) ${J} GROUP BY upper(a.segment)`)).message, /upper\(\) is not among/);
    // Below-threshold groups: grouping by a dimension that isolates few customers releases nothing for them.
    // Below-threshold groups: either withheld, or (when the totals would give them away) the whole table is refused.
    const small = await a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { sql: `SELECT a.segment, a.flagged, count(*) AS n ${J} GROUP BY a.segment, a.flagged` });
    if (small.status === 200) {
      assert.ok(small.body.rowsSuppressed >= 1);
      assert.ok(!small.body.rows.some((r: unknown[]) => r[0] === 'private'));
    } else {
      assert.equal(small.body.error.code, 'OBLIGATION_VIOLATION');
      assert.match(small.body.error.message, /small groups/);
    }
    // An unapproved template, then a changed text after approval.
    const text = 'SELECT a.segment, sum(b.exposure) AS exposure FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key WHERE a.segment = $1 GROUP BY a.segment';
    ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/templates', { name: 'exposure', text }));
    const c = ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/contributions', { table: 'a_custom', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule: { kind: 'custom', joinColumns: ['account_key'], templates: ['exposure'] } })).collaboration;
    assert.ok(c.templates.some((t: any) => t.name === 'exposure'));
    const unapproved = refused(await a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { template: 'exposure', params: ['retail'] }));
    assert.equal(unapproved.detail, 'CLEANROOM_TEMPLATE_UNAPPROVED');
    ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/templates/exposure/approve', {}));
    ok(await cl.node('bank-b').call('POST', '/v1/cleanrooms/fraud-ring/templates/exposure/approve', {}));
    ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { template: 'exposure', params: ['retail'] }));
    ok(await a.call('POST', '/v1/cleanrooms/fraud-ring/templates', { name: 'exposure', text: text.replace('AS exposure', 'AS total') }));
    assert.equal(refused(await a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { template: 'exposure', params: ['retail'] })).detail, 'CLEANROOM_TEMPLATE_UNAPPROVED');
    // A member without the receive (and query) ability asking for results.
    const c3 = refused(await cl.node('bank-c').call('POST', '/v1/cleanrooms/fraud-ring/queries', { sql: `SELECT a.segment, sum(b.exposure) ${J} GROUP BY a.segment` }));
    assert.equal(c3.detail, 'CLEANROOM_ABILITY_MISSING');
  });

  it('refuses a node presenting the wrong key and a node nobody pinned', async () => {
    const a = cl.node('bank-a'), b = cl.node('bank-b');
    const me = await initNodeIdentity(join(dir, 'impostor'), { nodeId: 'bank-b', region: 'eu', jurisdiction: 'EU' });
    // The impostor's client pins bank-a's address with bank-b's key: the TLS check stops it before a byte is sent.
    const wrongPin = new FederationClient({ identity: me, peers: new PeerRegistry([{ nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU', url: a.nodeUrl, publicKey: b.publicKey, key: parsePublicKey(b.publicKey)! }]) });
    await assert.rejects(wrongPin.call('bank-a', 'cleanroom-sync', {}), (e: any) => e.detail === 'NODE_KEY_MISMATCH' || /key/.test(e.message));
    wrongPin.close();
    // With bank-a's right key pinned, bank-a still refuses the impostor's own (unpinned) key.
    const unpinned = new FederationClient({ identity: me, peers: new PeerRegistry([{ nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU', url: a.nodeUrl, publicKey: a.publicKey, key: parsePublicKey(a.publicKey)! }]) });
    await assert.rejects(unpinned.call('bank-a', 'cleanroom-sync', { collaboration: { id: 'fraud-ring', creator: 'bank-b', version: 999 } }));
    unpinned.close();
    assert.equal(ok(await a.call('GET', '/v1/cleanrooms/fraud-ring')).collaboration.creator, 'bank-a', 'nothing the impostor sent was applied');
  });

  it('a member leaving mid-query revokes at once: the analysis is refused and the columns already sent are deleted', async () => {
    const a = cl.node('bank-a'), b = cl.node('bank-b');
    // bank-c reads slowly (1.5 s): while the compute node waits for it, bank-b leaves.
    const sql = 'SELECT b.segment, sum(c.exposure) AS e FROM b_accounts b JOIN c_accounts c ON b.account_key = c.account_key GROUP BY b.segment';
    const running = a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { sql });
    await new Promise((r) => setTimeout(r, 400));
    ok(await b.call('POST', '/v1/cleanrooms/fraud-ring/leave'));
    const r = refused(await running);
    assert.equal(r.code, 'GONE');
    assert.match(r.message, /left the collaboration during the query/);
    assert.equal(readdirSync('/dev/shm').filter((n) => n.startsWith(`gh-cleanroom-${a.process.pid}-`)).length, 0);
    // And the next analysis no longer sees bank-b's table at all.
    const next = refused(await a.call('POST', '/v1/cleanrooms/fraud-ring/queries', { sql }));
    assert.equal(next.code, 'SQL_UNKNOWN_DATASET');
    const collab = ok(await a.call('GET', '/v1/cleanrooms/fraud-ring')).collaboration;
    assert.equal(collab.members.find((m: any) => m.nodeId === 'bank-b').status, 'left');
  });
});
