/**
 * A Gatehouse node's federated-learning service: the participant role (answers on the node
 * listener) and the coordinator role (calls peers), over the one node-to-node layer
 * (src/federation): the node's Ed25519 identity, the peers pinned in gatehouse.yaml's
 * `federation:` section, mutual TLS 1.3, signed envelopes with replay protection. The node
 * must be federated (a `region:` section naming its identity), as for residency.
 *
 * The HTTP routes (src/server/fl-routes.ts) find the service of a pipeline with `flNodeOf`.
 */
import { GatehouseError } from '../../errors.ts';
import { FederationError } from '../../federation/errors.ts';
import { FederationClient, loadNodeIdentity, PeerRegistry, startNodeListener, type NodeIdentity, type NodeListener, type PeerPin } from '../../federation/index.ts';
import type { Gatehouse } from '../../pipeline/gatehouse.ts';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { FlCoordinatorRole } from './coordinator.ts';
import { FlParticipantRole } from './participant.ts';
import { FlKeyAuthorityRole } from './key-authority.ts';

const NODES = new WeakMap<object, FlNode>();

/** The FL service of this pipeline, or null when the node runs none. */
export function flNodeOf(gatehouse: Gatehouse): FlNode | null {
  return NODES.get(gatehouse.governanceStore) ?? null;
}

export interface FlNodeOptions {
  readonly gatehouse: Gatehouse;
  readonly stateDir: string;
  readonly listen?: { readonly host?: string; readonly port: number };
  readonly now?: () => number;
  /** Per node call; default 60 s (a participant trains inside fl-begin). */
  readonly timeoutMs?: number;
}

export class FlNode {
  readonly identity: NodeIdentity;
  readonly participant: FlParticipantRole;
  readonly coordinator: FlCoordinatorRole;
  readonly keyAuthority: FlKeyAuthorityRole;
  readonly #listener: NodeListener;

  private constructor(identity: NodeIdentity, participant: FlParticipantRole, coordinator: FlCoordinatorRole, keyAuthority: FlKeyAuthorityRole, listener: NodeListener) {
    this.identity = identity;
    this.participant = participant;
    this.coordinator = coordinator;
    this.keyAuthority = keyAuthority;
    this.#listener = listener;
  }

  static async start(o: FlNodeOptions): Promise<FlNode> {
    const config = o.gatehouse.workspace.policy.residency;
    if (!config) throw new GatehouseError('WORKSPACE_INVALID', 'this workspace has no region section, so the node is not part of a federation', { hint: 'add region: and federation: to gatehouse.yaml (docs/federated.md)' });
    const identity = loadNodeIdentity(o.stateDir);
    if (identity.nodeId !== config.nodeId) throw new FederationError('NODE_REGION_MISMATCH', `this node's identity is "${identity.nodeId}", but gatehouse.yaml says "${config.nodeId}"`, 'run "gatehouse node init" for this node');
    const peers = new PeerRegistry(config.federation.peers);
    const pins = (): ReadonlyMap<string, KeyObject> => {
      const m = new Map<string, KeyObject>(config.federation.peers.map((p) => [p.nodeId, p.key]));
      m.set(identity.nodeId, createPublicKey(identity.privateKey));
      return m;
    };
    const selfPin = (): PeerPin => ({ nodeId: identity.nodeId, region: identity.region, jurisdiction: identity.jurisdiction, url: 'local', publicKey: identity.publicKey, key: createPublicKey(identity.privateKey) });
    const participant = new FlParticipantRole(o.gatehouse, identity.nodeId, identity.privateKey, pins);
    const keyAuthority = new FlKeyAuthorityRole(o.gatehouse, identity.nodeId, identity.privateKey, pins);
    const handlers = { ...participant.handlers(), ...keyAuthority.handlers() };
    const client = new FederationClient({ identity, peers, ...(o.now ? { now: o.now } : {}), timeoutMs: o.timeoutMs ?? 60_000 });
    const coordinator = new FlCoordinatorRole({ gatehouse: o.gatehouse, client, self: identity.nodeId, pins, local: handlers, selfPin });
    const listen = o.listen ?? config.federation.listen ?? { host: '127.0.0.1', port: 0 };
    const listener = await startNodeListener({
      identity, peers, host: listen.host ?? '127.0.0.1', port: listen.port, clockSkewSeconds: config.federation.clockSkewSeconds,
      maxBodyBytes: 64 << 20, ...(o.now ? { now: o.now } : {}),
      handlers: { ...handlers, ping: async () => ({ node: identity.nodeId, region: identity.region }) },
    });
    const node = new FlNode(identity, participant, coordinator, keyAuthority, listener);
    NODES.set(o.gatehouse.governanceStore, node);
    return node;
  }

  get port(): number { return this.#listener.port; }
  close(): Promise<void> { return this.#listener.close(); }
}
