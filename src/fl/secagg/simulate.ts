/**
 * Participants in one process, for tests and the benchmark: real participants and a real
 * coordinator, talking through a channel that can drop a participant at any stage (it
 * stops answering from that stage on) — the failure model of Bonawitz et al. 2017 §4.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { FlError } from '../errors.ts';
import { SecAggCoordinator } from './coordinator.ts';
import type { SessionParams, Stage } from './messages.ts';
import { SecAggParticipant } from './participant.ts';
import { runSecAgg, type RoundOutcome, type SecAggChannel } from './round.ts';

export interface SimulatedParty {
  readonly identity: KeyObject;
  readonly input: Uint32Array;
}

export function identities(ids: readonly string[]): { keys: Map<string, KeyObject>; pins: Map<string, KeyObject> } {
  const keys = new Map<string, KeyObject>();
  const pins = new Map<string, KeyObject>();
  for (const id of ids) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    keys.set(id, privateKey);
    pins.set(id, publicKey);
  }
  return { keys, pins };
}

/** A channel to in-process participants; `dropAt.get(id)` is the first stage it no longer answers. */
export function localChannel(parts: ReadonlyMap<string, SecAggParticipant>, inputs: ReadonlyMap<string, Uint32Array>, dropAt: ReadonlyMap<string, Stage> = new Map()): SecAggChannel {
  const order: Stage[] = ['advertise', 'share', 'masked', 'consistency', 'unmask'];
  const alive = (id: string, stage: Stage): SecAggParticipant => {
    const d = dropAt.get(id);
    if (d !== undefined && order.indexOf(stage) >= order.indexOf(d)) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `${id} dropped out`);
    return parts.get(id)!;
  };
  return {
    advertise: async (id) => alive(id, 'advertise').advertise(),
    share: async (id, adverts) => alive(id, 'share').share(adverts),
    masked: async (id, shares) => alive(id, 'masked').masked(shares, inputs.get(id)!),
    consistency: async (id, survivors) => alive(id, 'consistency').consistency(survivors),
    unmask: async (id, req) => alive(id, 'unmask').unmask(req),
  };
}

/** One complete session among in-process participants. */
export async function simulateSecAgg(params: SessionParams, inputs: ReadonlyMap<string, Uint32Array>, dropAt: ReadonlyMap<string, Stage> = new Map()): Promise<RoundOutcome & { coordinator: SecAggCoordinator }> {
  const { keys, pins } = identities(params.roster);
  const parts = new Map(params.roster.map((id) => [id, new SecAggParticipant(id, params, keys.get(id)!, pins)]));
  const coordinator = new SecAggCoordinator(params, pins);
  const out = await runSecAgg(coordinator, localChannel(parts, inputs, dropAt));
  return { ...out, coordinator };
}
