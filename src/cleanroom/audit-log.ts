/**
 * The clean room's audit entries in the node's own transparency log (src/audit): one entry
 * per step, in the same log and format as every other request, so an auditor follows a
 * collaboration through each member's log, and members verify each other's receipts
 * (RFC 6962 inclusion proofs under signed C2SP checkpoints) with src/audit/verify.ts.
 */
import type { TransparencyLog } from '../audit/index.ts';
import type { CleanroomAudit, CleanroomAuditEntry } from './service.ts';

export function transparencyLogAudit(log: TransparencyLog, now: () => Date = () => new Date()): CleanroomAudit {
  return {
    async record(e: CleanroomAuditEntry): Promise<string> {
      const { auditId } = await log.append({
        time: now().toISOString(), principal: e.principal, source: 'cleanroom', channel: 'node', action: e.action,
        purpose: e.purpose ?? null, datasets: [...(e.datasets ?? [])], columns: [...(e.columns ?? [])], decision: e.decision,
        reasons: [...(e.reasons ?? [])], policyVersion: null, obligations: [...(e.obligations ?? [])], sqlFingerprint: e.sqlFingerprint ?? null,
        rowsReturned: e.rowsReturned ?? null, resultDigest: e.resultDigest ?? null, errorCode: e.errorCode ?? null,
      });
      return auditId;
    },
    receipt: async (auditId) => { await log.checkpoint(); return log.receipt(auditId); },
    vkeys: () => log.publicKeys().vkeys,
    reasonsOf: (auditId) => {
      const index = Number(auditId);
      if (!Number.isSafeInteger(index) || index < 0) return [];
      try { return log.leaf(index).entry.reasons; } catch { return []; }
    },
  };
}
