/**
 * A member serving PSI, as its partners meet it.
 *
 * Erasure reaches PSI (issue 23, invariant: a subject erased is out of every path from the
 * next request on). A member serving PSI keeps its table hashed to the curve between
 * sessions; before this test's fix it kept it for the collaboration's whole version, so a
 * partner could still learn, from the overlap count, that an erased customer was in the
 * member's table. Now what is kept is keyed on the member's erasure generation: the very next
 * session after an erasure runs on a fresh read. The member is a real service with a real
 * transparency log; the partner's messages arrive as the node listener hands them over.
 *
 * And a large table is hashed off the event loop: hashing to the curve costs ≈ 0.2–0.3 ms of
 * CPU per element, so a table hashed on the loop would stall every other request of the node
 * (HTTP, wire, audit) for minutes at 1M rows.
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
import { generateSealingKeys } from '../src/cleanroom/sealed-columns.ts';
import { CleanroomService } from '../src/cleanroom/service.ts';
import { FileCollaborationStore } from '../src/cleanroom/store.ts';
import { prepareSet } from '../src/psi/prepared-set.ts';
import { PsiClient } from '../src/psi/session.ts';
import { PSI_WORKER_THRESHOLD } from '../src/cleanroom/service.ts';

let dir: string;
let log: TransparencyLog;
let service: CleanroomService;
let pinA: PeerPin;
// The member's table as its pipeline would read it, and its erasure generation.
let accounts = Array.from({ length: 40 }, (_, i) => `acct-${i}`);
let generation = 0;
let reads = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-psi-erasure-'));
  const a = await initNodeIdentity(join(dir, 'a'), { nodeId: 'bank-a', region: 'eu', jurisdiction: 'EU' });
  const b = await initNodeIdentity(join(dir, 'b'), { nodeId: 'bank-b', region: 'eu', jurisdiction: 'EU' });
  pinA = { nodeId: a.nodeId, region: 'eu', jurisdiction: 'EU', url: 'https://127.0.0.1:9', publicKey: a.publicKey, key: parsePublicKey(a.publicKey)! };
  const peers = new PeerRegistry([pinA]);
  log = openTransparencyLog(join(dir, 'audit'), { demo: true });
  const store = new FileCollaborationStore(join(dir, 'store'));
  service = new CleanroomService({
    identity: b, peers, client: new FederationClient({ identity: b, peers }), store, audit: transparencyLogAudit(log),
    data: {
      read: async () => { reads++; return { columns: ['account_key'], rows: accounts.map((k) => [k]) }; },
      version: async () => `erasures ${generation}`,
    },
    sealing: await generateSealingKeys(),
  });
  let v = life.createCollaboration({ id: 'fraud-ring', name: 'Fraud', purpose: 'fraud-detection', creator: 'bank-a', creatorKey: a.publicKey });
  v = life.addInvitee(v, 'bank-a', { nodeId: 'bank-b', publicKey: b.publicKey }, ['query', 'receive']);
  v = life.acceptInvitation(v, 'bank-b', b.publicKey);
  v = life.contribute(v, 'bank-b', { table: 'b_accounts', dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule: { kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment'], aggregateColumns: [{ column: 'exposure', functions: ['sum'] }], privacyUnit: 'customer_id', minDistinctUnits: 2 } });
  store.put(v);
});

after(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One PSI cardinality session of bank-a's set against bank-b's table, through bank-b's handler. */
async function overlap(mine: readonly string[]): Promise<number> {
  const client = new PsiClient(prepareSet([...mine]), 'cardinality');
  let reply: Uint8Array | string | null = null;
  for (const message of client.hello(16)) {
    ({ reply } = await service.handlers()['cleanroom-psi']!({ operation: 'cleanroom-psi', peer: pinA, requestId: 'r', body: { collaborationId: 'fraud-ring', table: 'b_accounts', mode: 'cardinality', valueColumn: null, message } }) as { reply: Uint8Array | string | null });
  }
  assert.ok(reply instanceof Uint8Array, 'the last hello chunk is answered');
  return client.receiveReply(reply).cardinality;
}

describe('PSI after an erasure', () => {
  const partner = ['acct-3', 'acct-7', 'acct-11', 'someone-else'];

  it('counts the erased customer before the erasure, and reuses the hashed table while nothing changes', async () => {
    assert.equal(await overlap(partner), 3);
    const before = reads;
    assert.equal(await overlap(partner), 3);
    assert.equal(reads, before, 'the second session reuses what was hashed');
  });

  it('leaves the erased customer out of the very next session', async () => {
    accounts = accounts.filter((k) => k !== 'acct-7');
    generation++;
    assert.equal(await overlap(partner), 2, 'the overlap no longer reveals that acct-7 was a customer');
  });
});

describe('PSI over a large table', () => {
  it('hashes the table on worker threads: the event loop never stalls for the hashing, and the answer is the same', async () => {
    accounts = Array.from({ length: 2 * PSI_WORKER_THRESHOLD }, (_, i) => `acct-${i}`);
    generation++;
    // The longest gap between ticks of a 5 ms timer: how long the loop was held at once.
    let last = performance.now();
    let worstStallMs = 0;
    const tick = setInterval(() => { const t = performance.now(); worstStallMs = Math.max(worstStallMs, t - last); last = t; }, 5);
    const started = performance.now();
    assert.equal(await overlap(['acct-1', 'acct-9000', 'acct-16000', 'someone-else']), 3);
    const wall = performance.now() - started;
    clearInterval(tick);
    // Hashing the table on the loop would be one stall of nearly the whole session.
    assert.ok(worstStallMs < wall / 4, `the longest event-loop stall (${worstStallMs.toFixed(0)} ms) is a small part of the session (${wall.toFixed(0)} ms)`);
  });
});
