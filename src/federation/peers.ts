/**
 * The peer registry: the nodes this node trusts, each pinned by node id, public key, region,
 * jurisdiction and URL, as the workspace's `federation:` section lists them. A peer's region
 * is a property of its pinned identity: what a message claims is checked against the pin,
 * never believed (DESIGN.md invariant 12).
 *
 * ```yaml
 * federation:
 *   listen: { host: 127.0.0.1, port: 7443 }   # the node-to-node listener (not the partner port)
 *   clockSkewSeconds: 30                        # optional, default 30
 *   peers:
 *     - node: us-east-1
 *       region: us-east
 *       jurisdiction: US
 *       url: https://10.0.2.1:7443
 *       publicKey: ed25519:3q2-7w...            # `gatehouse node status` on that node prints it
 * ```
 *
 * `parseFederationSection` returns problems with the YAML path they belong to, so the
 * workspace loader can put a file and line on each.
 */
import type { KeyObject } from 'node:crypto';
import { FederationError } from './errors.ts';
import { NODE_ID, parsePublicKey, REGION } from './keys.ts';

export type { FederationConfig, PeerPin } from '../model/residency-config.ts';
import type { FederationConfig, PeerPin } from '../model/residency-config.ts';

export interface SectionProblem {
  /** Path inside the workspace file, starting at `federation`. */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

const SECTION_KEYS = ['listen', 'clockSkewSeconds', 'peers'];
const PEER_KEYS = ['node', 'region', 'jurisdiction', 'url', 'publicKey'];

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses the `federation:` section; `config` is null when any problem was found. */
export function parseFederationSection(value: unknown): { config: FederationConfig | null; problems: SectionProblem[] } {
  const problems: SectionProblem[] = [];
  const at = (path: (string | number)[], message: string): void => { problems.push({ path: ['federation', ...path], message }); };
  if (value === undefined || value === null) return { config: { listen: null, clockSkewSeconds: 30, peers: [] }, problems };
  if (!isMap(value)) {
    at([], 'must be a mapping with listen and peers');
    return { config: null, problems };
  }
  for (const k of Object.keys(value)) if (!SECTION_KEYS.includes(k)) at([k], `unknown key "${k}" (expected one of: ${SECTION_KEYS.join(', ')})`);

  let listen: FederationConfig['listen'] = null;
  if (value.listen !== undefined) {
    const l = value.listen;
    if (!isMap(l) || typeof l.port !== 'number' || !Number.isInteger(l.port) || l.port < 0 || l.port > 65535 || (l.host !== undefined && typeof l.host !== 'string')) {
      at(['listen'], 'must be { host: <address>, port: <0-65535> }');
    } else {
      listen = { host: typeof l.host === 'string' ? l.host : '127.0.0.1', port: l.port };
    }
  }
  let clockSkewSeconds = 30;
  if (value.clockSkewSeconds !== undefined) {
    const s = value.clockSkewSeconds;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 600) at(['clockSkewSeconds'], 'must be a whole number of seconds from 1 to 600');
    else clockSkewSeconds = s;
  }

  const peers: PeerPin[] = [];
  const raw = value.peers ?? [];
  if (!Array.isArray(raw)) at(['peers'], 'must be a list of pinned peers');
  const seenIds = new Set<string>();
  const seenKeys = new Set<string>();
  for (const [i, p] of (Array.isArray(raw) ? raw : []).entries()) {
    if (!isMap(p)) { at(['peers', i], 'must be a mapping with node, region, jurisdiction, url and publicKey'); continue; }
    for (const k of Object.keys(p)) if (!PEER_KEYS.includes(k)) at(['peers', i, k], `unknown key "${k}" (expected one of: ${PEER_KEYS.join(', ')})`);
    const before = problems.length;
    const text = (k: string): string => {
      const v = p[k];
      if (typeof v !== 'string' || v.length === 0) { at(['peers', i, k], 'is required'); return ''; }
      return v;
    };
    const nodeId = text('node');
    const region = text('region');
    const jurisdiction = text('jurisdiction');
    const url = text('url');
    const publicKey = text('publicKey');
    if (nodeId && !NODE_ID.test(nodeId)) at(['peers', i, 'node'], 'must be lower-case letters, digits and dashes');
    if (region && !REGION.test(region)) at(['peers', i, 'region'], 'must be lower-case letters, digits and dashes');
    if (url) {
      let ok = false;
      try { const u = new URL(url); ok = u.protocol === 'https:' && u.pathname === '/' && u.port !== ''; } catch { ok = false; }
      if (!ok) at(['peers', i, 'url'], 'must be https://<host>:<port> (node-to-node traffic is always mutual TLS)');
    }
    const key = publicKey ? parsePublicKey(publicKey) : null;
    if (publicKey && !key) at(['peers', i, 'publicKey'], 'must be ed25519:<base64url of 32 bytes>, as "gatehouse node status" prints it');
    if (nodeId && seenIds.has(nodeId)) at(['peers', i, 'node'], `node "${nodeId}" is pinned twice`);
    if (publicKey && seenKeys.has(publicKey)) at(['peers', i, 'publicKey'], 'the same key is pinned for two nodes; each node has its own key');
    seenIds.add(nodeId);
    seenKeys.add(publicKey);
    if (problems.length === before && key) peers.push({ nodeId, region, jurisdiction, url: url.replace(/\/$/, ''), publicKey, key });
  }
  return { config: problems.length === 0 ? { listen, clockSkewSeconds, peers } : null, problems };
}

/** Looks peers up by id and by key; a lookup that fails is a refusal, never a default. */
export class PeerRegistry {
  readonly #byId: Map<string, PeerPin>;
  readonly #byKey: Map<string, PeerPin>;

  constructor(peers: readonly PeerPin[]) {
    this.#byId = new Map(peers.map((p) => [p.nodeId, p]));
    this.#byKey = new Map(peers.map((p) => [p.publicKey, p]));
  }

  list(): readonly PeerPin[] {
    return [...this.#byId.values()];
  }

  /** The pinned peer with this id, or a NODE_UNKNOWN refusal. */
  get(nodeId: string): PeerPin {
    const p = this.#byId.get(nodeId);
    if (!p) throw new FederationError('NODE_UNKNOWN', `node "${nodeId}" is not pinned in this workspace`, 'pin it under federation.peers (node id, region, url and public key)');
    return p;
  }

  /** The pinned peer that holds this key, or null. */
  byKey(publicKey: string): PeerPin | null {
    return this.#byKey.get(publicKey) ?? null;
  }

  /** Pinned peers that serve a region, in the order the workspace lists them. */
  inRegion(region: string): readonly PeerPin[] {
    return this.list().filter((p) => p.region === region);
  }
}
