/**
 * Typed errors for the audit log. Every failure has its own class and a stable
 * `code` that callers (the HTTP API, the CLI, the pipeline) match on and the docs list
 * (docs/audit.md, "Error codes"). Messages never carry secrets: no passphrases, key
 * material or principal identifiers (only pseudonyms and indices).
 */

export class AuditError extends Error {
  readonly code: string;
  /** HTTP status the API maps this error to. */
  readonly status: number;
  constructor(code: string, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
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
