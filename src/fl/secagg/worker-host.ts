/**
 * The worker side of `SecAggWorkers` (worker-channel.ts): hosts some of a session's simulated
 * participants in one worker thread and answers the channel's calls for them. The masked
 * vector goes back transferred (its buffer moves to the caller, no copy). A participant's
 * FlError goes back as its detail and message, so the caller sees the same refusal.
 */
import { parentPort } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { FlError } from '../errors.ts';
import type { SessionParams } from './messages.ts';
import { SecAggParticipant } from './participant.ts';

interface Init { readonly kind: 'session'; readonly params: SessionParams; readonly keys: ReadonlyMap<string, KeyObject>; readonly pins: ReadonlyMap<string, KeyObject>; readonly inputs: ReadonlyMap<string, Uint32Array> }
interface Call { readonly kind: 'call'; readonly seq: number; readonly op: 'advertise' | 'share' | 'masked' | 'consistency' | 'unmask'; readonly id: string; readonly arg: unknown }

const port = parentPort!;
let parts = new Map<string, SecAggParticipant>();
let inputs: ReadonlyMap<string, Uint32Array> = new Map();

port.on('message', (m: Init | Call) => {
  if (m.kind === 'session') {
    parts = new Map([...m.keys].map(([id, key]) => [id, new SecAggParticipant(id, m.params, key, m.pins)]));
    inputs = m.inputs;
    port.postMessage({ kind: 'ready' });
    return;
  }
  void (async () => {
    try {
      const p = parts.get(m.id);
      if (!p) throw new FlError('FL_PARTICIPANT_UNKNOWN', `${m.id} is not hosted by this worker`);
      const a = m.arg as never;
      const r = m.op === 'advertise' ? p.advertise() : m.op === 'share' ? await p.share(a) : m.op === 'masked' ? p.masked(a, inputs.get(m.id)!) : m.op === 'consistency' ? p.consistency(a) : p.unmask(a);
      const y = (r as { y?: Uint32Array }).y;
      port.postMessage({ kind: 'result', seq: m.seq, result: r }, y ? [y.buffer as ArrayBuffer] : []);
    } catch (err) {
      const e = err as FlError;
      port.postMessage({ kind: 'error', seq: m.seq, detail: e.detail ?? 'FL_PARAMETERS_INVALID', message: String(e.message) });
    }
  })();
});
