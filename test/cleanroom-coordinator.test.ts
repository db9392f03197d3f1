/**
 * A member trusts the coordinator for the collaboration's shape, never for its own parts
 * (invariant 12): a version that rewrites this node's rule or forges its approval is refused
 * and logged, a version from a node that does not coordinate is refused, and a version that
 * only removes this node's table (leaving narrows access) is kept. The member is a real
 * service with a real transparency log; the coordinator's messages arrive as the node
 * listener hands them over (authenticated peer + body).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTransparencyLog, type TransparencyLog } from '../src/audit/index.ts';
import { FederationClient, PeerRegistry, initNodeIdentity, parsePublicKey, type PeerPin } from '../src/federation/index.ts';
import { transparencyLogAudit } from '../src/cleanroom/audit-log.ts';
import { ACCOUNT_COLUMNS } from '../src/cleanroom/demo-bank.ts';
import * as life from '../src/cleanroom/lifecycle.ts';
import type { Collaboration } from '../src/cleanroom/model.ts';
import { generateSealingKeys } from '../src/cleanroom/sealed-columns.ts';
import { CleanroomService } from '../src/cleanroom/service.ts';
import { FileCollaborationStore } from '../src/cleanroom/store.ts';

let dir: string;
let log: TransparencyLog;
let service: CleanroomService;
let store: FileCollaborationStore;
let pinA: PeerPin, pinC: PeerPin;
let v: Collaboration;

const rule = (min: number) => ({ kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment'], aggregateColumns: [{ column: 'exposure', functions: ['sum'] }], privacyUnit: 'customer_id', minDistinctUnits: min });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-cleanroom-coord-'));
  const b = await initNodeIdentity(join(dir, 'b'), { nodeId: 'bank-b', region: 'eu', jurisdiction: 'EU' });
  const a = await initNodeIdentity(join(dir, 'a'), { nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU' });
  const c = await initNodeIdentity(join(dir, 'c'), { nodeId: 'bank-c', region: 'eu', jurisdiction: 'EU' });
  const pin = (i: typeof a): PeerPin => ({ nodeId: i.nodeId, region: 'eu', jurisdiction: 'EU', url: 'https://127.0.0.1:9', publicKey: i.publicKey, key: parsePublicKey(i.publicKey)! });
  pinA = pin(a); pinC = pin(c);
  const peers = new PeerRegistry([pinA, pinC]);
  log = openTransparencyLog(join(dir, 'audit'), { demo: true });
  store = new FileCollaborationStore(join(dir, 'store'));
  service = new CleanroomService({
    identity: b, peers, client: new FederationClient({ identity: b, peers }), store, audit: transparencyLogAudit(log),
    data: { read: async () => { throw new Error('no data is read in this test'); } }, sealing: await generateSealingKeys(),
  });
  // bank-b's copy: a member with its own table and an approval it gave.
  v = life.createCollaboration({ id: 'fraud-ring', name: 'Fraud', purpose: 'fraud-detection', creator: 'bank-a', creatorKey: a.publicKey });
  v = life.addInvitee(v, 'bank-a', { nodeId: 'bank-b', publicKey: b.publicKey }, ['query', 'receive', 'approve']);
  v = life.acceptInvitation(v, 'bank-b', b.publicKey);
  v = life.contribute(v, 'bank-b', { table: 'b_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule: rule(25) });
  v = life.proposeTemplate(v, 'bank-a', 'bands', 'SELECT 1');
  store.put(v);
});

after(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

const sync = (peer: PeerPin, collaboration: unknown) => service.handlers()['cleanroom-sync']!({ operation: 'cleanroom-sync', peer, requestId: 'r', body: { collaboration } });

describe('a member receiving collaboration versions', () => {
  it('refuses a version in which the coordinator loosened this node\'s rule, keeps its own copy, and logs the refusal', async () => {
    const loosened = life.setRule(v, 'bank-b', 'b_accounts', rule(2)); // as if bank-b had asked
    await assert.rejects(sync(pinA, loosened), { code: 'CONFLICT' });
    const kept = store.get('fraud-ring')!;
    assert.equal(kept.version, v.version);
    assert.equal((kept.contributions[0]!.rule as { minDistinctUnits: number }).minDistinctUnits, 25);
    const hits = await log.search({ action: 'cleanroom.sync', decision: 'deny' });
    assert.equal(hits.length, 1);
  });

  it('refuses an approval this node did not give', async () => {
    const forged = life.approveTemplate(v, 'bank-b', 'bands', v.templates[0]!.hash);
    await assert.rejects(sync(pinA, forged), { code: 'CONFLICT' });
  });

  it('refuses a version from a node that does not coordinate the collaboration', async () => {
    await assert.rejects(sync(pinC, { ...v, version: v.version + 1, creator: 'bank-c' }), { code: 'CONFLICT' });
    await assert.rejects(sync(pinC, { ...v, version: v.version + 1 }), { code: 'CONFLICT' });
    await assert.rejects(sync(pinA, { id: 'fraud-ring' }), { code: 'REQUEST_INVALID' });
  });

  it('keeps a newer version that only removes this node\'s table, and ignores an older one', async () => {
    const removed = { ...v, version: v.version + 1, contributions: [] };
    assert.deepEqual(await sync(pinA, removed), { version: v.version + 1 });
    assert.deepEqual(store.get('fraud-ring')!.contributions, []);
    assert.deepEqual(await sync(pinA, v), { version: v.version + 1 });
    assert.equal((await log.search({ action: 'cleanroom.sync', decision: 'allow' })).length, 1);
  });
});
