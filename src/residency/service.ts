/**
 * A region-pinned node: queries travel to the data (issue 20).
 *
 * On the node a query enters, `query()` plans the route (route.ts) and then either runs the
 * one path here, forwards the query to a pinned node in the data's region, or splits it into
 * per-region partial aggregates (split.ts) and adds them. On the data's node, the node
 * listener's `query` operation authenticates the forwarding node (mutual TLS and the signed
 * envelope, src/federation) and then runs the ONE governed path — `gatehouse.query` through
 * the façade, under channel `federation:<origin region>` so Cedar sees where the request
 * came from — which authenticates the original principal itself, decides, governs and
 * executes there. Before the answer leaves, the border rule (border.ts) refuses raw rows.
 *
 * Audit: the entry node writes `residency.forward`, the data node `query` (what it executed)
 * and `residency.release` (what it sent out, under which rule), all with one request id.
 *
 * A region that cannot be reached fails the whole request with REGION_UNREACHABLE naming
 * the region and its datasets: no partial answer is ever passed off as complete.
 */
import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../errors.ts';
import type { CellValue, ResultColumn } from '../engine/engine.ts';
import { resultDigest } from '../kernel/digest.ts';
import type { Gatehouse, QueryRequest, QueryResponse } from '../pipeline/gatehouse.ts';
import { parseSql } from '../query/parse.ts';
import { FederationClient, loadNodeIdentity, PeerRegistry, startNodeListener, type NodeIdentity, type NodeListener, type PeerPin } from '../federation/index.ts';
import { FederationError } from '../federation/errors.ts';
import type { ResidencyConfig } from '../federation/residency-config.ts';
import { crossingBasis } from './border.ts';
import { forwardedChannel } from '../federation/residency-context.ts';
import { planRoute, type Route } from './route.ts';
import { combine, splitShape, type Partial } from './split.ts';

export interface RegionPart {
  readonly region: string;
  readonly node: string;
  /** The audit entry of the step on that node (the release entry on a data node, the query entry here). */
  readonly auditId: string;
  readonly rowsSuppressed: number;
  readonly obligationsApplied: readonly string[];
}

export interface ResidencyAnswer extends QueryResponse {
  readonly residency: {
    readonly requestId: string;
    readonly route: Route['kind'];
    readonly parts: readonly RegionPart[];
    /** False when a region withheld groups (suppression): the combined totals then miss them. */
    readonly complete: boolean;
  };
}

interface ForwardBody {
  readonly credential: string;
  readonly sql: string;
  readonly purpose: string;
  readonly source: string;
  readonly params?: readonly (string | null)[];
}

interface Forwarded {
  readonly response: QueryResponse;
  readonly releaseAuditId: string;
  readonly node: string;
  readonly region: string;
}

export interface ResidencyNodeOptions {
  readonly gatehouse: Gatehouse;
  /** Holds the node identity (<stateDir>/federation). */
  readonly stateDir: string;
  /** Overrides federation.listen (tests and the demo use port 0). */
  readonly listen?: { readonly host?: string; readonly port: number };
  readonly now?: () => number;
  /** Per forwarded call; default 30 s. */
  readonly timeoutMs?: number;
  readonly onRefused?: (e: FederationError) => void;
}

/**
 * Residency nodes by the pipeline they serve. Keyed by the pipeline's governance store, an
 * object that is the same through the counted view the faces are given (src/node/in-flight.ts)
 * and for the whole life of the pipeline.
 */
const NODES = new WeakMap<object, ResidencyNode>();

/** The residency node serving this pipeline, or null when the node is not federated. */
export function residencyOf(gatehouse: Gatehouse): ResidencyNode | null {
  return NODES.get(gatehouse.governanceStore) ?? null;
}

function bearer(c: QueryRequest['credential']): string {
  if (typeof c === 'string' && c.length > 0) return c;
  if (c && typeof c === 'object' && c.kind === 'bearer') return c.value;
  throw new GatehouseError('AUTH_REQUIRED', 'a query that travels to another region needs an API key or token the data\'s node can verify itself', { hint: 'send "Authorization: Bearer <API key>"' });
}

