/**
 * A participant node facing a malicious coordinator (in process: two banks' real pipelines
 * and participant roles, the attacker calling their node handlers directly as a pinned peer
 * would). It may not re-run a round to difference one bank's update out of two sums, nor get
 * a release from a bank that did not join, nor make a bank train on a column its policy keeps.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import type { PeerPin } from '../src/federation/index.ts';
import { FlParticipantRole } from '../src/fl/node/participant.ts';
import { plansOf, type JobSpec } from '../src/fl/node/job.ts';
import { BANK_KEYS, createBanks, type BankNode } from '../src/fl/node/scenario.ts';
import { FRAUD_FEATURES } from '../src/fl/models/synthetic.ts';
import { unwire, wire } from '../src/fl/secagg/codec.ts';
import { SecAggCoordinator } from '../src/fl/secagg/coordinator.ts';
import { runSecAgg, type SecAggChannel } from '../src/fl/secagg/round.ts';
import { DEFAULTS, modelOf } from '../src/fl/training/config.ts';

let dir: string;
let banks: BankNode[];
const nodes: GatehouseNode[] = [];
const roles = new Map<string, FlParticipantRole>();
let pins: Map<string, import('node:crypto').KeyObject>;
const attacker = (): PeerPin => ({ nodeId: 'bank-c', region: 'us-east', jurisdiction: 'US', url: 'https://127.0.0.1:1', publicKey: banks[2]!.identity.publicKey, key: createPublicKey(banks[2]!.identity.privateKey) });

const spec = (job: string, features: readonly string[] = FRAUD_FEATURES): JobSpec => ({
  job, coordinator: 'bank-c', participants: ['bank-a', 'bank-b'], agreement: 'agr-x',
  config: { ...DEFAULTS, features: [...features], rounds: 5, batchSize: 100_000, aggregation: { mode: 'secagg', degree: 1, threshold: 2 } },
});

/** The attacker (bank-c, a pinned peer) runs one secure-aggregation session for `round` against the two banks. */
async function session(s: JobSpec, round: number, roster = s.participants): Promise<{ included: readonly string[]; sum: Uint32Array }> {
  const session = `attack-${randomUUID()}`;
  const length = plansOf(s).train.length;
  const coord = new SecAggCoordinator({ session, roster, degree: 1, threshold: 2, length, graphSeed: session }, pins);
  const weights = [...modelOf(s.config).init(1)];
  const h = (id: string) => roles.get(id)!.handlers();
  const call = (id: string, op: string, body: unknown) => h(id)[op]!({ operation: op, peer: attacker(), requestId: session, body });
  const channel: SecAggChannel = {
    advertise: async (id) => unwire.advertise(await call(id, 'fl-begin', { spec: { ...s, participants: roster }, phase: 'train', round, session, weights })),
    share: async (id, adverts) => unwire.share(await call(id, 'fl-share', { session, adverts: adverts.map(wire.advertise) })),
    masked: async (id, shares) => unwire.masked(await call(id, 'fl-masked', { session, shares: wire.incoming(shares) }), length),
    consistency: async (id, survivors) => unwire.consistency(await call(id, 'fl-consistency', { session, survivors })),
    unmask: async (id, req) => unwire.unmask(await call(id, 'fl-unmask', { session, ...wire.unmaskRequest(req) })),
  };
  const r = await runSecAgg(coord, channel);
  return { included: r.included, sum: r.sum };
}

