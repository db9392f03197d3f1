/**
 * The engine interface: engines execute SQL rendered by Gatehouse and never decide.
 */
import type { Dialect } from '../query/render/sql.ts';

import type { CellValue, EngineResult, ResultColumn } from '../model/result.ts';

export type { CellValue, EngineResult, ResultColumn };

export interface RunOptions {
  readonly timeoutMs: number;
  /** Interrupts the running statement (a wire CancelRequest, a client that went away). */
  readonly signal?: AbortSignal;
}

export interface Engine {
  readonly dialect: Dialect;
  /**
   * Rows per dataset, recorded once when the engine opened (catalog metadata, never a
   * caller's query): the planner's input for refusing costly joins before they run
   * (src/query/govern/cost-estimate.ts). A dataset absent here has no estimate.
   */
  readonly rowEstimates?: ReadonlyMap<string, number>;
  run(sql: string, options: RunOptions): Promise<EngineResult>;
  close(): Promise<void>;
}

/** Every engine's row estimates, by dataset (for the query planner). */
export function rowEstimatesOf(engines: readonly Engine[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of engines) for (const [d, n] of e.rowEstimates ?? []) out.set(d, n);
  return out;
}
