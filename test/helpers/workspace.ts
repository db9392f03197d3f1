/**
 * Test fixture: a small demo workspace with fixed keys (its data copied from the cache of
 * ./demo-data.ts), started as a node by the one composition root (src/node/start.ts): a real
 * transparency log and a Gatehouse, and on request an HTTP listener and/or the wire front on
 * free loopback ports.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TransparencyLog } from '../../src/audit/index.ts';
import type { AuditSink } from '../../src/audit/types.ts';
import type { TlsConfig, WireConfig } from '../../src/node/config.ts';
import { startNode, type GatehouseNode, type NodeHttp } from '../../src/node/start.ts';
import type { Gatehouse, QueryResponse } from '../../src/pipeline/gatehouse.ts';
import type { WireServer } from '../../src/wire/server.ts';
import { precreateAuditKeys } from './audit-keys.ts';
import { createTestDemoWorkspace } from './demo-data.ts';

export const KEYS = { rhea: 'test-key-rhea-0123456789abcdef', ivan: 'test-key-ivan-0123456789abcdef', ada: 'test-key-ada-0123456789abcdef0', audrey: 'test-key-audrey-0123456789abcd', olivia: 'test-key-olivia-0123456789abcd' } as const;
export type Who = keyof typeof KEYS;
export const PURPOSE: Record<Who, string> = { rhea: 'research', ivan: 'claims-processing', ada: 'operations', audrey: 'operations', olivia: 'operations' };

export interface FixtureOptions {
  readonly patients?: number;
  /** Replaces the transparency log as the pipeline's sink (the log still serves reads). */
  readonly audit?: AuditSink;
  readonly edit?: (wsDir: string) => void;
  readonly governance?: boolean;
  /** Also listen for HTTP on a free loopback port. */
  readonly http?: boolean;
  /** Also serve the PostgreSQL wire protocol on a free loopback port (with these limits). */
  readonly wire?: boolean | Omit<WireConfig, 'port' | 'host'>;
  /** HTTPS and TLS on the wire front. */
  readonly tls?: TlsConfig;
  /** The node's clock (tokens, limits, lockouts, audit times); the machine's by default. */
  readonly now?: () => Date;
}

export interface Fixture<H extends NodeHttp | null = NodeHttp | null, W extends WireServer | null = WireServer | null> {
  readonly dir: string;
  readonly wsDir: string;
  readonly log: TransparencyLog;
  readonly gh: Gatehouse;
  readonly node: GatehouseNode<H, W>;
  readonly http: H;
  readonly wire: W;
  query(who: Who, sql: string, purpose?: string): Promise<QueryResponse>;
  close(): Promise<void>;
}

/** A fixture listening for HTTP (and perhaps the wire protocol). */
export type ServerFixture = Fixture<NodeHttp>;

type HttpOf<O> = O extends { http: true } ? NodeHttp : null;
type WireOf<O> = O extends { wire: true | Omit<WireConfig, 'port' | 'host'> } ? WireServer : null;

export async function demoFixture<O extends FixtureOptions>(options: O = {} as O): Promise<Fixture<HttpOf<O>, WireOf<O>>> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-test-'));
  const wsDir = join(dir, 'ws');
  try {
    await createTestDemoWorkspace(wsDir, { patients: options.patients ?? 2000, keys: KEYS });
    options.edit?.(wsDir);
    // Key files at a test scrypt cost (./audit-keys.ts): the node opens them as they are.
    precreateAuditKeys(join(dir, 'audit'));
    const node = await startNode({
      workspaceDir: wsDir, auditDir: join(dir, 'audit'), demo: true, engineOptions: { poolSize: 2 },
      ...(options.audit ? { auditSink: () => options.audit! } : {}),
      http: options.http ? { port: 0, version: 'test' } : null,
      wire: options.wire ? { ...(options.wire === true ? {} : options.wire), port: 0 } : null,
      tls: options.tls ?? null,
      setup: { demoGovernance: options.governance === true },
      ...(options.now ? { now: options.now } : {}),
    });
    const gh = node.gatehouse;
    return {
      dir, wsDir, log: node.audit, gh, node: node as GatehouseNode<HttpOf<O>, WireOf<O>>,
      http: node.http as HttpOf<O>, wire: node.wire as WireOf<O>,
      query: (who, sql, purpose) => gh.query({ credential: KEYS[who], sql, purpose: purpose ?? PURPOSE[who], source: '127.0.0.1', channel: 'test' }),
      async close() {
        try { await node.close(); } finally { rmSync(dir, { recursive: true, force: true }); }
      },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Resolves to the thrown error's code (fails the test if nothing was thrown). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? 'NO_CODE';
  }
  throw new Error('expected the request to fail, but it succeeded');
}
