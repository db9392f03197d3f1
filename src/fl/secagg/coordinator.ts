/**
 * The coordinator (server) of a secure-aggregation session (Bonawitz et al. 2017, Fig. 4,
 * server side; SecAgg+ of Bell et al. 2020). It relays keys and encrypted shares it cannot
 * read, sums masked inputs, and removes the masks with what the unmasking round reveals:
 *
 *   U1 advertised ⊇ U2 shared ⊇ U3 sent a masked input ⊇ U4 signed U3 ⊇ U5 unmasked
 *
 *   - a participant in U1 \ U2 is excluded: nobody masked with it;
 *   - one in U2 \ U3 (dropped before its input) is recovered: s_v^SK is rebuilt from t
 *     shares and every pairwise mask it left in a survivor's input is removed;
 *   - each one in U3 has its self mask b_u rebuilt from t shares and removed;
 *   - fewer than t shares of a secret that is needed stops the round (no partial sum).
 *
 * Every message is checked against the sender's pinned node key and accepted once per stage;
 * a reconstructed s_v^SK must match the advertised s_v^PK and a rebuilt b_u the commitment
 * u signed, so a participant that sends a wrong share is caught instead of corrupting the sum.
 * By construction it receives, for each participant, shares of b or of s^SK, never of both
 * (an honest participant reveals one kind per neighbour; `holdsBothSecrets` states it).
 */
import { combine } from 'shamir-secret-sharing';
import { FlError } from '../errors.ts';
import { agree, dhPublicOf, digest, verifyFields } from './crypto.ts';
import {
  advertiseFields, consistencyFields, maskedFields, shareFields, unmaskFields,
  type AdvertiseMsg, type ConsistencyMsg, type IdentityKeys, type MaskedMsg, type SessionParams, type ShareMsg, type UnmaskMsg, type UnmaskRequest,
} from './messages.ts';
import { harary, type Neighbourhoods } from './neighbourhood.ts';
import { checkParams } from './params.ts';
import { applyMasks, type Mask } from './prg.ts';

export interface AggregateResult {
  /** Σ_{u∈U3} x_u mod 2^32. */
  readonly sum: Uint32Array;
  readonly included: readonly string[];
  /** Who was lost at which stage. */
  readonly dropped: { readonly advertise: readonly string[]; readonly share: readonly string[]; readonly masked: readonly string[]; readonly consistency: readonly string[]; readonly unmask: readonly string[] };
}

export class SecAggCoordinator {
  readonly params: SessionParams;
  readonly graph: Neighbourhoods;
  readonly #pins: IdentityKeys;
  readonly #adverts = new Map<string, AdvertiseMsg>();
  readonly #keyOwner = new Map<string, string>();
  readonly #shares = new Map<string, ShareMsg>();
  /** Who sent a masked input; the inputs themselves are added into #sum on arrival (O(d) memory). */
  readonly #masked = new Set<string>();
  readonly #sum: Uint32Array;
  readonly #consistency = new Map<string, ConsistencyMsg>();
  #survivors: string[] | null = null;
  readonly #unmasked = new Set<string>();
  #finished = false;
  /** Revealed shares per participant and kind. */
  readonly #revealed = new Map<string, { b: Uint8Array[]; s: Uint8Array[] }>();

  constructor(params: SessionParams, pins: IdentityKeys) {
    checkParams(params);
    for (const id of params.roster) if (!pins.has(id)) throw new FlError('FL_PARTICIPANT_UNKNOWN', `${id} has no pinned node key`);
    this.params = params;
    this.#pins = pins;
    this.graph = harary(params.roster, params.degree, params.graphSeed);
    this.#sum = new Uint32Array(params.length);
  }

