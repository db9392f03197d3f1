/**
 * A clean-room result delivered to a receiving member goes into that member organisation's
 * workspace on the node that computed it (issue 23). Clean-room members are organisations'
 * nodes, so the receiving organisation is the receiving member's node id, and the partner
 * agreement it is deposited under is this node's agreement with that organisation.
 *
 * The clean-room service (src/cleanroom/service.ts) makes one call,
 * `depositRoomResult(this, …)`, when its compute node has a result for its receivers, before
 * it sends it. Which node-side code does the deposit is registered per service instance
 * (`registerRoomResultDeposits`, where the node builds its service: src/cleanroom/node.ts),
 * so the clean-room code needs no handle on the node's governance. A service with nothing
 * registered (the bare test nodes of src/node/cleanroom-process.ts, which keep no governance
 * vault) deposits nothing.
 *
 * Who receives: every active member with the `receive` ability, and the querier, except this
 * node itself (its own result is not a partner's). The lineage is this node's own datasets the
 * analysis read; other members' tables are governed by their own nodes' agreements and are
 * named in the item's source. A failed deposit (no agreement in force with a receiver that
 * covers the data) fails the query before any receiver gets the result: fail closed.
 */
import { GatehouseError } from '../errors.ts';
import type { RoomDelivery } from '../model/room-delivery.ts';
import type { Collaboration } from './model.ts';

export type { RoomDelivery };

export type RoomResultDepositor = (d: RoomDelivery) => Promise<unknown>;

const DEPOSITORS = new WeakMap<object, RoomResultDepositor>();

/** Where the node builds its clean-room service: its results are deposited by `depositor`. */
export function registerRoomResultDeposits(service: object, depositor: RoomResultDepositor): void {
  DEPOSITORS.set(service, depositor);
}

/** What a computed result's delivery deposits: its receivers and its lineage on this node. */
export function roomDelivery(nodeId: string, c: Collaboration, querier: string, tables: readonly string[], outcome: { queryId: string } & RoomDelivery['result']): RoomDelivery {
  const used = c.contributions.filter((x) => tables.includes(x.table));
  const receivers = new Set([querier, ...c.members.filter((m) => m.status === 'active' && m.abilities.includes('receive')).map((m) => m.nodeId)]);
  receivers.delete(nodeId);
  return {
    collaborationId: c.id, queryId: outcome.queryId, purpose: c.purpose, receivers: [...receivers].sort(),
    datasets: [...new Set(used.filter((x) => x.owner === nodeId).map((x) => x.dataset))].sort(),
    tables: used.map((x) => `${x.table}@${x.owner}`).sort(),
    result: { columns: outcome.columns, rows: outcome.rows, resultDigest: outcome.resultDigest },
  };
}

/**
 * The clean-room service's one call: deposits the result for every receiving member before it
 * is sent (throws, and nothing is sent, if a deposit is refused).
 */
export async function depositRoomResult(service: { readonly nodeId: string }, c: Collaboration, querier: string, tables: readonly string[], outcome: { queryId: string } & RoomDelivery['result']): Promise<void> {
  const depositor = DEPOSITORS.get(service);
  if (!depositor) return;
  const d = roomDelivery(service.nodeId, c, querier, tables, outcome);
  if (d.receivers.length === 0) return;
  try {
    await depositor(d);
  } catch (err) {
    throw refusedDelivery(service.nodeId, d, err);
  }
}

/**
 * A deposit refused for want of an agreement, said in the clean room's terms: the result was
 * not delivered, and the compute node's administrator learns exactly what to record there (the
 * member's organisation as a vendor, and an agreement covering this node's contributed datasets
 * and the collaboration's purpose). Only identifiers, never a value, are named.
 */
function refusedDelivery(nodeId: string, d: RoomDelivery, err: unknown): unknown {
  if (!(err instanceof GatehouseError) || !err.reasons.includes('GOV_AGREEMENT_NOT_COVERING')) return err;
  const datasets = d.datasets.map((x) => `--dataset ${x}`).join(' ');
  return new GatehouseError(err.code, `the result was not delivered: the compute node ${nodeId} puts it in each receiving member's partner workspace first, and ${err.message}`, {
    hint: `on ${nodeId}, for each receiving member (${d.receivers.join(', ')}) without one, record the member's organisation and an agreement: `
      + `gatehouse vendor register --name MEMBER, then gatehouse agreement create --kind DPA --title TEXT --partner MEMBER --effective-from DATE ${datasets} --purpose ${d.purpose} (docs/cleanrooms.md)`,
    reasons: err.reasons, ...(err.detail ? { detail: err.detail } : {}), cause: err,
  });
}
