/**
 * A clean-room result delivered to a receiving member lands in that member organisation's
 * workspace on the compute node (issue 23), through the real path: a partner's node asks the
 * compute node for an analysis over the node-to-node handler, the compute node reads its own
 * contributed columns through its pipeline as the clean-room principal, runs the governed
 * analysis and, before it answers, deposits the result. The compute node is a real
 * CleanroomService over the demo node, wired as a served node wires it
 * (`registerRoomResultDeposits`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FederationClient, PeerRegistry, initNodeIdentity, parsePublicKey, type PeerPin } from '../src/federation/index.ts';
import { transparencyLogAudit } from '../src/cleanroom/audit-log.ts';
import * as life from '../src/cleanroom/lifecycle.ts';
import { internalMemberData } from '../src/cleanroom/member-data.ts';
import { generateSealingKeys } from '../src/cleanroom/sealed-columns.ts';
import { CleanroomService, type QueryOutcome } from '../src/cleanroom/service.ts';
import { FileCollaborationStore } from '../src/cleanroom/store.ts';
import { registerRoomResultDeposits } from '../src/cleanroom/result-deposits.ts';
import { apiKeyDigest } from '../src/identity/digest.ts';
import { codeOf, demoFixture, KEYS, type Fixture } from './helpers/workspace.ts';

const DAY = 86_400_000;
const ROOM_KEY = 'test-key-cleanroom-0123456789ab';
const meta = (credential: string) => ({ credential, source: '127.0.0.1', channel: 'test' });

/** The clean-room principal (a key only so it can sign the acceptable-use document) and its Cedar permit. */
function addCleanroomPrincipal(wsDir: string): void {
  const file = join(wsDir, 'gatehouse.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^principals:\n/m, `principals:
  cleanroom:
    displayName: Clean rooms (internal)
    groups: [cleanrooms]
    attributes: { org: st-avery, region: us-east }
    apiKeySha256: [${apiKeyDigest(ROOM_KEY)}]
`));
  writeFileSync(join(wsDir, 'policies', 'cleanroom.cedar'), `@id("cleanroom-readmissions")
@reason("the readmissions clean room reads contributed encounter columns for research")
permit (principal == Principal::"cleanroom", action == Action::"query", resource == Dataset::"encounters")
when { context.purpose == "research" };
`);
}

describe('a clean-room result delivered through the compute node', () => {
  let fx: Fixture;
  let dir: string;
  let service: CleanroomService;
  let northwind: PeerPin, zenith: PeerPin;
  let clock = Math.floor(Date.now() / 1000) * 1000 + 60_000;
  const t0 = clock;

  const op = (credential: string, name: string, args: unknown) => fx.gh.governanceOp(meta(credential), name, args);
  const roomItems = async (credential: string, destroyed = false) => ((await op(credential, 'workspace.list', { destroyed })) as { items: { id: string; item: string; source: string; expiresAt: string; destroyedAt: string | null }[] }).items.filter((i) => i.item === 'room-result');
  const ask = (peer: PeerPin, collaborationId: string) => service.handlers()['cleanroom-query']!({
    operation: 'cleanroom-query', peer, requestId: 'r1',
    body: { collaborationId, sql: 'SELECT department, count(*) AS n FROM enc GROUP BY department' },
  }) as Promise<QueryOutcome>;

  before(async () => {
    fx = await demoFixture({ patients: 300, governance: true, now: () => new Date(clock), edit: addCleanroomPrincipal });
    const aup = await op(ROOM_KEY, 'acknowledge.show', { name: 'acceptable-use' }) as { document: { sha256: string } };
    await op(ROOM_KEY, 'acknowledge.sign', { name: 'acceptable-use', sha256: aup.document.sha256 });
    await op(KEYS.olivia, 'training.record', { principal: 'cleanroom', course: 'hipaa-privacy', completedAt: new Date(clock - DAY).toISOString(), expiresAt: new Date(clock + 400 * DAY).toISOString() });

    dir = mkdtempSync(join(tmpdir(), 'gh-deposit-room-'));
    const self = await initNodeIdentity(join(dir, 'st-avery'), { nodeId: 'st-avery', region: 'us', jurisdiction: 'US' });
    const pin = async (nodeId: string): Promise<PeerPin> => {
      const i = await initNodeIdentity(join(dir, nodeId), { nodeId, region: 'us', jurisdiction: 'US' });
      return { nodeId, region: 'us', jurisdiction: 'US', url: 'https://127.0.0.1:9', publicKey: i.publicKey, key: parsePublicKey(i.publicKey)! };
    };
    northwind = await pin('northwind-research');
    zenith = await pin('zenith-labs');
    const peers = new PeerRegistry([northwind, zenith]);
    const sealing = await generateSealingKeys();
    const store = new FileCollaborationStore(join(dir, 'store'));
    const columns = [{ name: 'department', type: 'VARCHAR' }, { name: 'patient_id', type: 'BIGINT' }, { name: 'length_of_stay_days', type: 'INTEGER' }] as const;
    const rule = { kind: 'aggregation', joinColumns: [], dimensionColumns: ['department'], aggregateColumns: [{ column: 'length_of_stay_days', functions: ['count', 'sum'] }], scalarFunctions: [], joinRequired: false, privacyUnit: 'patient_id', minDistinctUnits: 5 };
    const collaboration = (id: string, partner: PeerPin) => {
      let c = life.createCollaboration({ id, name: id, purpose: 'research', creator: 'st-avery', creatorKey: self.publicKey, sealingKey: { kty: 'OKP', crv: 'X25519', x: String(sealing.publicJwk.x) } });
      c = life.addInvitee(c, 'st-avery', { nodeId: partner.nodeId, publicKey: partner.publicKey }, ['query', 'receive']);
      c = life.acceptInvitation(c, partner.nodeId, partner.publicKey);
      return life.contribute(c, 'st-avery', { table: 'enc', dataset: 'encounters', columns, rule });
    };
    store.put(collaboration('readmissions', northwind));
    store.put(collaboration('zenith-pilot', zenith));
    service = new CleanroomService({
      identity: self, peers, client: new FederationClient({ identity: self, peers, timeoutMs: 2_000 }), store, sealing,
      audit: transparencyLogAudit(fx.log), data: internalMemberData(fx.gh, 'cleanroom'), budgets: fx.gh.budgets,
    });
    // What a served node does where it builds its service (src/cleanroom/node.ts).
    registerRoomResultDeposits(service, (d) => fx.gh.depositRoomResult(service.nodeId, d));
  });

  after(async () => {
    await fx?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the querying member\'s result is in its organisation\'s workspace, with the compute node\'s lineage', async () => {
    const out = await ask(northwind, 'readmissions');
    assert.ok(out.rows.length > 0);
    const [item] = await roomItems(KEYS.rhea);
    assert.ok(item, 'Northwind sees the room result in its workspace');
    assert.equal(item.source, `cleanroom:readmissions/${out.queryId}`);
    assert.equal(item.expiresAt, new Date(t0 + 90 * DAY).toISOString(), 'Northwind\'s agreement keeps results 90 days');
    const got = await op(KEYS.rhea, 'workspace.get', { id: item.id }) as { content: { rows: unknown[]; resultDigest: string } };
    assert.deepEqual(got.content.rows, out.rows);
    assert.equal(got.content.resultDigest, out.resultDigest);
    assert.equal(await codeOf(op(KEYS.ivan, 'workspace.get', { id: item.id })), 'NOT_FOUND', 'Keystone cannot read Northwind\'s room result');
  });

  test('a receiving member without an agreement gets no result at all', async () => {
    const before = (await fx.log.search({ action: 'cleanroom.deposit' })).length;
    assert.equal(await codeOf(ask(zenith, 'zenith-pilot')), 'CONFLICT');
    const entries = (await fx.log.search({ action: 'cleanroom.deposit' })).slice(before);
    assert.equal(entries.length, 1);
    assert.notEqual(entries[0]!.entry.decision, 'allow');
  });

  test('at the agreement\'s retention the room result is crypto-shredded', async () => {
    clock = t0 + 91 * DAY;
    const [item] = await roomItems(KEYS.rhea);
    const r = await op(KEYS.olivia, 'workspace.expire', { org: 'northwind-research' }) as { destroyed: string[]; certificates: unknown[] };
    assert.ok(r.destroyed.includes(item!.id));
    assert.equal(r.certificates.length, 1);
    assert.equal((await roomItems(KEYS.rhea)).length, 0);
    assert.equal(await codeOf(op(KEYS.rhea, 'workspace.get', { id: item!.id })), 'NOT_FOUND');
  });
});
