/**
 * The compute node's deposit of a clean-room result into each receiving member's workspace
 * (issue 23; src/governance/workspaces/room-results.ts says who receives and why), as one
 * audited request of this node (`cleanroom.deposit`): the node itself acts for the
 * collaboration, so the entry's principal is `node:<this node>`, its source loopback and its
 * channel `cleanroom`, and its reasons name every item placed, under which agreement.
 *
 * Each receiver gets one `room-result` item: the released columns and rows with their digest,
 * which the receiver's own log also records (`cleanroom.result`), so the two can be matched.
 * It inherits the lineage of this node's datasets the analysis read. A refused deposit (no
 * agreement in force with a receiver that covers them) withdraws what was placed and fails
 * the delivery, so no receiver gets a result this node could not govern.
 */
import { GatehouseError } from '../../errors.ts';
import { depositDerivative, withdrawDeposits } from '../../governance/workspaces/derivative.ts';
import type { RoomDelivery } from '../../model/room-delivery.ts';
import { auditedOpen } from '../../kernel/audited.ts';
import type { Runtime } from '../../kernel/runtime.ts';

export interface RoomDeposit {
  readonly receiver: string;
  readonly item: string;
  readonly agreementId: string;
  readonly classification: string;
}

export async function depositRoomResult(rt: Runtime, node: string, d: RoomDelivery): Promise<{ value: RoomDeposit[]; auditId: string }> {
  const meta = { credential: null, source: '127.0.0.1', channel: 'cleanroom' };
  return auditedOpen(rt, meta, 'cleanroom.deposit', { principal: `node:${node}`, purpose: d.purpose }, async ({ state, entry, keep }) => {
    keep(`collaboration ${d.collaborationId}`);
    keep(`query ${d.queryId}, tables ${d.tables.join(', ')}`);
    entry.datasets = [...d.datasets];
    entry.resultDigest = d.result.resultDigest;
    entry.rowsReturned = d.result.rows.length;
    if (d.datasets.length === 0) {
      // Nothing of this node's went into it: the members whose data it is govern it on their nodes.
      keep('no dataset of this node was read; nothing to deposit here');
      return [];
    }
    const { artefacts } = await rt.governance.vault();
    const deps = { artefacts, agreements: rt.governance.store.agreements, catalog: state.loaded.workspace, retentionRules: await rt.governance.store.retention.rules(), now: rt.now() };
    const content = Buffer.from(JSON.stringify({ collaborationId: d.collaborationId, queryId: d.queryId, columns: d.result.columns, rows: d.result.rows, resultDigest: d.result.resultDigest }));
    const placed: RoomDeposit[] = [];
    try {
      for (const receiver of d.receivers) {
        const x = await depositDerivative(deps, {
          org: receiver, item: 'room-result', name: `${d.collaborationId}.${d.queryId.slice(0, 8)}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 100), datasets: d.datasets,
          content, mediaType: 'application/json', by: `node:${node}`, source: `cleanroom:${d.collaborationId}/${d.queryId}`,
        });
        placed.push({ receiver, item: x.id, agreementId: x.agreementId, classification: x.classification });
        keep(x.event.detail);
      }
    } catch (err) {
      const cert = await withdrawDeposits(artefacts, placed.map((p) => p.item), `clean-room query ${d.queryId}: delivery refused, deposits withdrawn`).catch(() => null);
      if (cert) keep(`withdrawn under certificate ${cert}`);
      if (err instanceof GatehouseError) throw err;
      throw new GatehouseError('INTERNAL', 'the result could not be placed in the receivers\' workspaces, so it was not delivered', { cause: err });
    }
    return placed;
  });
}
