/**
 * Typed errors for data-loss prevention, each with a stable `code` callers match on and
 * docs/dlp.md lists. Messages name detectors, column names, configuration paths and value
 * *types* only — never a cell value, a catalog value or the fingerprint key.
 */
import type { Classification } from '../../workspace/types.ts';
import type { DetectorId, DlpAction } from './types.ts';

export class DlpError extends Error {
  readonly code: string;
  /** HTTP status the API maps this error to. */
  readonly status: number;
  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** The `dlp:` configuration is malformed; `problems` lists every issue with its path. */
export class DlpConfigInvalid extends DlpError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('DLP_CONFIG_INVALID', `invalid dlp configuration: ${problems.join('; ')}`, 500);
    this.problems = problems;
  }
}

/** A caller handed the index or scanner something it cannot use (described by type only). */
export class DlpInputInvalid extends DlpError {
  constructor(message: string) { super('DLP_INPUT_INVALID', message, 400); }
}

/** The index was used after `dispose()`. */
export class DlpIndexDisposed extends DlpError {
  constructor() { super('DLP_INDEX_DISPOSED', 'the sensitive value index has been disposed', 500); }
}

export interface BlockedReason {
  readonly detector: DetectorId;
  readonly column: string;
  readonly classification: Classification;
  readonly action: DlpAction;
  readonly rows: number;
}

/**
 * A result the DLP policy blocks. `reasons` (detector, column, classification, number of
 * rows) is what the audit entry records; the message says the same in words.
 */
export class DlpResultBlocked extends DlpError {
  readonly reasons: readonly BlockedReason[];
  constructor(reasons: readonly BlockedReason[]) {
    const blocking = reasons.filter((r) => r.action === 'block');
    const parts = blocking.map((r) => `${r.detector} in column ${JSON.stringify(r.column)} (${r.rows} row${r.rows === 1 ? '' : 's'})`);
    super('DLP_BLOCKED', `result blocked by data-loss prevention: ${parts.join(', ')}`, 403);
    this.reasons = reasons;
  }
}