  #check(stage: string, m: { session: string; from: string; sig: Uint8Array }, fields: readonly (string | Uint8Array)[], seen: { has(id: string): boolean }, allowed: ReadonlySet<string> | readonly string[]): void {
    if (m.session !== this.params.session) throw new FlError('FL_MESSAGE_REPLAYED', `a ${stage} message from ${m.from} belongs to another session`);
    const pin = this.#pins.get(m.from);
    if (!pin || !this.params.roster.includes(m.from)) throw new FlError('FL_PARTICIPANT_UNKNOWN', `${m.from} is not in this session's roster`);
    if (!verifyFields(pin, fields, m.sig)) throw new FlError('FL_MESSAGE_FORGED', `the ${stage} message for ${m.from} is not signed by its pinned node key`);
    if (seen.has(m.from)) throw new FlError('FL_MESSAGE_REPLAYED', `${m.from} already sent its ${stage} message`);
    const ok = Array.isArray(allowed) ? allowed.includes(m.from) : (allowed as ReadonlySet<string>).has(m.from);
    if (!ok) throw new FlError('FL_STAGE_OUT_OF_ORDER', `${m.from} sent a ${stage} message without completing the stage before`);
  }

  /** Round 0: accept an advert. */
  acceptAdvert(m: AdvertiseMsg): void {
    if (this.#shares.size > 0) throw new FlError('FL_STAGE_OUT_OF_ORDER', 'adverts are closed');
    this.#check('advertise', m, advertiseFields(m), this.#adverts, this.params.roster);
    const keys = [Buffer.from(m.cPk).toString('hex'), Buffer.from(m.sPk).toString('hex')];
    if (keys[0] === keys[1] || keys.some((k) => this.#keyOwner.has(k))) throw new FlError('FL_KEY_REUSED', `${m.from} advertised a key another participant already uses`);
    for (const k of keys) this.#keyOwner.set(k, m.from);
    this.#adverts.set(m.from, m);
  }

  /** What u receives for round 1: the adverts of its neighbours in U1. */
  advertsFor(u: string): AdvertiseMsg[] {
    return this.graph.of.get(u)!.filter((v) => this.#adverts.has(v)).map((v) => this.#adverts.get(v)!);
  }

  acceptShares(m: ShareMsg): void {
    if (this.#masked.size > 0) throw new FlError('FL_STAGE_OUT_OF_ORDER', 'share collection is closed');
    this.#check('share', m, shareFields(m), this.#shares, new Set(this.#adverts.keys()));
    if (m.bCommit.length !== 32) throw new FlError('FL_MESSAGE_FORGED', `${m.from}'s commitment is malformed`);
    const nb = this.graph.of.get(m.from)!;
    if (m.shares.some((s) => !nb.includes(s.to)) || new Set(m.shares.map((s) => s.to)).size !== m.shares.length) throw new FlError('FL_MESSAGE_FORGED', `${m.from} addressed shares outside its neighbourhood`);
    this.#shares.set(m.from, m);
  }

  /** What u receives for round 2: the ciphertexts addressed to it by neighbours in U2. */
  sharesFor(u: string): { from: string; to: string; ct: Uint8Array }[] {
    const out: { from: string; to: string; ct: Uint8Array }[] = [];
    for (const [from, m] of this.#shares) for (const s of m.shares) if (s.to === u) out.push({ from, to: u, ct: s.ct });
    return out;
  }

  acceptMasked(m: MaskedMsg): void {
    if (this.#survivors) throw new FlError('FL_STAGE_OUT_OF_ORDER', 'masked-input collection is closed');
    if (m.y.length !== this.params.length) throw new FlError('FL_PARAMETERS_INVALID', `${m.from}'s input has ${m.y.length} coordinates; the session expects ${this.params.length}`);
    const yDigest = digest(new Uint8Array(m.y.buffer, m.y.byteOffset, m.y.byteLength));
    this.#check('masked', m, maskedFields({ session: m.session, from: m.from, yDigest }), this.#masked, new Set(this.#shares.keys()));
    this.#masked.add(m.from);
    const sum = this.#sum;
    const y = m.y;
    for (let i = 0; i < sum.length; i++) sum[i] += y[i]!;
  }

  /** Closes input collection: U3. */
  survivors(): string[] {
    if (!this.#survivors) {
      const u3 = [...this.#masked.keys()].sort();
      if (u3.length < this.params.threshold) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `${u3.length} participants sent inputs, fewer than the threshold ${this.params.threshold}`, 'retry the round when more participants are online');
      this.#survivors = u3;
    }
    return this.#survivors;
  }

  acceptConsistency(m: ConsistencyMsg): void {
    const u3 = this.survivors();
    this.#check('consistency', m, consistencyFields(m.session, m.from, u3), this.#consistency, u3);
    this.#consistency.set(m.from, m);
  }

  unmaskRequest(): UnmaskRequest {
    const u3 = this.survivors();
    if (this.#consistency.size < this.params.threshold) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `${this.#consistency.size} participants confirmed the survivor set, fewer than the threshold ${this.params.threshold}`);
    return { survivors: u3, signatures: [...this.#consistency.values()] };
  }

  acceptUnmask(m: UnmaskMsg): void {
    const u3 = this.survivors();
    this.#check('unmask', m, unmaskFields(m), this.#unmasked, new Set(this.#consistency.keys()));
    const inU3 = new Set(u3);
    for (const s of m.shares) {
      // A share of the wrong kind would be a participant helping the coordinator learn both secrets.
      if ((s.kind === 'b') !== inU3.has(s.of) || !this.#shares.has(s.of)) throw new FlError('FL_MESSAGE_FORGED', `${m.from} revealed a share of the wrong kind for ${s.of}`);
    }
    this.#unmasked.add(m.from);
    for (const s of m.shares) {
      const r = this.#revealed.get(s.of) ?? { b: [], s: [] };
      r[s.kind].push(s.share);
      this.#revealed.set(s.of, r);
    }
  }

  /** Whether the coordinator holds shares of both b_v and s_v^SK of any participant (never true). */
  holdsBothSecrets(): boolean {
    for (const r of this.#revealed.values()) if (r.b.length > 0 && r.s.length > 0) return true;
    return false;
  }

  /** Rebuilds the needed secrets, removes every mask and returns Σ_{u∈U3} x_u mod 2^32. */
  async finish(): Promise<AggregateResult> {
    const u3 = this.survivors();
    const t = this.params.threshold;
    if (this.#finished) throw new FlError('FL_STAGE_OUT_OF_ORDER', 'this session was already unmasked');
    this.#finished = true;
    const sum = this.#sum;
    const need = async (v: string, kind: 'b' | 's'): Promise<Uint8Array> => {
      const got = this.#revealed.get(v)?.[kind] ?? [];
      if (got.length < t) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `only ${got.length} shares of ${v}'s ${kind === 'b' ? 'self mask' : 'mask key'} arrived, fewer than the threshold ${t}`, 'retry the round when more participants are online');
      return combine(got.slice(0, Math.min(got.length, 255)));
    };
    // Every secret is rebuilt and checked before any mask is removed; then all masks are removed in one pass (prg.ts).
    const masks: Mask[] = [];
    for (const u of u3) {
      const b = await need(u, 'b');
      if (!digest(b).equals(this.#shares.get(u)!.bCommit)) throw new FlError('FL_MESSAGE_FORGED', `the shares revealed for ${u}'s self mask do not match its commitment`);
      masks.push({ seed: b, domain: 'self', sign: -1 });
    }
    const inU3 = new Set(u3);
    const lateDrops = [...this.#shares.keys()].filter((v) => !inU3.has(v)).sort();
    for (const v of lateDrops) {
      const sSk = await need(v, 's');
      const adv = this.#adverts.get(v)!;
      if (!Buffer.from(dhPublicOf(sSk)).equals(Buffer.from(adv.sPk))) throw new FlError('FL_MESSAGE_FORGED', `the shares revealed for ${v}'s mask key do not match its advertised key`);
      for (const u of this.graph.of.get(v)!) {
        // u masked with v iff u survived and opened v's share (v ∈ U2 ∩ N(u)): every u in U3 that is v's neighbour did.
        if (!inU3.has(u) || !this.#shares.get(v)!.shares.some((s) => s.to === u)) continue;
        masks.push({ seed: agree(sSk, this.#adverts.get(u)!.sPk, this.params.session, 'pair-mask', v, u), domain: 'pair', sign: u < v ? -1 : 1 });
      }
      sSk.fill(0);
    }
    applyMasks(sum, masks);
    for (const m of masks) m.seed.fill(0);
    const roster = this.params.roster;
    const gone = (have: { has(id: string): boolean }, prev: readonly string[]) => prev.filter((id) => !have.has(id)).sort();
    const u1 = [...this.#adverts.keys()];
    const u2 = [...this.#shares.keys()];
    const u4 = [...this.#consistency.keys()];
    return {
      sum, included: u3,
      dropped: {
        advertise: gone(this.#adverts, roster), share: gone(this.#shares, u1), masked: gone(this.#masked, u2),
        consistency: gone(this.#consistency, u3), unmask: gone(this.#unmasked, u4),
      },
    };
  }
}
