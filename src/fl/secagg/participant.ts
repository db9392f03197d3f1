/**
 * One participant of a secure-aggregation session (Bonawitz et al. 2017, Fig. 4, user side;
 * SecAgg+ neighbourhoods of Bell et al. 2020). It keeps its own secrets — s_u^SK, c_u^SK,
 * b_u — and answers each stage once, in order. It refuses, with a typed error:
 *  - an advert not signed by the pinned key of the participant it names, or from another
 *    session (forged / replayed), or reusing another participant's public key;
 *  - a share that does not decrypt for this pair and session;
 *  - an unmasking request whose survivor set lacks t consistency signatures, and any second
 *    unmasking request — so it never reveals both b_v and s_v^SK of one neighbour.
 */
import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { split } from 'shamir-secret-sharing';
import { FlError } from '../errors.ts';
import { agree, dhPrivateKey, digest, generateDhKeyPair, open, seal, signFields, transcript, verifyFields, type DhKeyPair } from './crypto.ts';
import {
  advertiseFields, consistencyFields, maskedFields, shareFields, unmaskFields,
  type AdvertiseMsg, type ConsistencyMsg, type IdentityKeys, type MaskedMsg, type SessionParams, type ShareMsg, type Stage, type UnmaskMsg, type UnmaskRequest,
} from './messages.ts';
import { harary } from './neighbourhood.ts';
import { checkParams } from './params.ts';
import { applyMasks, type Mask } from './prg.ts';

export const shareAad = (session: string, from: string, to: string) => transcript([session, 'share', from, to]);

function parseSharePlain(p: Buffer): string[] | null {
  const out: string[] = [];
  let off = 0;
  while (off < p.length) {
    if (off + 4 > p.length) return null;
    const n = p.readUInt32BE(off);
    if (off + 4 + n > p.length) return null;
    out.push(p.subarray(off + 4, off + 4 + n).toString('base64'));
    off += 4 + n;
  }
  return out;
}

export class SecAggParticipant {
  readonly id: string;
  readonly params: SessionParams;
  readonly neighbours: readonly string[];
  readonly #identity: KeyObject;
  readonly #pins: IdentityKeys;
  readonly #c: DhKeyPair;
  readonly #s: DhKeyPair;
  readonly #b: Uint8Array;
  /** c_u^SK and s_u^SK as KeyObjects (parsed once, not once per neighbour). */
  readonly #cKey: KeyObject;
  readonly #sKey: KeyObject;
  /** The share-encryption key agreed with each neighbour in round 1, reused to open its shares in round 2. */
  readonly #shareKeys = new Map<string, Buffer>();
  #stage: Stage | 'new' | 'done' = 'new';
  /** Accepted adverts of neighbours (U1 ∩ N(u)). */
  readonly #adverts = new Map<string, AdvertiseMsg>();
  /** Shares held for neighbours in U2 ∩ N(u) and for u itself: [share of s_v^SK, share of b_v]. */
  readonly #held = new Map<string, { s: Uint8Array; b: Uint8Array }>();

  constructor(id: string, params: SessionParams, identity: KeyObject, pins: IdentityKeys) {
    checkParams(params);
    if (!params.roster.includes(id)) throw new FlError('FL_PARTICIPANT_UNKNOWN', `${id} is not in this session's roster`);
    this.id = id;
    this.params = params;
    this.#identity = identity;
    this.#pins = pins;
    this.neighbours = harary(params.roster, params.degree, params.graphSeed).of.get(id)!;
    this.#c = generateDhKeyPair();
    this.#s = generateDhKeyPair();
    this.#b = new Uint8Array(randomBytes(32));
    this.#cKey = dhPrivateKey(this.#c.secret);
    this.#sKey = dhPrivateKey(this.#s.secret);
  }

  #advance(from: Stage | 'new', to: Stage): void {
    if (this.#stage !== from) throw new FlError('FL_STAGE_OUT_OF_ORDER', `${this.id} was asked for stage ${to} while at ${this.#stage}`, 'start a new session');
    this.#stage = to;
  }

