/**
 * Clean rooms on a served node (`startNode` with `cleanroom: {…}`, src/node/start.ts): the
 * node's CleanroomService, built from what the node already has. Its node-to-node operations
 * (`cleanroom-*`) are served on the node's one listener, beside residency routing and
 * federated learning (src/residency/service.ts `alsoServe`), so one organisation's node can
 * be in a clean room and in a residency or federated-learning federation at once.
 *
 * - identity: the node key in <state>/federation (`gatehouse node init`), which must be the
 *   node gatehouse.yaml's `region:` names;
 * - peers: gatehouse.yaml's `federation.peers` (pinned keys), listener at `federation.listen`;
 * - collaborations: a FileCollaborationStore under <state>/cleanroom;
 * - audit: the node's own transparency log;
 * - member data: read through the façade as the internal clean-room principal, under the
 *   node's own Cedar policy and obligations (src/operations/cleanroom/member-read.ts);
 * - privacy budgets: the node's own ledger, where each querying member's DP budget is charged
 *   when this node computes an analysis under a rule that requires DP;
 * - sealing keys: the compute node's X25519 key, kept in <state>/cleanroom/sealing-key.jwk
 *   (0600, like the node key), so columns sealed to it before a restart still open after.
 *
 * The routes find the service with `cleanroomOf(gatehouse)` (src/server/app.ts), keyed like
 * the residency node by the pipeline's governance store, an object the counted view the
 * faces are given shares with the pipeline.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JWK } from 'jose';
import type { TransparencyLog } from '../audit/log.ts';
import { GatehouseError } from '../errors.ts';
import type { KeyObject } from 'node:crypto';
import { FederationClient, PeerRegistry, type NodeHandler, type NodeIdentity } from '../federation/index.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { transparencyLogAudit } from './audit-log.ts';
import { internalMemberData } from './member-data.ts';
import { generateSealingKeys, importSealingKeys, type SealingKeys } from './sealed-columns.ts';
import { registerRoomResultDeposits } from './result-deposits.ts';
import { CleanroomService } from './service.ts';
import type { ComputeAttester } from './compute-attester.ts';
import { FileCollaborationStore } from './store.ts';

export interface CleanroomNodeConfig {
  /** The workspace principal the collaborations read as (default `cleanroom`); it needs no credential. */
  readonly principal?: string;
  /** Per node-to-node call (default 120 s: a PSI round on a large set). */
  readonly timeoutMs?: number;
  /** Paillier key size for intersection-sum (default 2048). */
  readonly paillierBits?: number;
  readonly onProgress?: (phase: string, done: number, total: number) => void;
  /** This node's TEE, so members that require attestation of the compute node release to it. */
  readonly attester?: ComputeAttester;
}

export interface CleanroomNode {
  /** The service, once the node listener has loaded and checked the node identity. */
  service(): CleanroomService | null;
  /** The node-to-node operations to serve on the node's listener, built with its identity. */
  handlers(identity: NodeIdentity): Readonly<Record<string, NodeHandler>>;
  close(): Promise<void>;
}

const NODES = new WeakMap<object, CleanroomService>();

/** The clean-room service of this pipeline's node, or null when the node serves no clean rooms. */
export function cleanroomOf(gatehouse: Pick<Gatehouse, 'governanceStore'>): CleanroomService | null {
  return NODES.get(gatehouse.governanceStore) ?? null;
}

/** The sealing key pair, created once and kept beside the collaborations. */
export async function persistedSealingKeys(dir: string): Promise<SealingKeys> {
  const file = join(dir, 'sealing-key.jwk');
  if (existsSync(file)) return importSealingKeys(JSON.parse(readFileSync(file, 'utf8')) as JWK);
  const keys = await generateSealingKeys();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(keys.privateJwk), { mode: 0o600, flag: 'wx' });
  return keys;
}

/**
 * Everything the clean rooms need that does not depend on the node identity (checked by the
 * listener that loads it): the sealing key, the store. The service itself is built in
 * `handlers(identity)`, which the node listener calls once it has loaded and checked the
 * identity that gatehouse.yaml names.
 */
export async function prepareCleanroomNode(options: CleanroomNodeConfig & {
  readonly gatehouse: Gatehouse;
  readonly log: TransparencyLog;
  readonly stateDir: string;
  /** The node's attestation mode (NodeConfig.attestation): test mode admits the local sandbox attester. */
  readonly attestation?: { readonly allowSample: boolean; readonly samplePlatformKey?: KeyObject };
}): Promise<CleanroomNode> {
  const { gatehouse } = options;
  const config = gatehouse.workspace.policy.residency;
  if (!config) {
    throw new GatehouseError('WORKSPACE_INVALID', 'clean rooms need this node in a federation, but gatehouse.yaml has no region section', {
      hint: 'add region: {node, region, jurisdiction} and federation: {listen, peers} to gatehouse.yaml, then run "gatehouse node init" (docs/cleanrooms.md)',
    });
  }
  const dir = join(options.stateDir, 'cleanroom');
  const sealing = await persistedSealingKeys(dir);
  const store = new FileCollaborationStore(dir);
  let service: CleanroomService | null = null;
  let client: FederationClient | null = null;
  const a = options.attestation;
  return {
    service: () => service,
    handlers(identity) {
      if (service) throw new GatehouseError('INTERNAL', 'the clean-room service is already served on a listener');
      const peers = new PeerRegistry(config.federation.peers);
      client = new FederationClient({ identity, peers, timeoutMs: options.timeoutMs ?? 120_000 });
      service = new CleanroomService({
        identity, peers, client, sealing, store,
        audit: transparencyLogAudit(options.log), data: internalMemberData(gatehouse, options.principal ?? 'cleanroom'), budgets: gatehouse.budgets,
        ...(a?.allowSample ? { attestation: { mode: 'test' as const, ...(a.samplePlatformKey ? { samplePlatformKey: a.samplePlatformKey } : {}) } } : {}),
        ...(options.attester ? { attester: options.attester } : {}),
        ...(options.paillierBits ? { paillierBits: options.paillierBits } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      // A result delivered to receiving members is first deposited in each one's partner
      // workspace on this node (issue 23; fails closed without an agreement in force).
      registerRoomResultDeposits(service, (d) => gatehouse.depositRoomResult(identity.nodeId, d));
      NODES.set(gatehouse.governanceStore, service);
      return service.handlers();
    },
    async close() {
      NODES.delete(gatehouse.governanceStore);
      client?.close();
    },
  };
}