function isForwardBody(b: unknown): b is ForwardBody {
  if (typeof b !== 'object' || b === null) return false;
  const o = b as Record<string, unknown>;
  return typeof o.credential === 'string' && typeof o.sql === 'string' && typeof o.purpose === 'string' && typeof o.source === 'string'
    && (o.params === undefined || (Array.isArray(o.params) && o.params.every((p) => p === null || typeof p === 'string')));
}

export class ResidencyNode {
  readonly gatehouse: Gatehouse;
  readonly identity: NodeIdentity;
  readonly config: ResidencyConfig;
  readonly peers: PeerRegistry;
  readonly #client: FederationClient;
  #listener: NodeListener | null = null;

  private constructor(gatehouse: Gatehouse, identity: NodeIdentity, config: ResidencyConfig, options: ResidencyNodeOptions) {
    this.gatehouse = gatehouse;
    this.identity = identity;
    this.config = config;
    this.peers = new PeerRegistry(config.federation.peers);
    this.#client = new FederationClient({ identity, peers: this.peers, ...(options.now ? { now: options.now } : {}), timeoutMs: options.timeoutMs ?? 30_000 });
  }

  /** Opens the node listener of a federated pipeline; its identity must be the one gatehouse.yaml names. */
  static async start(options: ResidencyNodeOptions): Promise<ResidencyNode> {
    const config = options.gatehouse.workspace.policy.residency;
    if (!config) throw new GatehouseError('WORKSPACE_INVALID', 'this workspace has no region section, so the node is not part of a federation', { hint: 'add region: {node, region, jurisdiction} to gatehouse.yaml (docs/residency.md)' });
    const identity = loadNodeIdentity(options.stateDir);
    if (identity.nodeId !== config.nodeId || identity.region !== config.region) {
      throw new FederationError('NODE_REGION_MISMATCH', `this node's identity is "${identity.nodeId}" in ${identity.region}, but gatehouse.yaml says "${config.nodeId}" in ${config.region}`, 'a node\'s region is fixed by its identity: fix region: in gatehouse.yaml, or run "gatehouse node init" for this region');
    }
    const node = new ResidencyNode(options.gatehouse, identity, config, options);
    const listen = options.listen ?? config.federation.listen ?? { host: '127.0.0.1', port: 0 };
    node.#listener = await startNodeListener({
      identity, peers: node.peers, host: listen.host ?? '127.0.0.1', port: listen.port,
      clockSkewSeconds: config.federation.clockSkewSeconds,
      ...(options.now ? { now: options.now } : {}), ...(options.onRefused ? { onRefused: options.onRefused } : {}),
      handlers: {
        query: (call) => node.#release(call.peer, call.requestId, call.body),
        ping: async () => ({ node: identity.nodeId, region: identity.region, policyVersion: options.gatehouse.policyVersion }),
      },
    });
    NODES.set(options.gatehouse.governanceStore, node);
    return node;
  }

  /** The node listener's port (for nodes, never partners). */
  get port(): number {
    return this.#listener?.port ?? 0;
  }

  /** The data's node: the one path for the original principal, then the border rule. */
  async #release(peer: PeerPin, requestId: string, body: unknown): Promise<Forwarded> {
    if (!isForwardBody(body)) throw new GatehouseError('REQUEST_INVALID', 'a forwarded query needs credential, sql, purpose and source');
    const req: QueryRequest = {
      credential: { kind: 'bearer', value: body.credential }, sql: body.sql, purpose: body.purpose,
      source: body.source, channel: forwardedChannel(peer.region), ...(body.params ? { params: body.params } : {}),
    };
    const gh = this.gatehouse;
    const { value, auditId } = await gh.crossRegion(req, {
      action: 'residency.release', requestId, datasets: [],
      why: `forwarded by node ${peer.nodeId} (${peer.region}, pinned key)`,
      run: async () => {
        const res = await gh.query(req);
        const basis = crossingBasis(res.governance, req.sql, req.params, gh.workspace.workspace.datasets, this.config.region, peer.region);
        return {
          value: res,
          reasons: [`released to node ${peer.nodeId} in ${peer.region}: ${basis.join('; ')}`, `executed as query entry ${res.governance.auditId}`],
          datasets: res.governance.datasets, obligations: res.governance.obligationsApplied,
          rowsReturned: res.rows.length, resultDigest: resultDigest(res.columns, res.rows),
        };
      },
    });
    return { response: value, releaseAuditId: auditId, node: this.identity.nodeId, region: this.identity.region };
  }

  /** Sends the query to the first pinned node of `region`; a dead region is REGION_UNREACHABLE. */
  async #forward(region: string, datasets: readonly string[], req: QueryRequest, requestId: string): Promise<Forwarded> {
    const peer = this.peers.inRegion(region)[0];
    const names = datasets.join(', ');
    if (!peer) throw new GatehouseError('REGION_UNREACHABLE', `no node of region ${region} is pinned, so ${names} cannot be reached`, { reasons: [`region ${region}: ${names}`] });
    const body: ForwardBody = { credential: bearer(req.credential), sql: req.sql, purpose: req.purpose, source: req.source, ...(req.params ? { params: req.params } : {}) };
    try {
      const r = await this.#client.call<Forwarded>(peer.nodeId, 'query', body, requestId);
      if (r.result.region !== region || r.result.node !== peer.nodeId) throw new FederationError('NODE_REGION_MISMATCH', `node "${peer.nodeId}" answered as ${r.result.node} in ${r.result.region}`);
      return r.result;
    } catch (err) {
      if (err instanceof FederationError && err.detail === 'NODE_UNREACHABLE') {
        throw new GatehouseError('REGION_UNREACHABLE', `region ${region} cannot be reached (node ${peer.nodeId} did not answer); ${names} ${datasets.length === 1 ? 'is' : 'are'} held there, so no answer was given`, {
          reasons: [`region ${region} unreachable: ${names}`], hint: 'retry when the region is reachable; "gatehouse node status" shows each peer', cause: err,
        });
      }
      throw err;
    }
  }

  /** Plans and answers a query: here, in the data's region, or split across regions. */
  async query(req: QueryRequest, requestId: string = randomUUID()): Promise<ResidencyAnswer> {
    const gh = this.gatehouse;
    const config = this.config;
    const local = new Set(gh.workspace.workspace.datasets.keys());
    let route: Route;
    try {
      route = planRoute(config, local, parseSql(req.sql, req.params));
    } catch (err) {
      // A refusal of the route itself is audited as this node's forward step; anything
      // else (syntax, unknown dataset) is the one path's to report and audit.
      if (err instanceof GatehouseError && err.code === 'RESIDENCY_NOT_SPLITTABLE') {
        await gh.crossRegion(req, { action: 'residency.forward', requestId, datasets: [], why: 'planning a query across regions', run: () => Promise.reject(err) });
      }
      const res = await gh.query(req);
      return { ...res, residency: { requestId, route: 'local', parts: [{ region: config.region, node: config.nodeId, auditId: res.governance.auditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied }], complete: true } };
    }
    if (route.kind === 'local') {
      const res = await gh.query(req);
      return { ...res, residency: { requestId, route: 'local', parts: [{ region: config.region, node: config.nodeId, auditId: res.governance.auditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied }], complete: true } };
    }
    if (route.kind === 'remote') {
      const r = route;
      const { value, auditId } = await gh.crossRegion(req, {
        action: 'residency.forward', requestId, datasets: r.datasets,
        why: `${r.datasets.join(', ')} ${r.datasets.length === 1 ? 'is' : 'are'} held in ${r.region}: the query travels there`,
        run: async () => {
          const f = await this.#forward(r.region, r.datasets, req, requestId);
          const res = f.response;
          return {
            value: f, datasets: r.datasets, obligations: res.governance.obligationsApplied, rowsReturned: res.rows.length, resultDigest: resultDigest(res.columns, res.rows),
            reasons: [`forwarded to node ${f.node} in ${f.region}`, `released there as entry ${f.releaseAuditId} (query entry ${res.governance.auditId})`],
          };
        },
      });
      const res = value.response;
      // The caller's receipt is this node's forward entry; each part names the entry on its node.
      return { ...res, governance: { ...res.governance, auditId }, residency: { requestId, route: 'remote', parts: [{ region: value.region, node: value.node, auditId: value.releaseAuditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied }], complete: true } };
    }
    return this.#split(route, req, requestId);
  }

  async #split(route: Extract<Route, { kind: 'split' }>, req: QueryRequest, requestId: string): Promise<ResidencyAnswer> {
    const gh = this.gatehouse;
    const { value, auditId } = await gh.crossRegion(req, {
      action: 'residency.forward', requestId, datasets: [route.dataset],
      why: `${route.dataset} is held in ${route.regions.join(' and ')}: split into per-region partial aggregates`,
      run: async () => {
        const shape = splitShape(parseSql(req.sql, req.params));
        // Every region at once; any failure fails the whole answer (nothing partial is released).
        const settled = await Promise.allSettled(route.regions.map(async (region): Promise<{ part: RegionPart; partial: Partial; res: QueryResponse }> => {
          if (region === this.config.region) {
            const res = await gh.query(req);
            return { res, partial: { region, columns: res.columns, rows: res.rows }, part: { region, node: this.config.nodeId, auditId: res.governance.auditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied } };
          }
          const f = await this.#forward(region, [route.dataset], req, requestId);
          const res = f.response;
          return { res, partial: { region, columns: res.columns, rows: res.rows }, part: { region, node: f.node, auditId: f.releaseAuditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied } };
        }));
        const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ region: route.regions[i]!, err: s.reason as unknown }] : []));
        if (failed.length > 0) {
          const unreachable = failed.find((f) => f.err instanceof GatehouseError && f.err.code === 'REGION_UNREACHABLE');
          throw (unreachable ?? failed[0]!).err;
        }
        const ok = settled.map((s) => (s as PromiseFulfilledResult<{ part: RegionPart; partial: Partial; res: QueryResponse }>).value);
        const combined = combine(shape, ok.map((o) => o.partial));
        const parts = ok.map((o) => o.part);
        const complete = parts.every((p) => p.rowsSuppressed === 0);
        const first = ok[0]!.res;
        const response: ResidencyAnswer = {
          columns: combined.columns as ResultColumn[], rows: combined.rows as CellValue[][],
          governance: {
            ...first.governance, datasets: [route.dataset], policies: [...new Set(ok.flatMap((o) => o.res.governance.policies))],
            obligationsApplied: [...new Set(ok.flatMap((o) => o.res.governance.obligationsApplied))],
            rowsSuppressed: parts.reduce((n, p) => n + p.rowsSuppressed, 0), truncated: ok.some((o) => o.res.governance.truncated), auditId: '',
          },
          residency: { requestId, route: 'split', parts, complete },
        };
        return {
          value: response, datasets: [route.dataset], obligations: response.governance.obligationsApplied, rowsReturned: combined.rows.length, resultDigest: resultDigest(combined.columns, combined.rows),
          reasons: [
            ...parts.map((p) => `partial from ${p.region} (node ${p.node}, entry ${p.auditId})`),
            complete ? 'combined count/sum over every region' : `incomplete: ${parts.filter((p) => p.rowsSuppressed > 0).map((p) => p.region).join(', ')} withheld small groups`,
          ],
        };
      },
    });
    return { ...value, governance: { ...value.governance, auditId } };
  }

  /** Identity, pins and, with `probe`, whether each peer answers (a signed ping over mTLS). */
  async status(probe = true): Promise<{ node: string; region: string; jurisdiction: string; publicKey: string; port: number; peers: { node: string; region: string; url: string; reachable: boolean | null; error: string | null }[] }> {
    const peers = await Promise.all(this.peers.list().map(async (p) => {
      if (!probe) return { node: p.nodeId, region: p.region, url: p.url, reachable: null, error: null };
      try { await this.#client.call(p.nodeId, 'ping', {}, randomUUID(), 3000); return { node: p.nodeId, region: p.region, url: p.url, reachable: true, error: null }; } catch (e) {
        return { node: p.nodeId, region: p.region, url: p.url, reachable: false, error: e instanceof GatehouseError ? (e.detail ?? e.code) : 'error' };
      }
    }));
    return { node: this.identity.nodeId, region: this.identity.region, jurisdiction: this.identity.jurisdiction, publicKey: this.identity.publicKey, port: this.port, peers };
  }

  async close(): Promise<void> {
    NODES.delete(this.gatehouse.governanceStore);
    this.#client.close();
    await this.#listener?.close();
    this.#listener = null;
  }
}
