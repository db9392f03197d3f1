/**
 * The composition root: the one place that turns a `NodeConfig` into a running node.
 *
 * Opened in dependency order, each part's closer pushed as soon as it is open (closers.ts):
 *
 *   state + audit log ─▶ pipeline (Gatehouse: workspace, engines, identity, governance)
 *     ─▶ setup (demo users, demo governance) ─▶ the node listener (when gatehouse.yaml has a
 *     region: section): one mTLS port, pinned peers, carrying every node-to-node route the
 *     node enables, residency routing, federated learning and (with `cleanroom`) clean
 *     rooms ─▶ HTTP ─▶ wire front ─▶ scheduler ─▶ reload watch
 *
 * The residency node is handed to the faces, which route every governed query through it:
 * a query about another region's data travels there (docs/residency.md).
 *
 * `close()` runs the stack in reverse: stop watching and scheduling (a round in progress
 * finishes), close the wire front, drain HTTP (requests in flight finish within the
 * deadline, idle keep-alive connections close), close the engines and the pipeline's
 * stores, then flush and close the audit log and the shared state. A start-up step that
 * fails closes what the earlier steps opened before the error is rethrown, so nothing leaks.
 *
 * The CLI's `serve`, the tests' fixtures and the benchmarks all start nodes here.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { demoSampleTee } from '../attestation/sample.ts';
import type { TransparencyLog } from '../audit/log.ts';
import { GatehouseError } from '../errors.ts';
import { Gatehouse } from '../pipeline/gatehouse.ts';
import { ResidencyNode } from '../residency/service.ts';
import { FL_MAX_BODY_BYTES, FlNode } from '../fl/node/service.ts';
import { startWireServer, type WireServer } from '../wire/server.ts';
import { Closers } from './closers.ts';
import { checkConfig, type HttpConfig, type NodeConfig, type WireConfig } from './config.ts';
import { DEFAULT_DRAIN_MS, startHttp, type NodeHttp } from './http.ts';
import { trackInFlight } from './in-flight.ts';
import { reloader, watchWorkspace } from './reload.ts';
import { startScheduler, type Scheduler } from './scheduler.ts';
import { openState } from './state.ts';
import { prepareCleanroomNode, type CleanroomNode } from '../cleanroom/node.ts';

export type { NodeConfig } from './config.ts';
export type { NodeHttp } from './http.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const SETUP_META = { credential: null, source: '127.0.0.1', channel: 'cli', admin: 'demo-setup' } as const;

export interface GatehouseNode<H extends NodeHttp | null = NodeHttp | null, W extends WireServer | null = WireServer | null> {
  readonly gatehouse: Gatehouse;
  /** The transparency log (the pipeline writes to it, or to `config.auditSink(log)`). */
  readonly audit: TransparencyLog;
  readonly http: H;
  readonly wire: W;
  readonly scheduler: Scheduler | null;
  /** The residency node (node-to-node listener, query routing), or null when the workspace has no region: section. */
  readonly residency: ResidencyNode | null;
  /** Where shared state lives (for the operator), or null for files beside the workspace. */
  readonly stateDescription: string | null;
  /** Re-reads the workspace now (SIGHUP); an invalid workspace is reported through `notify` and ignored. */
  reload(): Promise<void>;
  /** Stops the node; HTTP requests in flight get up to `drainMs` (default 10 s) to finish. Idempotent. */
  close(options?: { drainMs?: number }): Promise<void>;
}

type HttpOf<C> = C extends { http: HttpConfig } ? NodeHttp : NodeHttp | null;
type WireOf<C> = C extends { wire: WireConfig } ? WireServer : WireServer | null;

/**
 * A listener that cannot bind fails the whole start (the caller's catch closes what was
 * opened), so a node never runs half-started: HTTP healthy while psql cannot connect.
 */
function listenFailure(err: unknown, what: string, flag: string, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') return err;
  const why = code === 'EADDRINUSE' ? 'is already in use' : code === 'EACCES' ? 'may not be used by this user' : 'is not an address of this machine';
  return new GatehouseError('UNAVAILABLE', `cannot serve ${what} on ${host}:${port}: the ${code === 'EADDRNOTAVAIL' ? 'address' : 'port'} ${why} (${code}); nothing was started`, {
    hint: `stop what uses it, or choose another with ${flag} (0 picks a free port)`, cause: err,
  });
}

