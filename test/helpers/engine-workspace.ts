/**
 * A workspace with no datasets, for tests that open a DuckDB engine and run SQL of their own
 * on it (the engine's reading and deadline behaviour, not governance).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Workspace } from '../../src/model/types.ts';

export function emptyEngineWorkspace(name: string): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `gh-${name}-`));
  return {
    dir, name, defaults: { rowCap: 1000, statementTimeoutMs: 20_000, memoryLimit: '256MB' },
    datasets: new Map(), obligations: new Map(), principals: new Map(), policyFiles: new Map(), cedarSchema: '',
    hashKey: Buffer.alloc(32, 7), policyVersion: 'sha256:test',
  } as unknown as Workspace;
}
