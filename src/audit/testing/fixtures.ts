/** Test helpers for the audit log tests (not used in production code). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../types.ts';

export const TEST_PASSPHRASE = 'test-passphrase-only-for-tests';

export function tempDir(prefix = 'gh-audit-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function record(i: number, over: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: new Date(Date.UTC(2026, 4, 1, 12, 0, 0) + i * 1000).toISOString(),
    principal: `user-${i % 7}@partner.example`,
    source: '10.0.0.' + (i % 250),
    channel: 'http',
    action: 'query',
    purpose: i % 2 === 0 ? 'fraud-analytics' : 'research',
    datasets: [i % 3 === 0 ? 'claims' : 'patients'],
    columns: ['claims.amount'],
    decision: i % 5 === 0 ? 'deny' : 'allow',
    reasons: ['policy p1'],
    policyVersion: 'v1',
    obligations: [],
    sqlFingerprint: 'f'.repeat(64),
    rowsReturned: i % 5 === 0 ? null : 10,
    resultDigest: null,
    errorCode: i % 5 === 0 ? 'POLICY_DENY' : null,
    ...over,
  };
}
