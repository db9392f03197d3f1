/**
 * Typed errors for the audit log. Every failure has its own class and a stable detailed
 * `detail` code (`AUDIT_PROOF_RANGE`, ...) that the audit endpoints return as their body's
 * `code`, the CLI prints and the docs list (docs/audit.md, "Error codes"); `code` is the
 * union code of src/errors.ts that AUDIT_CODES (or the status given) picks, so the HTTP
 * status, audit outcome and SQLSTATE come from the one table. Messages never carry secrets:
 * no passphrases, key material or principal identifiers (only pseudonyms and indices).
 *
 * src/errors.ts is the only module outside src/audit this part imports; it imports nothing.
 */
import { codeFor, GatehouseError, type ErrorCode } from '../errors.ts';

/**
 * Audit codes whose union code the status they are raised with does not give: a proof that
 * does not verify (422) or a note no trusted key signed (403) is a bad input the caller sent
 * or relies on; a log that cannot record is AUDIT_UNAVAILABLE (fail closed). Every other
 * code follows CODE_BY_STATUS (404 → NOT_FOUND, 409 → CONFLICT, 410 → GONE, 503 → UNAVAILABLE).
 * The witness answers the statuses of its own protocol (C2SP tlog-witness) from `detail`.
 */
export const AUDIT_CODES: Readonly<Record<string, ErrorCode>> = {
  AUDIT_PROOF_INVALID: 'REQUEST_INVALID',
  AUDIT_PROOF_LENGTH: 'REQUEST_INVALID',
  AUDIT_NOTE_SIGNATURE_INVALID: 'REQUEST_INVALID',
  AUDIT_NOTE_UNVERIFIED: 'REQUEST_INVALID',
  AUDIT_UNAVAILABLE: 'AUDIT_UNAVAILABLE',
};

/**
 * `code` is the union code, `detail` the audit code. `status` (the constructor argument)
 * only chooses the union code for codes AUDIT_CODES does not list; the status a caller
 * sees is the union code's.
 */
export class AuditError extends GatehouseError {
  declare readonly detail: string;
  constructor(code: string, message: string, status = 500, options?: { cause?: unknown }) {
    super(codeFor(code, AUDIT_CODES, status), message, { detail: code, reasons: [code], cause: options?.cause });
  }
}

/** A proof failed to verify (wrong root, wrong path, bad hash length). */
export class ProofVerificationFailed extends AuditError {
  constructor(message: string) { super('AUDIT_PROOF_INVALID', message, 422); }
}

/** A proof has more or fewer hashes than the tree sizes require. */
export class ProofLengthInvalid extends AuditError {
  constructor(expected: number, got: number) {
    super('AUDIT_PROOF_LENGTH', `proof has ${got} hashes, the tree sizes require ${expected}`, 422);
  }
}

/** index >= size, first > second, sizes outside the log, non-integers. */
export class ProofRangeInvalid extends AuditError {
  constructor(message: string) { super('AUDIT_PROOF_RANGE', message, 400); }
}

/** A signed note or checkpoint is malformed. */
export class NoteMalformed extends AuditError {
  constructor(message: string) { super('AUDIT_NOTE_MALFORMED', message, 400); }
}

/** A signature from a known key did not verify: the whole note is rejected. */
export class NoteSignatureInvalid extends AuditError {
  constructor(keyName: string) { super('AUDIT_NOTE_SIGNATURE_INVALID', `signature from known key "${keyName}" does not verify`, 403); }
}

/** No signature on the note comes from a key the verifier trusts. */
export class NoteUnverified extends AuditError {
  constructor(message = 'no signature from a trusted key') { super('AUDIT_NOTE_UNVERIFIED', message, 403); }
}

/** The on-disk store is damaged beyond a torn trailing write. */
export class StoreCorrupt extends AuditError {
  constructor(message: string) { super('AUDIT_STORE_CORRUPT', message, 500); }
}

/** The log cannot record entries (I/O failure, closed, broken after a failed write). */
export class LogUnavailable extends AuditError {
  constructor(message: string, options?: { cause?: unknown }) { super('AUDIT_UNAVAILABLE', message, 503, options); }
}

/** The log refused to sign a checkpoint inconsistent with one it signed before. */
export class InconsistentCheckpoint extends AuditError {
  constructor(message: string) { super('AUDIT_CHECKPOINT_INCONSISTENT', message, 500); }
}

/** An auditId or index that is not (yet) in the log. */
export class EntryNotFound extends AuditError {
  constructor(auditId: string) { super('AUDIT_ENTRY_NOT_FOUND', `no audit entry ${JSON.stringify(auditId)}`, 404); }
}

/** Key file missing, wrong passphrase, or a key that cannot be decrypted. */
export class KeyUnavailable extends AuditError {
  constructor(message: string) { super('AUDIT_KEY_UNAVAILABLE', message, 500); }
}

/** The pseudonym key for an epoch was destroyed (crypto-shredded). */
export class PseudonymKeyDestroyed extends AuditError {
  constructor(epoch: string) { super('AUDIT_PSEUDONYM_KEY_DESTROYED', `pseudonym key for epoch ${epoch} was destroyed`, 410); }
}

/** A record handed to append() does not match the AuditRecord contract. */
export class RecordInvalid extends AuditError {
  constructor(message: string) { super('AUDIT_RECORD_INVALID', message, 400); }
}

/** Malformed export, receipt or filter input. */
export class InputInvalid extends AuditError {
  constructor(message: string) { super('AUDIT_INPUT_INVALID', message, 400); }
}

/** Witness: the checkpoint's "old" size does not match what the witness holds (tlog-witness 409). */
export class WitnessConflict extends AuditError {
  readonly latestSize: number;
  constructor(latestSize: number) {
    super('AUDIT_WITNESS_CONFLICT', `witness holds a checkpoint of size ${latestSize}`, 409);
    this.latestSize = latestSize;
  }
}

/** Witness: the log origin or key is not one the witness is configured for (tlog-witness 404/403). */
export class WitnessUnknownLog extends AuditError {
  constructor(origin: string) { super('AUDIT_WITNESS_UNKNOWN_LOG', `witness is not configured for log ${JSON.stringify(origin)}`, 404); }
}

/** Owner side: fewer than k of the n configured witnesses cosigned. */
export class WitnessQuorumNotReached extends AuditError {
  readonly failures: readonly string[];
  constructor(got: number, needed: number, failures: readonly string[]) {
    super('AUDIT_WITNESS_QUORUM', `only ${got} of the required ${needed} witness cosignatures were obtained`, 503);
    this.failures = failures;
  }
}

/** Two checkpoints for the same log cannot both be true: a split view / fork. */
export class SplitViewDetected extends AuditError {
  constructor(message: string) { super('AUDIT_SPLIT_VIEW', message, 409); }
}

/** Another live process (or this one) holds the log or witness directory's lock. */
export class DirLocked extends AuditError {
  constructor(what: string, dir: string) {
    super('AUDIT_LOCKED', `${what} directory ${dir} is in use by another process (or already open in this one): stop it first; the lock is released by the kernel when that process exits, even after kill -9`, 503);
  }
}

/**
 * The stored log does not extend the latest checkpoint this node anchored (state backend)
 * or a witness cosigned: entries were rewritten, or the directory was rolled back to an
 * older copy. The node refuses to start rather than sign the rewritten history.
 */
export class LogRollbackDetected extends AuditError {
  constructor(message: string) {
    super('AUDIT_ROLLBACK_DETECTED', `${message}; the node will not sign this history: restore the audit directory from a backup that extends the anchored checkpoint (or investigate the tampering), then start again`, 500);
  }
}
