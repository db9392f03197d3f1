/**
 * Typed errors of the PostgreSQL state backend: GatehouseErrors whose `code` STATE_CODES
 * gives and whose `detail` is the state code callers match on. Messages never carry the
 * connection password or the full connection URL.
 */
import { codeFor, GatehouseError, type ErrorCode } from '../errors.ts';

/** State code → union code: a database that cannot serve now (unreachable, too new a schema) is UNAVAILABLE (503). */
export const STATE_CODES: Readonly<Record<string, ErrorCode>> = {
  STATE_SCHEMA_TOO_NEW: 'UNAVAILABLE',
  STATE_CONFIG_INVALID: 'INTERNAL',
  STATE_UNAVAILABLE: 'UNAVAILABLE',
};

export class StateError extends GatehouseError {
  declare readonly detail: string;
  /** `status` chooses the union code only for a code STATE_CODES does not list. */
  constructor(code: string, message: string, status: number, options?: { cause?: unknown }) {
    super(codeFor(code, STATE_CODES, status), message, { detail: code, reasons: [code], cause: options?.cause });
  }
}

/** The database's Gatehouse schema was written by a newer Gatehouse: refuse to touch it. */
export class StateSchemaTooNew extends StateError {
  readonly found: number;
  readonly known: number;
  constructor(schema: string, found: number, known: number) {
    super('STATE_SCHEMA_TOO_NEW',
      `PostgreSQL schema "${schema}" is at version ${found}, but this Gatehouse knows versions up to ${known}: upgrade Gatehouse on this node (nothing was changed)`, 503);
    this.found = found;
    this.known = known;
  }
}

/** The state configuration (URL, schema name, pool size) is malformed. */
export class StateConfigInvalid extends StateError {
  constructor(message: string) { super('STATE_CONFIG_INVALID', message, 500); }
}

/** PostgreSQL cannot be reached or refused the operation: the request fails closed. */
export class StateUnavailable extends StateError {
  constructor(message: string, options?: { cause?: unknown }) { super('STATE_UNAVAILABLE', message, 503, options); }
}

/** A change lost the race with other writers more often than the retry policy allows (src/sql/retry.ts): nothing was changed; retry. */
export class StateBusy extends StateError {
  constructor(message: string, options?: { cause?: unknown }) { super('STATE_BUSY', message, 503, options); }
}
