/**
 * The CKKS key authority of a federated job, on its own node (issue 19, homomorphic
 * aggregation between nodes). Its operator designates it for one job and coordinator
 * (`gatehouse fl join --key-authority`); it must not be the coordinator. Per job it makes one
 * CKKS key pair (src/fl/ckks/ckks.ts) and answers two node calls from that coordinator:
 *
 *   fl-ckks-key      the public key, signed with this node's Ed25519 key over (job,
 *                    coordinator, digest): participants check it against this node's pin, so a
 *                    coordinator cannot slip in a key of its own;
 *   fl-ckks-decrypt  a verified sum: every contribution signed by a roster member for this
 *                    session, at least max(2, ⌈n/2⌉) distinct ones, each session once. Audited
 *                    `fl.decrypt` on this node, as the operator who designated it.
 */
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../../errors.ts';
import type { NodeHandler, PeerPin } from '../../federation/index.ts';
import type { Gatehouse } from '../../pipeline/gatehouse.ts';
import { CkksKeyAuthority, type CkksContribution } from '../ckks/ckks.ts';
import { FlError } from '../errors.ts';
import { digest, signFields, verifyFields } from '../secagg/crypto.ts';
import { checkJob, type JobSpec } from './job.ts';

export interface KeyAuthorityDesignation {
  readonly job: string;
  readonly coordinator: string;
  readonly credential: string;
}

const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64url');
const bytes = (v: unknown, what: string): Uint8Array => {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_-]*$/.test(v) || v.length > 64 << 20) throw new FlError('FL_PARAMETERS_INVALID', `malformed ${what}`);
  return new Uint8Array(Buffer.from(v, 'base64url'));
};

export const publicKeyFields = (job: string, coordinator: string, publicKey: Uint8Array) => [job, 'ckks-public-key', coordinator, digest(publicKey)];

export const contributionWire = {
  to: (c: CkksContribution) => ({ session: c.session, from: c.from, length: c.length, ciphertexts: c.ciphertexts.map(b64), sig: b64(c.sig) }),
  from: (o: any): CkksContribution => {
    if (typeof o?.session !== 'string' || typeof o?.from !== 'string' || !Number.isInteger(o?.length) || !Array.isArray(o?.ciphertexts) || o.ciphertexts.length > 4096) throw new FlError('FL_PARAMETERS_INVALID', 'malformed CKKS contribution');
    return { session: o.session, from: o.from, length: o.length, ciphertexts: o.ciphertexts.map((c: unknown) => bytes(c, 'ciphertext')), sig: bytes(o.sig, 'signature') };
  },
};

/** Checks a key authority's signed public key as a participant receives it through the coordinator. */
export function verifyAuthorityKey(spec: JobSpec, pins: ReadonlyMap<string, KeyObject>, publicKey: Uint8Array, sig: Uint8Array): void {
  const a = spec.config.aggregation;
  if (a.mode !== 'ckks' || !a.keyAuthority) throw new FlError('FL_PARAMETERS_INVALID', 'this job names no CKKS key authority');
  if (a.keyAuthority === spec.coordinator) throw new FlError('FL_DECRYPTION_REFUSED', 'the job names its coordinator as key authority');
  const pin = pins.get(a.keyAuthority);
  if (!pin || !verifyFields(pin, publicKeyFields(spec.job, spec.coordinator, publicKey), sig)) throw new FlError('FL_MESSAGE_FORGED', `the CKKS public key is not signed by the pinned key of ${a.keyAuthority}`);
}

export class FlKeyAuthorityRole {
  readonly #gatehouse: Gatehouse;
  readonly #self: string;
  readonly #identity: KeyObject;
  readonly #pins: () => ReadonlyMap<string, KeyObject>;
  readonly #designated = new Map<string, KeyAuthorityDesignation>();
  readonly #keys = new Map<string, Promise<CkksKeyAuthority>>();

  constructor(gatehouse: Gatehouse, self: string, identity: KeyObject, pins: () => ReadonlyMap<string, KeyObject>) {
    this.#gatehouse = gatehouse;
    this.#self = self;
    this.#identity = identity;
    this.#pins = pins;
  }

  designate(d: KeyAuthorityDesignation): void {
    if (d.coordinator === this.#self) throw new FlError('FL_PARAMETERS_INVALID', 'the CKKS key authority must not be the coordinator', 'designate another node');
    this.#designated.set(d.job, d);
  }

  #check(peer: PeerPin, spec: JobSpec): KeyAuthorityDesignation {
    const d = this.#designated.get(spec.job);
    const a = spec.config.aggregation;
    if (!d || d.coordinator !== peer.nodeId || spec.coordinator !== peer.nodeId || a.mode !== 'ckks' || a.keyAuthority !== this.#self) {
      throw new GatehouseError('POLICY_DENIED', `this node is not the designated key authority of job ${spec.job} under coordinator ${peer.nodeId}`, { hint: 'its operator runs: gatehouse fl join --key-authority' });
    }
    return d;
  }

  #key(spec: JobSpec): Promise<CkksKeyAuthority> {
    let k = this.#keys.get(spec.job);
    if (!k) {
      k = CkksKeyAuthority.create(this.#self, spec.coordinator, this.#pins());
      this.#keys.set(spec.job, k);
    }
    return k;
  }

  handlers(): Record<string, NodeHandler> {
    return {
      'fl-ckks-key': async ({ peer, body }) => {
        const spec = checkJob((body as any)?.spec);
        this.#check(peer, spec);
        const ka = await this.#key(spec);
        return { publicKey: b64(ka.publicKey), sig: b64(signFields(this.#identity, publicKeyFields(spec.job, spec.coordinator, ka.publicKey))) };
      },
      'fl-ckks-decrypt': async ({ peer, body }) => {
        const b = body as any;
        const spec = checkJob(b?.spec);
        const d = this.#check(peer, spec);
        const session = String(b?.session ?? '');
        const contributions = (Array.isArray(b?.contributions) ? b.contributions : []).map(contributionWire.from);
        if (contributions.some((c: CkksContribution) => !spec.participants.includes(c.from))) throw new FlError('FL_PARTICIPANT_UNKNOWN', 'a contribution comes from outside the job\'s roster');
        const min = Math.max(2, Math.ceil(spec.participants.length / 2));
        const meta = { credential: d.credential, source: `node:${peer.nodeId}`, channel: `federation:${peer.region}` };
        const { value } = await this.#gatehouse.flControl(meta, 'fl.decrypt', `decrypted the sum of ${contributions.length} contributions to session ${session} of job ${spec.job} for coordinator ${peer.nodeId}`, async () => {
          const ka = await this.#key(spec);
          return ka.decryptSum(session, contributions, min);
        });
        return { sum: [...value] };
      },
    };
  }
}
