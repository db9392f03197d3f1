/** Test fixture: a small demo workspace with fixed keys, a real transparency log and a Gatehouse. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTransparencyLog, type TransparencyLog } from '../../src/audit/index.ts';
import type { AuditSink } from '../../src/audit/types.ts';
import { createDemoWorkspace } from '../../src/demo/workspace.ts';
import { Gatehouse, type QueryResponse } from '../../src/pipeline/gatehouse.ts';

export const KEYS = { rhea: 'test-key-rhea-0123456789abcdef', ivan: 'test-key-ivan-0123456789abcdef', ada: 'test-key-ada-0123456789abcdef0', audrey: 'test-key-audrey-0123456789abcd', olivia: 'test-key-olivia-0123456789abcd' } as const;
export type Who = keyof typeof KEYS;
export const PURPOSE: Record<Who, string> = { rhea: 'research', ivan: 'claims-processing', ada: 'operations', audrey: 'operations', olivia: 'operations' };

export interface Fixture {
  readonly dir: string;
  readonly wsDir: string;
  readonly log: TransparencyLog;
  readonly gh: Gatehouse;
  query(who: Who, sql: string, purpose?: string): Promise<QueryResponse>;
  close(): Promise<void>;
}

export async function demoFixture(options: { patients?: number; audit?: AuditSink; edit?: (wsDir: string) => void; governance?: boolean } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-test-'));
  const wsDir = join(dir, 'ws');
  await createDemoWorkspace(wsDir, { patients: options.patients ?? 2000, keys: KEYS });
  options.edit?.(wsDir);
  const log = openTransparencyLog(join(dir, 'audit'), { demo: true });
  const gh = await Gatehouse.open({ workspaceDir: wsDir, audit: options.audit ?? log, auditReader: log, engineOptions: { poolSize: 2 }, demo: true });
  if (options.governance) await gh.setupDemoGovernance();
  return {
    dir, wsDir, log, gh,
    query: (who, sql, purpose) => gh.query({ credential: KEYS[who], sql, purpose: purpose ?? PURPOSE[who], source: '127.0.0.1', channel: 'test' }),
    async close() {
      await gh.close();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
