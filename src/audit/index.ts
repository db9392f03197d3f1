/**
 * Public entry points of the audit log (transparency log per RFC 6962 / RFC 9162 with
 * C2SP tlog-checkpoint, signed-note and tlog-cosignature formats). See docs/audit.md.
 */
import { TransparencyLog, type TransparencyLogOptions } from './log.ts';

export type { AuditRecord, AuditSink, AuditAppendResult, AuditDecision } from './types.ts';
export * from './errors.ts';
export {
  TransparencyLog, EXPORT_FORMAT, RECEIPT_FORMAT,
  type TransparencyLogOptions, type Receipt, type SearchFilter, type SearchHit, type ExportOptions,
  type InclusionProofResult, type ConsistencyProofResult, type PublicKeyInfo, type Leaf, type StoredAuditEntry,
  type AuditRecordWithSubjects, type LogHealth,
} from './log.ts';
export { SqliteCheckpointAnchor, type CheckpointAnchor, type AnchoredCheckpoint } from './anchor.ts';
export { verifyReceipt, verifyExport, verifyExportFile, type VerifyReport, type Problem } from './verify.ts';
export {
  Witness, startWitnessServer, HttpWitnessClient, LocalWitnessClient, publishCheckpoint,
  verifyCosignedCheckpoint, detectSplitView, type WitnessClient, type WitnessPolicy,
} from './witness.ts';
export { auditHttpPlugin, type AuditHttpOptions, type AuditReadScope, type AuditReadGrant } from './http.ts';
export { DEMO_PASSPHRASE, PASSPHRASE_ENV } from './keys.ts';
export { parseVkey, openCheckpoint } from './note.ts';

/** Opens (creating if needed) the file-backed transparency log in `dir`. */
export function openTransparencyLog(dir: string, options: TransparencyLogOptions = {}): TransparencyLog {
  return TransparencyLog.open(dir, options);
}