  #pin(id: string): KeyObject {
    const k = this.#pins.get(id);
    if (!k) throw new FlError('FL_PARTICIPANT_UNKNOWN', `${id} has no pinned node key`);
    return k;
  }

  /** Round 0. */
  advertise(): AdvertiseMsg {
    this.#advance('new', 'advertise');
    const m = { session: this.params.session, from: this.id, cPk: this.#c.public, sPk: this.#s.public };
    return { ...m, sig: signFields(this.#identity, advertiseFields(m)) };
  }

  /** Round 1: check the neighbours' adverts, Shamir-share s_u^SK and b_u among them. */
  async share(adverts: readonly AdvertiseMsg[]): Promise<ShareMsg> {
    this.#advance('advertise', 'share');
    const seenKeys = new Set<string>([Buffer.from(this.#c.public).toString('hex'), Buffer.from(this.#s.public).toString('hex')]);
    for (const a of adverts) {
      if (a.session !== this.params.session) throw new FlError('FL_MESSAGE_REPLAYED', `an advert for ${a.from} belongs to another session`);
      if (a.from === this.id || !this.neighbours.includes(a.from)) continue;
      if (this.#adverts.has(a.from)) throw new FlError('FL_MESSAGE_REPLAYED', `${a.from} advertised twice`);
      if (!verifyFields(this.#pin(a.from), advertiseFields(a), a.sig)) throw new FlError('FL_MESSAGE_FORGED', `the advert for ${a.from} is not signed by its pinned node key`);
      for (const k of [a.cPk, a.sPk]) {
        const hex = Buffer.from(k).toString('hex');
        if (seenKeys.has(hex)) throw new FlError('FL_KEY_REUSED', `${a.from} advertised a key another participant already uses`);
        seenKeys.add(hex);
      }
      this.#adverts.set(a.from, a);
    }
    // As in Bonawitz et al. (shares go to all of U1, u included), u keeps one share of its own
    // secrets: with n = 3 and t = 2 one dropout is then still recoverable.
    const recipients = [...this.#adverts.keys()].sort();
    const t = this.params.threshold;
    if (recipients.length + 1 < t) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `${this.id} has ${recipients.length} neighbours left, too few for the threshold ${t}`);
    const sShares = await split(this.#s.secret, recipients.length + 1, t);
    const bShares = await split(this.#b, recipients.length + 1, t);
    this.#held.set(this.id, { s: sShares[recipients.length]!, b: bShares[recipients.length]! });
    const shares = recipients.map((v, i) => {
      const key = agree(this.#cKey, this.#adverts.get(v)!.cPk, this.params.session, 'share-key', this.id, v);
      this.#shareKeys.set(v, key);
      return { to: v, ct: seal(key, transcript([this.id, v, sShares[i]!, bShares[i]!]), shareAad(this.params.session, this.id, v)) };
    });
    const m = { session: this.params.session, from: this.id, bCommit: new Uint8Array(digest(this.#b)), shares };
    return { ...m, sig: signFields(this.#identity, shareFields(m)) };
  }

  /**
   * Round 2: open the shares addressed to u (their senders are U2 ∩ N(u)) and send
   * y_u = x_u + PRG(b_u) + Σ_{v∈U2∩N(u)} sign(u,v)·PRG(s_uv), sign = +1 if u < v else −1.
   */
  masked(incoming: readonly { readonly from: string; readonly to: string; readonly ct: Uint8Array }[], x: Uint32Array): MaskedMsg {
    this.#advance('share', 'masked');
    if (x.length !== this.params.length) throw new FlError('FL_PARAMETERS_INVALID', `the input has ${x.length} coordinates; the session expects ${this.params.length}`);
    for (const e of incoming) {
      if (e.to !== this.id) throw new FlError('FL_MESSAGE_FORGED', `a share addressed to ${e.to} was delivered to ${this.id}`);
      const adv = this.#adverts.get(e.from);
      if (!adv) continue; // not a neighbour whose keys u accepted
      if (e.from === this.id || this.#held.has(e.from)) throw new FlError('FL_MESSAGE_REPLAYED', `${e.from}'s share was delivered twice`);
      // The same HKDF output as agree(c_u, c_v^PK, …, e.from, u): the pair's ids enter in a fixed order.
      const key = this.#shareKeys.get(e.from) ?? agree(this.#cKey, adv.cPk, this.params.session, 'share-key', e.from, this.id);
      const plain = open(key, e.ct, shareAad(this.params.session, e.from, this.id));
      const fields = plain && parseSharePlain(plain);
      if (!fields || fields.length !== 4 || Buffer.from(fields[0]!, 'base64').toString() !== e.from || Buffer.from(fields[1]!, 'base64').toString() !== this.id) {
        throw new FlError('FL_MESSAGE_FORGED', `the share from ${e.from} does not open for this pair and session`);
      }
      this.#held.set(e.from, { s: new Uint8Array(Buffer.from(fields[2]!, 'base64')), b: new Uint8Array(Buffer.from(fields[3]!, 'base64')) });
    }
    for (const k of this.#shareKeys.values()) k.fill(0);
    this.#shareKeys.clear();
    if (this.#held.size < this.params.threshold) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `${this.id} received shares from ${this.#held.size} neighbours, fewer than the threshold ${this.params.threshold}`);
    const y = x.slice();
    const masks: Mask[] = [{ seed: this.#b, domain: 'self', sign: 1 }];
    for (const v of this.#held.keys()) {
      if (v === this.id) continue;
      masks.push({ seed: agree(this.#sKey, this.#adverts.get(v)!.sPk, this.params.session, 'pair-mask', this.id, v), domain: 'pair', sign: this.id < v ? 1 : -1 });
    }
    applyMasks(y, masks);
    for (let i = 1; i < masks.length; i++) masks[i]!.seed.fill(0);
    const yDigest = digest(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
    return { session: this.params.session, from: this.id, y, sig: signFields(this.#identity, maskedFields({ session: this.params.session, from: this.id, yDigest })) };
  }

  /** Round 3: sign the survivor set U3 if it is large enough and includes u. */
  consistency(survivors: readonly string[]): ConsistencyMsg {
    this.#advance('masked', 'consistency');
    this.#checkSurvivors(survivors);
    return { session: this.params.session, from: this.id, sig: signFields(this.#identity, consistencyFields(this.params.session, this.id, survivors)) };
  }

  #checkSurvivors(survivors: readonly string[]): void {
    if (new Set(survivors).size !== survivors.length || survivors.some((s) => !this.params.roster.includes(s))) throw new FlError('FL_UNMASK_REFUSED', 'the survivor set names a participant twice or one outside the roster');
    if (!survivors.includes(this.id)) throw new FlError('FL_UNMASK_REFUSED', `the survivor set leaves out ${this.id}, which sent its input`);
    if (survivors.length < this.params.threshold) throw new FlError('FL_TOO_FEW_PARTICIPANTS', `only ${survivors.length} participants survived, fewer than the threshold ${this.params.threshold}`);
  }

  /**
   * Round 4: with t valid consistency signatures on exactly this U3, reveal for each
   * neighbour v in U2 the share of b_v if v ∈ U3, else the share of s_v^SK. Only once.
   */
  unmask(req: UnmaskRequest): UnmaskMsg {
    this.#advance('consistency', 'unmask');
    this.#checkSurvivors(req.survivors);
    const signers = new Set<string>();
    // Bonawitz et al. ask for at least t valid signatures; checking stops at t, so with 100
    // survivors a participant verifies t signatures, not 100 (the round's cost was n² verifies).
    for (const c of req.signatures) {
      if (signers.size >= this.params.threshold) break;
      if (c.session !== this.params.session || !req.survivors.includes(c.from) || signers.has(c.from)) continue;
      if (verifyFields(this.#pin(c.from), consistencyFields(this.params.session, c.from, req.survivors), c.sig)) signers.add(c.from);
    }
    if (signers.size < this.params.threshold) throw new FlError('FL_UNMASK_REFUSED', `the survivor set carries ${signers.size} valid consistency signatures, fewer than the threshold ${this.params.threshold}`, 'the coordinator must show every participant the same survivor set');
    const survivors = new Set(req.survivors);
    const shares = [...this.#held.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([v, h]) => (survivors.has(v) ? { of: v, kind: 'b' as const, share: h.b } : { of: v, kind: 's' as const, share: h.s }));
    const m = { session: this.params.session, from: this.id, shares };
    const sig = signFields(this.#identity, unmaskFields(m));
    this.#stage = 'done';
    this.#held.clear();
    return { ...m, sig };
  }
}
