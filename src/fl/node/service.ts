/**
 * A Gatehouse node's federated-learning service: the participant role (answers on the node
 * listener) and the coordinator role (calls peers), over the one node-to-node layer
 * (src/federation): the node's Ed25519 identity, the peers pinned in gatehouse.yaml's
 * `federation:` section, mutual TLS 1.3, signed envelopes with replay protection. The node
 * must be federated (a `region:` section naming its identity), as for residency.
 *
 * A node has one node-to-node listener (federation.listen). `gatehouse serve` (src/node/start.ts)
 * builds this service with `FlNode.create` and has the residency node's listener serve its
 * operations beside `query` and `ping`, so every served federated node is an FL participant,
 * coordinator or key authority; what it actually does is decided per job by its own operators
 * (group fl-operators, default deny). `FlNode.start` gives the service a listener of its own.
 *
 * The HTTP routes (src/server/fl-routes.ts) find the service of a pipeline with `flNodeOf`.
 */
import { GatehouseError } from '../../errors.ts';
import { FederationError } from '../../federation/errors.ts';
import { FederationClient, loadNodeIdentity, PeerRegistry, startNodeListener, type NodeHandler, type NodeIdentity, type NodeListener, type PeerPin } from '../../federation/index.ts';
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

/** What `FlNode.create` needs when another service owns the node listener and has loaded and checked the identity. */
export interface FlServiceOptions {
  readonly gatehouse: Gatehouse;
  readonly identity: NodeIdentity;
  readonly now?: () => number;
  /** Per node call; default 60 s (a participant trains inside fl-begin). */
  readonly timeoutMs?: number;
}

/** Largest node message the FL operations accept: a 1M-parameter masked update is ~5.4 MB as JSON; a CKKS update is tens of MB. */
export const FL_MAX_BODY_BYTES = 64 << 20;

export class FlNode {
  readonly identity: NodeIdentity;
  readonly participant: FlParticipantRole;
  readonly coordinator: FlCoordinatorRole;
  readonly keyAuthority: FlKeyAuthorityRole;
  /** The FL operations (fl-begin, fl-share, …, the key authority's) to serve on a node listener. */
  readonly handlers: Readonly<Record<string, NodeHandler>>;
  readonly #client: FederationClient;
  #listener: NodeListener | null = null;
  #portOf: () => number = () => 0;

  private constructor(identity: NodeIdentity, participant: FlParticipantRole, coordinator: FlCoordinatorRole, keyAuthority: FlKeyAuthorityRole, handlers: Readonly<Record<string, NodeHandler>>, client: FederationClient) {
    this.identity = identity;
    this.participant = participant;
    this.coordinator = coordinator;
    this.keyAuthority = keyAuthority;
    this.handlers = handlers;
    this.#client = client;
  }

  /**
   * The FL service of a federated node without a listener of its own: the node's one
   * node-to-node listener (the residency node's, src/node/start.ts) serves `handlers`, and
   * `listenedOn` tells this service that listener's port. Registered for `flNodeOf`.
   */
  static create(o: FlServiceOptions): FlNode {
    const config = o.gatehouse.workspace.policy.residency;
    if (!config) throw new GatehouseError('WORKSPACE_INVALID', 'this workspace has no region section, so the node is not part of a federation', { hint: 'add region: and federation: to gatehouse.yaml (docs/federated.md)' });
    const identity = o.identity;
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
    const node = new FlNode(identity, participant, coordinator, keyAuthority, handlers, client);
    NODES.set(o.gatehouse.governanceStore, node);
    return node;
  }

  /** The FL service on a node listener of its own (a node that runs no residency service). */
  static async start(o: FlNodeOptions): Promise<FlNode> {
    const config = o.gatehouse.workspace.policy.residency;
    if (!config) throw new GatehouseError('WORKSPACE_INVALID', 'this workspace has no region section, so the node is not part of a federation', { hint: 'add region: and federation: to gatehouse.yaml (docs/federated.md)' });
    const identity = loadNodeIdentity(o.stateDir);
    const node = FlNode.create({ gatehouse: o.gatehouse, identity, ...(o.now ? { now: o.now } : {}), ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) });
    const listen = o.listen ?? config.federation.listen ?? { host: '127.0.0.1', port: 0 };
    try {
      const listener = await startNodeListener({
        identity, peers: new PeerRegistry(config.federation.peers), host: listen.host ?? '127.0.0.1', port: listen.port, clockSkewSeconds: config.federation.clockSkewSeconds,
        maxBodyBytes: FL_MAX_BODY_BYTES, ...(o.now ? { now: o.now } : {}),
        handlers: { ...node.handlers, ping: async () => ({ node: identity.nodeId, region: identity.region }) },
      });
      node.#listener = listener;
      node.listenedOn(listener);
    } catch (err) {
      await node.close();
      throw err;
    }
    return node;
  }

  /** The node listener that serves `handlers` (for `port`). */
  listenedOn(listener: { readonly port: number }): void {
    this.#portOf = () => listener.port;
  }

  get port(): number { return this.#portOf(); }

  async close(): Promise<void> {
    this.#client.close();
    await this.#listener?.close();
    this.#listener = null;
  }
}
