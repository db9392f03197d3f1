/**
 * The thread that records checkpoints in the SQLite anchor for `SqliteCheckpointAnchor.
 * advanceOffThread` (anchor.ts). Its own connection to the same file runs the same
 * transaction as `advance` (BEGIN IMMEDIATE … COMMIT with synchronous = FULL, so the commit
 * waits for the disk): the wait happens here, not on the node's event loop, where it stalled
 * every request in flight twice a second under load (issue 15).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AnchorForked, SqliteCheckpointAnchor, type AnchoredCheckpoint } from './anchor.ts';

export interface AdvanceRequest { readonly id: number; readonly cp: AnchoredCheckpoint }
export type AdvanceReply = { readonly id: number; readonly ok: true } | { readonly id: number; readonly ok: false; readonly forked: boolean; readonly message: string };

const { path, origin } = workerData as { path: string; origin: string };
let anchor: SqliteCheckpointAnchor | null = null;

parentPort!.on('message', (req: AdvanceRequest) => {
  let reply: AdvanceReply;
  try {
    anchor ??= SqliteCheckpointAnchor.open(path, origin);
    anchor.advance(req.cp);
    reply = { id: req.id, ok: true };
  } catch (e) {
    reply = { id: req.id, ok: false, forked: e instanceof AnchorForked, message: e instanceof Error ? e.message : String(e) };
  }
  parentPort!.postMessage(reply);
});
