/**
 * Typed errors for data-loss prevention: GatehouseErrors whose `detail` is the stable DLP
 * code docs/dlp.md lists and whose `code` DLP_CODES gives. Messages name detectors, column
 * names, configuration paths and value *types* only — never a cell value, a catalog value
 * or the fingerprint key.
 */
import { codeFor, GatehouseError, type ErrorCode } from '../../errors.ts';
import type { Classification } from '../../model/types.ts';
import type { DetectorId, DlpAction } from './types.ts';

/** DLP code → union code: the `dlp:` section is part of the workspace; a blocked result is DLP_BLOCKED. */
export const DLP_CODES: Readonly<Record<string, ErrorCode>> = {
  DLP_CONFIG_INVALID: 'WORKSPACE_INVALID',
  DLP_INPUT_INVALID: 'REQUEST_INVALID',
  DLP_INDEX_DISPOSED: 'INTERNAL',
  DLP_BLOCKED: 'DLP_BLOCKED',
};

export class DlpError extends GatehouseError {
  declare readonly detail: string;
  /** `status` chooses the union code only for a code DLP_CODES does not list. */
  constructor(code: string, message: string, status: number, reasons: readonly string[] = [code]) {
    super(codeFor(code, DLP_CODES, status), message, { detail: code, reasons });
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
 * A result the DLP policy blocks. `blocked` (detector, column, classification, number of
 * rows) is what the audit entry records; `reasons` and the message say the same in words.
 */
export class DlpResultBlocked extends DlpError {
  readonly blocked: readonly BlockedReason[];
  constructor(blocked: readonly BlockedReason[]) {
    const parts = blocked.filter((r) => r.action === 'block').map((r) => `${r.detector} in column ${JSON.stringify(r.column)} (${r.rows} row${r.rows === 1 ? '' : 's'})`);
    super('DLP_BLOCKED', `result blocked by data-loss prevention: ${parts.join(', ')}`, 403, parts);
    this.blocked = blocked;
  }
}