describe('a participant facing a malicious coordinator', { timeout: 60_000 }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-flp-'));
    banks = await createBanks(dir, { rows: 200 });
    pins = new Map(banks.map((b) => [b.nodeId, createPublicKey(b.identity.privateKey)]));
    for (const b of banks.slice(0, 2)) {
      const node = await startNode({ workspaceDir: b.wsDir, auditDir: join(b.wsDir, 'audit'), demo: true, engineOptions: { poolSize: 1 } });
      nodes.push(node);
      roles.set(b.nodeId, new FlParticipantRole(node.gatehouse, b.nodeId, b.identity.privateKey, () => pins));
    }
    for (const job of ['job-rerun', 'job-columns', 'job-changed', 'job-dp']) {
      for (const b of banks.slice(0, 2)) {
        roles.get(b.nodeId)!.join({ job, coordinator: 'bank-c', dataset: 'transactions', label: 'is_fraud', credential: BANK_KEYS[b.nodeId]!.operator, budgetSubject: 'org:x', holdout: 0.25, requireDp: job === 'job-dp' });
      }
    }
  });
  after(async () => {
    for (const n of nodes) await n.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a round is released once: re-running it (to subtract two sums) is refused by every participant', async () => {
    const s = spec('job-rerun');
    const first = await session(s, 1);
    assert.deepEqual(first.included, ['bank-a', 'bank-b']);
    await assert.rejects(session(s, 1), (e: any) => e.detail === 'FL_TOO_FEW_PARTICIPANTS', 'both banks refuse round 1 again, so nothing is unmasked');
    const h = roles.get('bank-a')!.handlers();
    await assert.rejects(h['fl-begin']!({ operation: 'fl-begin', peer: attacker(), requestId: 'x', body: { spec: s, phase: 'train', round: 1, session: `again-${randomUUID()}`, weights: [...modelOf(s.config).init(1)] } }), (e: any) => e.detail === 'FL_MESSAGE_REPLAYED');
    const next = await session(s, 2);
    assert.deepEqual(next.included, ['bank-a', 'bank-b'], 'the next round goes ahead');
  });

  test('a coordinator may not change a job mid-way (say, drop the noise or shrink the roster)', async () => {
    const s = spec('job-changed');
    await session(s, 1);
    const h = roles.get('bank-a')!.handlers();
    const changed = { ...s, config: { ...s.config, learningRate: 5 } };
    await assert.rejects(h['fl-begin']!({ operation: 'fl-begin', peer: attacker(), requestId: 'x', body: { spec: changed, phase: 'train', round: 2, session: `chg-${randomUUID()}`, weights: [...modelOf(s.config).init(1)] } }), (e: any) => e.detail === 'FL_PARAMETERS_INVALID' && /changed its configuration/.test(e.message));
  });

  test('a bank that joined with a privacy budget refuses a job without DP noise', async () => {
    const h = roles.get('bank-a')!.handlers();
    const s = spec('job-dp');
    await assert.rejects(h['fl-begin']!({ operation: 'fl-begin', peer: attacker(), requestId: 'x', body: { spec: s, phase: 'train', round: 1, session: `dp-${randomUUID()}`, weights: [...modelOf(s.config).init(1)] } }), (e: any) => e.code === 'POLICY_DENIED' && /only with DP noise/.test(e.message));
  });

  test('a bank will not train on a column its policy does not release for model-training', async () => {
    const h = roles.get('bank-a')!.handlers();
    const s = spec('job-columns', ['account_no', 'amount_z']);
    await assert.rejects(h['fl-begin']!({ operation: 'fl-begin', peer: attacker(), requestId: 'x', body: { spec: s, phase: 'train', round: 1, session: `cols-${randomUUID()}`, weights: [...modelOf(s.config).init(1)] } }), (e: any) => e.code === 'OBLIGATION_VIOLATION' && /account_no/.test(e.message));
  });

  test('a bank that did not join a job releases nothing for it', async () => {
    const h = roles.get('bank-b')!.handlers();
    const s = spec('job-never-joined');
    await assert.rejects(h['fl-begin']!({ operation: 'fl-begin', peer: attacker(), requestId: 'x', body: { spec: s, phase: 'train', round: 1, session: `nj-${randomUUID()}`, weights: [...modelOf(s.config).init(1)] } }), (e: any) => e.code === 'POLICY_DENIED');
  });
});
