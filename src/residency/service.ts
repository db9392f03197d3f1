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
 * Audit: one entry per node, all with one request id. The entry node writes
 * `residency.forward` (what it sent where, and why), or for a split that includes its own
 * region, its own `query` entry naming the partials it added. The data node writes one `query`
 * entry: what it executed, who forwarded it, and what it sent out under which rule (the
 * audited envelope's request note, src/kernel/audited.ts).
 *
 * A region that cannot be reached fails the whole request with REGION_UNREACHABLE naming
 * the region and its datasets: no partial answer is ever passed off as complete.
 */
import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../errors.ts';
import type { CellValue, ResultColumn } from '../engine/engine.ts';
import { noteRequest } from '../kernel/audited.ts';
import { resultDigest } from '../kernel/digest.ts';
import type { Gatehouse, QueryRequest, QueryResponse } from '../pipeline/gatehouse.ts';
import { parseSql } from '../query/parse.ts';
import type { Select } from '../query/ir.ts';
import { FederationClient, loadNodeIdentity, PeerRegistry, startNodeListener, type NodeHandler, type NodeIdentity, type NodeListener, type PeerPin } from '../federation/index.ts';
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

interface Gathered {
  readonly res: QueryResponse;
  readonly part: RegionPart;
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
  /**
   * More operations served on this node's one listener (federated learning,
   * src/fl/node/service.ts), built once the node identity is loaded and checked; `query` and
   * `ping` stay the residency node's. `maxBodyBytes` raises the listener's message limit
   * (a 1M-parameter masked update is several MB).
   */
  readonly alsoServe?: { readonly handlers: (identity: NodeIdentity) => Readonly<Record<string, NodeHandler>>; readonly maxBodyBytes?: number };
}

function bearer(c: QueryRequest['credential']): string {
  if (typeof c === 'string' && c.length > 0) return c;
  if (c && typeof c === 'object' && c.kind === 'bearer') return c.value;
  // A wire connection password or a client certificate was verified by this node's front;
  // the data's node cannot verify it, and never takes this node's word for who asked.
  throw new GatehouseError('AUTH_REQUIRED', 'a query that travels to another region needs an API key or token the data\'s node can verify itself; a wire connection password or client certificate is verified only by the node it was issued on', { hint: 'ask over HTTPS with "Authorization: Bearer <API key>", or query this region\'s datasets on this connection' });
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
    const extra = options.alsoServe?.handlers(identity) ?? {};
    if ('query' in extra || 'ping' in extra) throw new GatehouseError('INTERNAL', 'another service asked to serve the residency node\'s own operations (query, ping)');
    node.#listener = await startNodeListener({
      identity, peers: node.peers, host: listen.host ?? '127.0.0.1', port: listen.port,
      clockSkewSeconds: config.federation.clockSkewSeconds,
      ...(options.now ? { now: options.now } : {}), ...(options.onRefused ? { onRefused: options.onRefused } : {}),
      ...(options.alsoServe?.maxBodyBytes !== undefined ? { maxBodyBytes: options.alsoServe.maxBodyBytes } : {}),
      handlers: {
        ...extra,
        query: (call) => node.#release(call.peer, call.requestId, call.body),
        ping: async () => ({ node: identity.nodeId, region: identity.region, policyVersion: options.gatehouse.policyVersion }),
      },
    });
    return node;
  }

  /** The node listener's port (for nodes, never partners). */
  get port(): number {
    return this.#listener?.port ?? 0;
  }

  /**
   * The data's node: the one path for the original principal, then the border rule. One
   * entry: the ordinary `query` entry (channel federation:<origin>), which also names the
   * request id, the forwarding node and what crossed under which rule, or the refusal.
   */
  async #release(peer: PeerPin, requestId: string, body: unknown): Promise<Forwarded> {
    if (!isForwardBody(body)) throw new GatehouseError('REQUEST_INVALID', 'a forwarded query needs credential, sql, purpose and source');
    const req: QueryRequest = {
      credential: { kind: 'bearer', value: body.credential }, sql: body.sql, purpose: body.purpose,
      source: body.source, channel: forwardedChannel(peer.region), ...(body.params ? { params: body.params } : {}),
    };
    const gh = this.gatehouse;
    noteRequest(req, {
      reasons: [`request ${requestId}`, `forwarded by node ${peer.nodeId} (${peer.region}, pinned key)`],
      release: async (value) => {
        const basis = crossingBasis((value as QueryResponse).governance, req.sql, req.params, gh.workspace.workspace.datasets, this.config.region, peer.region);
        return [`released to node ${peer.nodeId} in ${peer.region}: ${basis.join('; ')}`];
      },
    });
    const response = await gh.query(req);
    return { response, releaseAuditId: response.governance.auditId, node: this.identity.nodeId, region: this.identity.region };
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

  /** The local answer with its travel report. */
  #local(res: QueryResponse, requestId: string): ResidencyAnswer {
    return { ...res, residency: { requestId, route: 'local', parts: [{ region: this.config.region, node: this.config.nodeId, auditId: res.governance.auditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied }], complete: true } };
  }

  /** A refusal of this node's forward step (its one entry), before anything travels. */
  async #refuse(req: QueryRequest, requestId: string, why: string, err: GatehouseError): Promise<never> {
    await this.gatehouse.crossRegion(req, { action: 'residency.forward', requestId, datasets: [], why, run: () => Promise.reject(err) });
    throw err;
  }

  /**
   * Plans and answers a query: here, in the data's region, or split across regions. Every
   * face routes governed queries here on a federated node (/v1/query, the wire protocol,
   * /v1/residency/query), and each request leaves one entry on each node it touches.
   */
  async query(req: QueryRequest, requestId: string = randomUUID()): Promise<ResidencyAnswer> {
    const gh = this.gatehouse;
    const config = this.config;
    // A query that names no remote dataset is local; no second parse. Spelling a remote name
    // another way (U&"..." escapes) cannot send anything away: the local path refuses names it
    // does not hold.
    const text = req.sql.toLowerCase();
    if (![...config.remote.keys()].some((n) => text.includes(n))) return this.#local(await gh.query(req), requestId);
    const local = new Set(gh.workspace.workspace.datasets.keys());
    let route: Route;
    let parsed: Select;
    try {
      parsed = parseSql(req.sql, req.params);
      route = planRoute(config, local, parsed);
    } catch (err) {
      // A refusal of the route itself is audited as this node's forward step; anything
      // else (syntax, unknown dataset) is the one path's to report and audit.
      if (err instanceof GatehouseError && err.code === 'RESIDENCY_NOT_SPLITTABLE') await this.#refuse(req, requestId, 'planning a query across regions', err);
      return this.#local(await gh.query(req), requestId);
    }
    if (route.kind === 'local') return this.#local(await gh.query(req), requestId);
    if (req.save === true) {
      await this.#refuse(req, requestId, `saving the result of a query about ${route.kind === 'split' ? route.dataset : route.datasets.join(', ')}`, new GatehouseError('REQUEST_INVALID', 'a query answered in another region cannot be saved here: saved results stay on the node that holds the data', { hint: 'send it without "save"' }));
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
            reasons: [`forwarded to node ${f.node} in ${f.region}`, `released there as entry ${f.releaseAuditId}`],
          };
        },
      });
      const res = value.response;
      // The caller's receipt is this node's forward entry; each part names the entry on its node.
      return { ...res, governance: { ...res.governance, auditId }, residency: { requestId, route: 'remote', parts: [{ region: value.region, node: value.node, auditId: value.releaseAuditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied }], complete: true } };
    }
    return this.#split(route, parsed, req, requestId);
  }

  /**
   * Each region's governed partial at once, added here. When this region holds a partition,
   * its own `query` entry is the request's one entry on this node: it names the partials it
   * added and records the combined answer. Otherwise the forward step is the entry. Any
   * failure fails the whole answer: nothing partial is released.
   */
  async #split(route: Extract<Route, { kind: 'split' }>, parsed: Select, req: QueryRequest, requestId: string): Promise<ResidencyAnswer> {
    const gh = this.gatehouse;
    const why = `${route.dataset} is held in ${route.regions.join(' and ')}: split into per-region partial aggregates`;
    let shape: ReturnType<typeof splitShape>;
    try {
      shape = splitShape(parsed);
    } catch (err) {
      if (err instanceof GatehouseError) await this.#refuse(req, requestId, why, err);
      throw err;
    }
    const here = this.config.region;
    const away = route.regions.filter((r) => r !== here);
    // Started together; settled (never left unhandled) whatever happens here.
    const remote = Promise.allSettled(away.map(async (region): Promise<Gathered> => {
      const f = await this.#forward(region, [route.dataset], req, requestId);
      const res = f.response;
      return { res, part: { region, node: f.node, auditId: f.releaseAuditId, rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied } };
    }));
    const gather = async (mine: Gathered | null): Promise<{ answer: ResidencyAnswer; reasons: string[] }> => {
      const settled = await remote;
      const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
      if (failed.length > 0) throw failed.find((e) => e instanceof GatehouseError && e.code === 'REGION_UNREACHABLE') ?? failed[0];
      const ok = [...(mine ? [mine] : []), ...settled.map((s) => (s as PromiseFulfilledResult<Gathered>).value)];
      const combined = combine(shape, ok.map((o): Partial => ({ region: o.part.region, columns: o.res.columns, rows: o.res.rows })));
      const parts = ok.map((o) => o.part);
      const complete = parts.every((p) => p.rowsSuppressed === 0);
      const first = ok[0]!.res;
      const answer: ResidencyAnswer = {
        columns: combined.columns as ResultColumn[], rows: combined.rows as CellValue[][],
        governance: {
          ...first.governance, datasets: [route.dataset], policies: [...new Set(ok.flatMap((o) => o.res.governance.policies))],
          obligationsApplied: [...new Set(ok.flatMap((o) => o.res.governance.obligationsApplied))],
          rowsSuppressed: parts.reduce((n, p) => n + p.rowsSuppressed, 0), truncated: ok.some((o) => o.res.governance.truncated), auditId: '',
        },
        residency: { requestId, route: 'split', parts, complete },
      };
      const reasons = [
        ...parts.filter((p) => p.region !== here).map((p) => `partial from ${p.region} (node ${p.node}, entry ${p.auditId})`),
        complete ? 'combined count/sum over every region' : `incomplete: ${parts.filter((p) => p.rowsSuppressed > 0).map((p) => p.region).join(', ')} withheld small groups`,
      ];
      return { answer, reasons };
    };

    if (away.length === route.regions.length) {
      const { value, auditId } = await gh.crossRegion(req, {
        action: 'residency.forward', requestId, datasets: [route.dataset], why,
        run: async () => {
          const { answer, reasons } = await gather(null);
          return { value: answer, datasets: [route.dataset], obligations: answer.governance.obligationsApplied, rowsReturned: answer.rows.length, resultDigest: resultDigest(answer.columns, answer.rows), reasons };
        },
      });
      return { ...value, governance: { ...value.governance, auditId } };
    }

    // This region's partial runs on the one path; its entry records the combined answer.
    const mineReq: QueryRequest = { ...req };
    let combined: ResidencyAnswer | null = null;
    noteRequest(mineReq, {
      reasons: [`request ${requestId}`, why],
      release: async (value, entry) => {
        const res = value as QueryResponse;
        const { answer, reasons } = await gather({ res, part: { region: here, node: this.config.nodeId, auditId: '', rowsSuppressed: res.governance.rowsSuppressed, obligationsApplied: res.governance.obligationsApplied } });
        entry.obligations = [...answer.governance.obligationsApplied];
        entry.rowsReturned = answer.rows.length;
        entry.resultDigest = resultDigest(answer.columns, answer.rows);
        combined = answer;
        return [`partial from ${here} computed here`, ...reasons];
      },
    });
    const mine = await gh.query(mineReq);
    const answer = combined as ResidencyAnswer | null;
    if (!answer) throw new GatehouseError('INTERNAL', 'the split answer was not combined');
    const auditId = mine.governance.auditId;
    return {
      ...answer, governance: { ...answer.governance, auditId },
      residency: { ...answer.residency, parts: answer.residency.parts.map((p) => (p.region === here ? { ...p, auditId } : p)) },
    };
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
    this.#client.close();
    await this.#listener?.close();
    this.#listener = null;
  }
}
