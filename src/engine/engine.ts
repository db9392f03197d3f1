/**
 * The engine interface: engines execute SQL rendered by Gatehouse and never decide.
 */
import type { Dialect } from '../query/render/sql.ts';

export type CellValue = null | boolean | number | string | CellValue[] | { [k: string]: CellValue };

export interface ResultColumn {
  readonly name: string;
  readonly type: string;
}

export interface EngineResult {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly CellValue[])[];
}

export interface RunOptions {
  readonly timeoutMs: number;
  /** Interrupts the running statement (a wire CancelRequest, a client that went away). */
  readonly signal?: AbortSignal;
}

export interface Engine {
  readonly dialect: Dialect;
  run(sql: string, options: RunOptions): Promise<EngineResult>;
  close(): Promise<void>;
}
