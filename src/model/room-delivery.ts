/**
 * A clean-room result on its way to the members who may receive it, as the node's partner
 * workspaces deposit it (issue 23; the delivery is built in src/cleanroom/result-deposits.ts
 * and deposited by src/operations/cleanroom/deposit-result.ts).
 */
import type { CellValue } from './result.ts';

export interface RoomDelivery {
  readonly collaborationId: string;
  readonly queryId: string;
  readonly purpose: string;
  /** The receiving members (node ids, each an organisation), never this node. */
  readonly receivers: readonly string[];
  /** This node's own datasets the analysis read. */
  readonly datasets: readonly string[];
  /** The collaboration's tables the analysis read, as `<table>@<owner>`. */
  readonly tables: readonly string[];
  readonly result: { readonly columns: readonly { readonly name: string; readonly type: string }[]; readonly rows: readonly (readonly CellValue[])[]; readonly resultDigest: string };
}