export async function startNode<C extends NodeConfig>(config: C): Promise<GatehouseNode<HttpOf<C>, WireOf<C>>> {
  checkConfig(config);
  const notify = config.notify ?? (() => {});
  const workspaceDir = resolve(config.workspaceDir);
  const closers = new Closers(config.trace);
  let drainMs = DEFAULT_DRAIN_MS;
  try {
    const state = await openState({ state: config.state ?? { kind: 'files' }, workspaceDir, auditDir: config.auditDir ?? join(workspaceDir, 'audit'), demo: config.demo ?? false, witnesses: config.witnesses ?? {} });
    closers.push('state', () => state.close());

    const gatehouse = await Gatehouse.open({
      workspaceDir, ...(config.workspace ? { loaded: config.workspace } : {}), audit: config.auditSink ? config.auditSink(state.log) : state.log, auditReader: state.log,
      demo: config.demo ?? false, ...state.pipeline,
      ...(config.engineOptions ? { engineOptions: config.engineOptions } : {}),
      ...(config.now ? { now: config.now } : {}),
    });
    closers.push('pipeline', () => gatehouse.close());
    // Code to data (docs/code-to-data.md): key release hands out the datasets' own data keys
    // (the governance vault); the sample TEE only where this config says the node is a test node.
    const sampleKey = config.attestation?.samplePlatformKey ?? (config.attestation?.allowSample ? demoSampleTee('').platformKey : null);
    gatehouse.configureJobs({ allowSample: config.attestation?.allowSample === true, ...(sampleKey ? { samplePlatformKey: sampleKey } : {}) });
    // Monitoring watches every front from the first request (suspensions hold on the wire too).
    gatehouse.monitoring();
    // The faces get a counted view: once they are closed, requests still inside the
    // pipeline finish (and are audited) before the engines and the log close.
    const inFlight = trackInFlight(gatehouse);
    closers.push('requests in flight', async () => {
      if (inFlight.count > 0) notify(`waiting for ${inFlight.count} request(s) still inside the pipeline (each ends by its statement timeout)`);
      await inFlight.settle();
    });

    for (const [principal, password] of Object.entries(config.setup?.users ?? {})) {
      if (!(await gatehouse.hasUser(principal))) await gatehouse.createUser(SETUP_META, principal, password);
    }
    if (config.setup?.demoGovernance) await gatehouse.setupDemoGovernance();

    let residency: ResidencyNode | null = null;
    // One node listener (one mTLS port, pinned peers) carries every node-to-node route this node
    // enables: residency routing (query, ping), federated learning (fl-*) and, with `cleanroom`,
    // the clean rooms (cleanroom-*). So one organisation's node is in a clean room and in a
    // residency or federated-learning federation at once. `federation: null` keeps the listener
    // off (a one-shot CLI command) unless the node serves clean rooms, which need it.
    const cleanroomConfig = config.cleanroom;
    if ((config.federation !== null || cleanroomConfig) && gatehouse.workspace.policy.residency) {
      const fed = config.federation ?? {};
      // The node identity lives in <stateDir>/federation; the collaborations in <state dir>/cleanroom.
      const stateDir = fed.stateDir ?? join(workspaceDir, 'state');
      // Clean rooms (issue 17, docs/cleanrooms.md): the HTTP routes find the service (cleanroomOf).
      let cleanroom: CleanroomNode | null = null;
      if (cleanroomConfig) {
        const c = await prepareCleanroomNode({ ...cleanroomConfig, gatehouse, log: state.log, stateDir: config.state?.dir ?? join(workspaceDir, 'state'), ...(config.attestation?.allowSample ? { attestation: { allowSample: true, ...(sampleKey ? { samplePlatformKey: sampleKey } : {}) } } : {}) });
        cleanroom = c;
        closers.push('clean rooms', () => c.close());
      }
      // Given the counted view, so a forwarded query in flight finishes before the engines close.
      const listen = fed.listen ?? gatehouse.workspace.policy.residency.federation.listen ?? { port: 0 };
      // Federated learning (docs/federated.md) on the same node listener: every federated node
      // can take part in a job; its operators decide per job (group fl-operators, default deny).
      let fl: FlNode | null = null;
      const r = await ResidencyNode.start({
        gatehouse: inFlight.view, stateDir,
        ...(fed.listen ? { listen: fed.listen } : {}), ...(fed.timeoutMs !== undefined ? { timeoutMs: fed.timeoutMs } : {}),
        alsoServe: {
          handlers: (identity) => ({
            ...(fl = FlNode.create({ gatehouse: inFlight.view, identity })).handlers,
            ...(cleanroom ? cleanroom.handlers(identity) : {}),
          }),
          maxBodyBytes: FL_MAX_BODY_BYTES,
        },
      }).catch((err: unknown) => { throw listenFailure(err, 'the node-to-node listener', 'federation.listen in gatehouse.yaml', listen.host ?? '127.0.0.1', listen.port); });
      residency = r;
      const flService = fl as FlNode | null;
      if (flService) {
        flService.listenedOn(r);
        closers.push('federated learning', () => flService.close());
      }
      closers.push('residency', () => r.close());
    } else if (cleanroomConfig) {
      throw new GatehouseError('WORKSPACE_INVALID', 'clean rooms need this node in a federation, but gatehouse.yaml has no region section', {
        hint: 'add region: {node, region, jurisdiction} and federation: {listen, peers} to gatehouse.yaml, then run "gatehouse node init" (docs/cleanrooms.md)',
      });
    }

    const host = config.http?.host ?? '127.0.0.1';
    let http: NodeHttp | null = null;
    if (config.http) {
      const h = await startHttp({ gatehouse: inFlight.view, residency, auditLog: state.log, host, port: config.http.port, tls: config.tls ?? null, version: config.http.version ?? VERSION })
        .catch((err: unknown) => { throw listenFailure(err, 'HTTP', '--port', host, config.http!.port); });
      http = h;
      closers.push('http', () => h.close(drainMs));
    }

    let wire: WireServer | null = null;
    if (config.wire) {
      const wireHost = config.wire.host ?? host;
      const tls = config.tls;
      const w = await startWireServer({
        gatehouse: inFlight.view, ...(residency ? { router: residency } : {}), host: wireHost, port: config.wire.port,
        ...(config.wire.maxMessageBytes !== undefined ? { maxMessageBytes: config.wire.maxMessageBytes } : {}),
        ...(config.wire.maxConnections !== undefined ? { maxConnections: config.wire.maxConnections } : {}),
        ...(config.wire.authTimeoutMs !== undefined ? { authTimeoutMs: config.wire.authTimeoutMs } : {}),
        // With TLS configured the wire front always requires it; without, only loopback is served (checkConfig).
        ...(tls ? { tls: { key: tls.key, cert: tls.cert, ...(tls.ca ? { ca: tls.ca, requestClientCert: true } : {}) } } : { requireTls: false }),
      }).catch((err: unknown) => { throw listenFailure(err, 'PostgreSQL wire-protocol', '--pg-port', wireHost, config.wire!.port); });
      wire = w;
      closers.push('wire', () => w.close());
    }

    let scheduler: Scheduler | null = null;
    if (config.scheduler) {
      const s = startScheduler(gatehouse, {
        intervalMs: config.scheduler.intervalMs, firstRunMs: config.scheduler.firstRunMs ?? 2_000,
        reportsDir: config.scheduler.reportsDir ?? join(workspaceDir, 'state', 'reports'),
        ...(config.now ? { now: config.now } : {}), notify,
      });
      scheduler = s;
      closers.push('scheduler', () => s.stop());
    }

    let reload: () => Promise<void>;
    if (config.reloadOnChange) {
      const watch = watchWorkspace(workspaceDir, gatehouse, notify);
      reload = watch.reload;
      closers.push('reload watch', () => watch.close());
    } else {
      reload = reloader(gatehouse, notify).reload;
    }

    return {
      gatehouse, audit: state.log, http: http as HttpOf<C>, wire: wire as WireOf<C>, scheduler, residency,
      stateDescription: state.description,
      reload,
      close(options = {}) {
        drainMs = options.drainMs ?? drainMs;
        return closers.close();
      },
    };
  } catch (err) {
    await closers.close().catch(() => {});
    throw err;
  }
}
