/**
 * Clean rooms on a served node (`startNode` with `cleanroom: {…}`, src/node/start.ts): the
 * node's CleanroomService, built from what the node already has, and its node-to-node
 * listener.
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
import { FederationClient, loadNodeIdentity, PeerRegistry, startNodeListener, type NodeIdentity, type NodeListener } from '../federation/index.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { transparencyLogAudit } from './audit-log.ts';
import { internalMemberData } from './member-data.ts';
import { generateSealingKeys, importSealingKeys, type SealingKeys } from './sealed-columns.ts';
import { CleanroomService } from './service.ts';
import { FileCollaborationStore } from './store.ts';

export interface CleanroomNodeConfig {
  /** Overrides federation.listen (tests use port 0). */
  readonly listen?: { readonly host?: string; readonly port: number };
  /** The workspace principal the collaborations read as (default `cleanroom`); it needs no credential. */
  readonly principal?: string;
  /** Per node-to-node call (default 120 s: a PSI round on a large set). */
  readonly timeoutMs?: number;
  /** Paillier key size for intersection-sum (default 2048). */
  readonly paillierBits?: number;
  readonly onProgress?: (phase: string, done: number, total: number) => void;
}

export interface CleanroomNode {
  readonly service: CleanroomService;
  readonly identity: NodeIdentity;
  /** The node listener's port (for peers, never partners). */
  readonly port: number;
  close(): Promise<void>;
}

const NODES = new WeakMap<object, CleanroomNode>();

/** The clean-room service of this pipeline's node, or null when the node serves no clean rooms. */
export function cleanroomOf(gatehouse: Pick<Gatehouse, 'governanceStore'>): CleanroomService | null {
  return NODES.get(gatehouse.governanceStore)?.service ?? null;
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

export async function startCleanroomNode(options: CleanroomNodeConfig & { readonly gatehouse: Gatehouse; readonly log: TransparencyLog; readonly stateDir: string }): Promise<CleanroomNode> {
  const { gatehouse } = options;
  const config = gatehouse.workspace.policy.residency;
  if (!config) {
    throw new GatehouseError('WORKSPACE_INVALID', 'clean rooms need this node in a federation, but gatehouse.yaml has no region section', {
      hint: 'add region: {node, region, jurisdiction} and federation: {listen, peers} to gatehouse.yaml, then run "gatehouse node init" (docs/cleanrooms.md)',
    });
  }
  const identity = loadNodeIdentity(options.stateDir);
  if (identity.nodeId !== config.nodeId) {
    throw new GatehouseError('WORKSPACE_INVALID', `this node's identity is "${identity.nodeId}", but gatehouse.yaml says "${config.nodeId}"`, { hint: 'fix region.node in gatehouse.yaml, or run "gatehouse node init" for this node' });
  }
  const dir = join(options.stateDir, 'cleanroom');
  const sealing = await persistedSealingKeys(dir);
  const peers = new PeerRegistry(config.federation.peers);
  const client = new FederationClient({ identity, peers, timeoutMs: options.timeoutMs ?? 120_000 });
  const service = new CleanroomService({
    identity, peers, client, sealing, store: new FileCollaborationStore(dir),
    audit: transparencyLogAudit(options.log), data: internalMemberData(gatehouse, options.principal ?? 'cleanroom'), budgets: gatehouse.budgets,
    ...(options.paillierBits ? { paillierBits: options.paillierBits } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const listen = options.listen ?? config.federation.listen ?? { host: '127.0.0.1', port: 0 };
  let listener: NodeListener;
  try {
    listener = await startNodeListener({ identity, peers, host: listen.host ?? '127.0.0.1', port: listen.port, clockSkewSeconds: config.federation.clockSkewSeconds, handlers: service.handlers() });
  } catch (err) {
    client.close();
    throw err;
  }
  const node: CleanroomNode = {
    service, identity, port: listener.port,
    async close() {
      NODES.delete(gatehouse.governanceStore);
      client.close();
      await listener.close();
    },
  };
  NODES.set(gatehouse.governanceStore, node);
  return node;
}
