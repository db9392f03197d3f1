/**
 * What a Gatehouse node is started with: one typed object, so the CLI, the tests and the
 * benchmarks describe a node the same way and `startNode` (start.ts) is the only place
 * that turns the description into running parts.
 */
import type { AuditSink } from '../audit/types.ts';
import type { TransparencyLog } from '../audit/log.ts';
import { GatehouseError } from '../errors.ts';
import type { LoadedWorkspace } from '../workspace/validate.ts';

/** PEM material for HTTPS and the wire front. With `ca`, clients must present a certificate it signed (mTLS). */
export interface TlsConfig {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly ca?: string | Buffer;
}

/** Where the node keeps its own state: files beside the workspace (default) or shared PostgreSQL. */
export type StateConfig =
  | { readonly kind: 'files'; /** Default <workspace>/state. */ readonly dir?: string }
  | {
    readonly kind: 'postgres';
    readonly url: string;
    /** Kept out of the URL and every message. */
    readonly password?: string;
    /** Connections this node may open (default 10). */
    readonly maxConnections?: number;
    /** What stays on the node's own disk (the data-key keyring file); default <workspace>/state. */
    readonly dir?: string;
  };

/** Witnesses that must cosign each checkpoint before it is published (docs/audit.md). */
export interface WitnessConfig {
  /** Remote witnesses: URL and the pinned cosignature vkey (`gatehouse witness` prints it). */
  readonly remote?: readonly { readonly url: string; readonly key: string }[];
  /** Cosignatures needed; default every witness. */
  readonly quorum?: number;
  /** Run one witness in this process (the demo's). */
  readonly local?: boolean;
}

export interface HttpConfig {
  /** Default 127.0.0.1. Plain HTTP is refused off loopback unless `insecureHttp`. */
  readonly host?: string;
  /** 0 picks a free port (read it back from `node.http.port`). */
  readonly port: number;
  /** Plain HTTP off loopback, only behind a TLS-terminating proxy. */
  readonly insecureHttp?: boolean;
  /** Reported by /v1/health; default the package version. */
  readonly version?: string;
}

export interface WireConfig {
  /** Default: the HTTP host. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Largest frontend message (bytes); default 1 MiB. */
  readonly maxMessageBytes?: number;
  readonly maxConnections?: number;
  /** From connect to authenticated; default 30 s. */
  readonly authTimeoutMs?: number;
}

export interface SchedulerConfig {
  /** Between governance rounds. */
  readonly intervalMs: number;
  /** Before the first round (default 2000 ms, so start-up output comes first). */
  readonly firstRunMs?: number;
  /** Where the daily compliance report is written; default <workspace>/state/reports. */
  readonly reportsDir?: string;
}

/** The residency node of a workspace with a `region:` section (docs/residency.md). */
export interface FederationNodeConfig {
  /** Overrides federation.listen of gatehouse.yaml (tests and the demo use port 0). */
  readonly listen?: { readonly host?: string; readonly port: number };
  /** Holds the node identity (<stateDir>/federation); default <workspace>/state. */
  readonly stateDir?: string;
  /** Bounds each forwarded call; default 30 s. */
  readonly timeoutMs?: number;
}

