/**
 * The HTTP listener of a node, with a close that drains.
 *
 * Closing stops accepting connections, lets requests in flight finish, and closes each
 * keep-alive connection as soon as it is idle (Fastify's close ends the connections idle at
 * that instant; one that finishes its request later is closed when its response ends, not
 * after the 72 s keep-alive timeout). Requests that arrive on an open connection while
 * closing are answered 503 by Fastify (`return503OnClosing`). At the deadline every
 * remaining connection is cut, so a stuck client cannot hold the process.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { TransparencyLog } from '../audit/log.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import type { ResidencyNode } from '../residency/service.ts';
import { buildApp } from '../server/app.ts';
import type { TlsConfig } from './config.ts';

export const DEFAULT_DRAIN_MS = 10_000;

export interface NodeHttp {
  /** The Fastify instance (tests may `inject()` into it). */
  readonly app: FastifyInstance;
  /** http(s)://host:port */
  readonly url: string;
  readonly port: number;
  /** Drains requests in flight for at most `deadlineMs` (default 10 s), then cuts what is left. */
  close(deadlineMs?: number): Promise<void>;
}

export async function startHttp(options: { gatehouse: Gatehouse; residency?: ResidencyNode | null; auditLog: TransparencyLog; host: string; port: number; tls: TlsConfig | null; version: string }): Promise<NodeHttp> {
  const app = await buildApp({ gatehouse: options.gatehouse, ...(options.residency ? { residency: options.residency } : {}), auditLog: options.auditLog, version: options.version, ...(options.tls ? { https: options.tls } : {}) });
  let draining = false;
  app.server.on('request', (_req, res) => {
    res.once('close', () => { if (draining) setImmediate(() => app.server.closeIdleConnections()); });
  });
  let address: string;
  try {
    address = await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return {
    app,
    url: address.replace('[::1]', 'localhost'),
    port: (app.server.address() as AddressInfo).port,
    close(deadlineMs = DEFAULT_DRAIN_MS) {
      closing ??= (async () => {
        draining = true;
        const cut = setTimeout(() => app.server.closeAllConnections(), deadlineMs);
        try {
          await app.close();
        } finally {
          clearTimeout(cut);
        }
      })();
      return closing;
    },
  };
}
