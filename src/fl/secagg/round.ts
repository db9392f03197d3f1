/**
 * Drives one secure-aggregation session from the coordinator's side over any channel: in
 * process (tests, benchmark) or node to node (src/fl/node/, over src/federation). Each stage
 * asks every participant still in the protocol at once; one that does not answer, answers
 * with an error, or sends a message the coordinator rejects (forged, replayed, another's key)
 * is a dropout of that stage, handled exactly as the protocol says (coordinator.ts).
 */
import { FlError } from '../errors.ts';
import { SecAggCoordinator, type AggregateResult } from './coordinator.ts';
import type { AdvertiseMsg, ConsistencyMsg, MaskedMsg, ShareMsg, UnmaskMsg, UnmaskRequest } from './messages.ts';

export interface SecAggChannel {
  advertise(id: string): Promise<AdvertiseMsg>;
  share(id: string, adverts: readonly AdvertiseMsg[]): Promise<ShareMsg>;
  masked(id: string, shares: readonly { from: string; to: string; ct: Uint8Array }[]): Promise<MaskedMsg>;
  consistency(id: string, survivors: readonly string[]): Promise<ConsistencyMsg>;
  unmask(id: string, req: UnmaskRequest): Promise<UnmaskMsg>;
}

export interface RoundOutcome extends AggregateResult {
  /** Messages the coordinator refused, by participant: the typed FL detail code. */
  readonly rejected: ReadonlyMap<string, string>;
}

export async function runSecAgg(coord: SecAggCoordinator, channel: SecAggChannel): Promise<RoundOutcome> {
  const rejected = new Map<string, string>();
  const gather = async <M>(ids: readonly string[], ask: (id: string) => Promise<M>, accept: (m: M, id: string) => void): Promise<string[]> => {
    const answers = await Promise.allSettled(ids.map((id) => ask(id)));
    const ok: string[] = [];
    answers.forEach((a, i) => {
      const id = ids[i]!;
      if (a.status === 'rejected') return;
      try {
        if ((a.value as { from?: string }).from !== id) throw new FlError('FL_MESSAGE_FORGED', `the answer asked of ${id} names another sender`);
        accept(a.value, id);
        ok.push(id);
      } catch (err) {
        rejected.set(id, (err as FlError).detail ?? 'FL_MESSAGE_FORGED');
      }
    });
    return ok;
  };
  const u1 = await gather(coord.params.roster, (id) => channel.advertise(id), (m) => coord.acceptAdvert(m));
  const u2 = await gather(u1, (id) => channel.share(id, coord.advertsFor(id)), (m) => coord.acceptShares(m));
  await gather(u2, (id) => channel.masked(id, coord.sharesFor(id)), (m) => coord.acceptMasked(m));
  const u3 = coord.survivors();
  const u4 = await gather(u3, (id) => channel.consistency(id, u3), (m) => coord.acceptConsistency(m));
  const req = coord.unmaskRequest();
  await gather(u4, (id) => channel.unmask(id, req), (m) => coord.acceptUnmask(m));
  const result = await coord.finish();
  return { ...result, rejected };
}