export interface NodeConfig {
  readonly workspaceDir: string;
  /** The workspace already loaded from `workspaceDir` (the CLI validated it): not loaded again. */
  readonly workspace?: LoadedWorkspace;
  /** Default: files beside the workspace. */
  readonly state?: StateConfig;
  /** Witnesses of the audit log: checkpoints are published only with their cosignatures. */
  readonly witnesses?: WitnessConfig;
  /** The transparency log's directory (with PostgreSQL state: its keys). Default <workspace>/audit. */
  readonly auditDir?: string;
  /** null or absent: no HTTP listener (an in-process node, as the tests' fixtures use). */
  readonly http?: HttpConfig | null;
  /** null or absent: no PostgreSQL wire-protocol listener. */
  readonly wire?: WireConfig | null;
  /** Serve HTTPS and TLS on the wire front. */
  readonly tls?: TlsConfig | null;
  /** A demo workspace: the published demo passphrase may seal keys. */
  readonly demo?: boolean;
  /** Enclave attestation: `allowSample` admits the software sample TEE (`serve --demo`, tests); absent: production, refused. */
  readonly attestation?: { readonly allowSample: boolean; readonly samplePlatformKey?: import('node:crypto').KeyObject };
  /** Once the pipeline is open: built-in users to create if missing, and the demo's governance records. */
  readonly setup?: { readonly users?: Readonly<Record<string, string>>; readonly demoGovernance?: boolean };
  readonly now?: () => Date;
  /** null or absent: no scheduled governance rounds. */
  readonly scheduler?: SchedulerConfig | null;
  /**
   * A workspace with a `region:` section starts its residency node (the node-to-node
   * listener) and routes queries through it; null keeps it off (a one-shot CLI command).
   */
  readonly federation?: FederationNodeConfig | null;
  /**
   * Serve clean-room collaborations on the node-to-node listener (docs/cleanrooms.md); absent:
   * no clean rooms. They share the node's one listener (federation.listen, or `federation.listen`
   * here) with residency routing and federated learning, and turn it on even with `federation: null`.
   */
  readonly cleanroom?: import('../cleanroom/node.ts').CleanroomNodeConfig;
  /** Re-read the workspace when its files change. */
  readonly reloadOnChange?: boolean;
  readonly engineOptions?: { readonly poolSize?: number; readonly threads?: number };
  /** Wraps the audit log as the pipeline's sink (tests record what the pipeline writes). */
  readonly auditSink?: (log: TransparencyLog) => AuditSink;
  /** Lines for the operator (reloads, scheduler rounds), with the error when background work failed. */
  readonly notify?: (line: string, err?: unknown) => void;
  /** Each part as it is opened and closed ("opened http", "closed http"), in order. */
  readonly trace?: (event: string) => void;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new GatehouseError('REQUEST_INVALID', `${what} must be 0-65535`);
}

/** Checks a configuration before anything is opened (so a bad one changes nothing). */
export function checkConfig(config: NodeConfig): void {
  if (typeof config.workspaceDir !== 'string' || config.workspaceDir === '') throw new GatehouseError('REQUEST_INVALID', 'a node needs a workspace directory', { hint: 'give --workspace DIR or --demo' });
  if (config.http) {
    checkPort(config.http.port, '--port');
    const host = config.http.host ?? '127.0.0.1';
    if (!config.tls && !isLoopback(host) && !config.http.insecureHttp) {
      throw new GatehouseError('REQUEST_INVALID', `refusing to serve plain HTTP on ${host}: plain HTTP is allowed only on loopback`, { hint: 'serve HTTPS with --tls-cert and --tls-key (add --tls-client-ca for mTLS), or force plain HTTP with --insecure-http behind a TLS-terminating proxy' });
    }
  }
  if (config.wire) {
    checkPort(config.wire.port, '--pg-port');
    const host = config.wire.host ?? config.http?.host ?? '127.0.0.1';
    if (!config.tls && !isLoopback(host)) {
      throw new GatehouseError('REQUEST_INVALID', `refusing to serve the PostgreSQL wire protocol without TLS on ${host}: only loopback may go without TLS`, { hint: 'give --tls-cert and --tls-key (clients connect with sslmode=require or stricter)' });
    }
  }
  if (config.scheduler && !(Number.isFinite(config.scheduler.intervalMs) && config.scheduler.intervalMs > 0)) {
    throw new GatehouseError('REQUEST_INVALID', 'the scheduler interval must be a positive number of milliseconds', { hint: 'set GATEHOUSE_SCHEDULER_SECONDS to a positive number, or 0 to turn the scheduler off' });
  }
}
