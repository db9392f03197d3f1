/**
 * A served demo node for the console's browser tests, screenshots and benchmark: the demo
 * workspace as `gatehouse serve --demo` makes it (research contractor under differential
 * privacy and MFA, demo governance), users with known passwords, HTTP on a free loopback
 * port, and the console built if its sources changed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { startNode } from '../src/node/start.ts';
import { buildConsole, isStale } from '../scripts/console-build.ts';
import { KEYS } from './helpers/workspace.ts';

export const PASSWORDS = { rhea: 'Lantern-quartz-8841-harbour', ivan: 'Copper-meadow-2297-ferry', audrey: 'Saffron-glacier-6613-ledger', olivia: 'Walnut-orbit-4470-cinder' } as const;

export interface ConsoleNode { readonly url: string; close(): Promise<void> }

export async function startConsoleNode(options: { patients?: number } = {}): Promise<ConsoleNode> {
  if (isStale()) await buildConsole();
  const dir = mkdtempSync(join(tmpdir(), 'gh-console-'));
  const wsDir = join(dir, 'ws');
  try {
    await createTestDemoWorkspace(wsDir, { patients: options.patients ?? 600, keys: KEYS, identity: true });
    const node = await startNode({
      workspaceDir: wsDir, auditDir: join(dir, 'audit'), demo: true, engineOptions: { poolSize: 2 },
      http: { port: 0, version: 'test' }, wire: null, tls: null,
      setup: { demoGovernance: true, users: { ...PASSWORDS } },
    });
    return {
      url: node.http.url,
      async close() { try { await node.close(); } finally { rmSync(dir, { recursive: true, force: true }); } },
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
