/**
 * ECDH private set intersection between two nodes (Meadows 1986; Huberman, Franklin and
 * Hogg 1999; the DDH-based protocol of Google's private-join-and-compute and OpenMined PSI),
 * with the intersection-sum extension of Ion et al. 2020, "On Deploying Secure Computing:
 * Private Intersection-Sum-with-Cardinality" (EuroS&P), Figure 2.
 *
 *   client (set X, key b)                         server (set Y, key a, Paillier key in sum mode)
 *   hello:  pad{ b·H(x) }            ──────────▶  validate every point
 *                                    ◀──────────  reply: { a·b·H(x) } (shuffled unless mode is
 *                                                 intersection), shuffled pad{ a·H(y) [, Enc(t_y)] }
 *   cardinality / intersection: |{ b·a·H(y) } ∩ { a·b·H(x) }| or which x
 *   sum:    Σ Enc(t_y) over matches, re-randomised ──────▶  decrypt
 *                                    ◀──────────  result: the sum
 *
 * Double-blinded values are compared, never multiplied, so they travel truncated to 12 bytes
 * (a false match among 2^20 × 2^20 pairs has probability 2^-56). Keys are fresh per session
 * and destroyed when it ends. Each message carries the session id and a sequence number: a
 * repeated, reordered or late message is refused (PSI_REPLAY / PSI_OUT_OF_ORDER), and a
 * session id is never accepted twice. Semi-honest security, as in the papers above;
 * authentication of the peer is the node channel's (pinned node keys), not this module's.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { PublicKey, type KeyPair } from 'paillier-bigint';
import { PaillierEncryptor, paillierFactors, type PrecomputedRandomisers } from './paillier.ts';
import { BlindingKey } from './blind.ts';
import { PsiError } from './errors.ts';
import { assertPoints } from './point.ts';
import { dummyPoints, paddedSize, shuffleItems } from './padding.ts';
import type { PreparedSet } from './prepared-set.ts';
import { decodeMessage, encodeMessage, type PsiMessage, type PsiMode } from './wire.ts';

export const TAG_BYTES = 12;
const DEFAULT_CHUNK = 65_536;

export interface PsiHooks {
  /** Called with (phase, done, total) during long steps. */
  readonly onProgress?: (phase: string, done: number, total: number) => void;
}

function progress(hooks: PsiHooks, phase: string, total: number): (done: number) => void {
  return (done) => hooks.onProgress?.(phase, done, total);
}

function hex(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}

function truncateTags(points: Uint8Array): Uint8Array {
  const n = points.length / 32;
  const out = new Uint8Array(TAG_BYTES * n);
  for (let i = 0; i < n; i++) out.set(points.subarray(32 * i, 32 * i + TAG_BYTES), TAG_BYTES * i);
  return out;
}

function bigToBytes(v: bigint, width: number): Uint8Array {
  const out = new Uint8Array(width);
  let x = v;
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (x !== 0n) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A number does not fit its field');
  return out;
}

function bytesToBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const byte of b) v = (v << 8n) | BigInt(byte);
  return v;
}

function byteWidth(v: bigint): number {
  return Math.ceil(v.toString(16).length / 2);
}

// ───────────────────────────── client ─────────────────────────────

export interface PsiClientResult {
  readonly mode: PsiMode;
  /** Size of the intersection (all modes). */
  readonly cardinality: number;
  /** Intersection mode: indices into the client's prepared set. */
  readonly members: readonly number[] | null;
  /** The server's padded set size. */
  readonly peerPaddedSize: number;
}

export class PsiClient {
  readonly sessionId: Uint8Array;
  readonly mode: PsiMode;
  readonly #set: PreparedSet;
  readonly #key = BlindingKey.fresh();
  readonly #hooks: PsiHooks;
  #state: 'new' | 'sent' | 'summing' | 'done' = 'new';
  #helloCount = 0;
  #paillier: PublicKey | null = null;
  #cardinality = 0;

  constructor(set: PreparedSet, mode: PsiMode, hooks: PsiHooks = {}) {
    this.sessionId = randomBytes(16);
    this.mode = mode;
    this.#set = set;
    this.#hooks = hooks;
  }

  /** The hello messages (one per chunk); the server answers after the last. */
  hello(chunkSize = DEFAULT_CHUNK): Uint8Array[] {
    if (this.#state !== 'new') throw new PsiError('PSI_OUT_OF_ORDER', 'This PSI session has already sent its hello');
    const padded = paddedSize(this.#set.size);
    const all = new Uint8Array(32 * padded);
    all.set(this.#key.multiplyAll(this.#set.points, progress(this.#hooks, 'blind own set', this.#set.size)));
    all.set(dummyPoints(padded - this.#set.size), 32 * this.#set.size);
    // Intersection mode maps answers back by position; in the other modes the order of the
    // client's own points carries nothing, but dummies are mixed in either way.
    const messages: Uint8Array[] = [];
    const chunks = Math.max(1, Math.ceil(padded / chunkSize));
    for (let c = 0; c < chunks; c++) {
      messages.push(encodeMessage({
        type: 'hello', mode: this.mode, sessionId: this.sessionId, seq: c + 1, last: c === chunks - 1,
        sections: [{ itemSize: 32, items: all.subarray(32 * c * chunkSize, 32 * Math.min(padded, (c + 1) * chunkSize)) }],
      }));
    }
    this.#helloCount = chunks;
    this.#state = 'sent';
    return messages;
  }

  #expect(bytes: Uint8Array, type: PsiMessage['type']): PsiMessage {
    const m = decodeMessage(bytes);
    if (hex(m.sessionId) !== hex(this.sessionId)) throw new PsiError('PSI_SESSION_UNKNOWN', 'The message belongs to another PSI session');
    if (m.mode !== this.mode) throw new PsiError('PSI_MESSAGE_MALFORMED', 'The message is for another PSI mode');
    if (m.type !== type) throw new PsiError('PSI_OUT_OF_ORDER', `Expected a PSI ${type} message, got ${m.type}`);
    return m;
  }

  /**
   * Read the server's reply. Cardinality and intersection modes end here; sum mode returns
   * the message to send back (the re-randomised encrypted sum) in `sumMessage`.
   */
  receiveReply(bytes: Uint8Array): PsiClientResult & { readonly sumMessage: Uint8Array | null } {
    if (this.#state === 'done' || this.#state === 'summing') throw new PsiError('PSI_REPLAY', 'This PSI session already has its reply');
    if (this.#state !== 'sent') throw new PsiError('PSI_OUT_OF_ORDER', 'Send the hello before reading a reply');
    const m = this.#expect(bytes, 'reply');
    if (m.seq !== this.#helloCount + 1 || !m.last) throw new PsiError('PSI_OUT_OF_ORDER', 'The PSI reply has an unexpected sequence number');
    const want = this.mode === 'sum' ? 4 : 2;
    if (m.sections.length !== want) throw new PsiError('PSI_MESSAGE_MALFORMED', 'The PSI reply has the wrong number of sections');
    const [doubled, serverBlinded] = m.sections as [PsiMessage['sections'][0], PsiMessage['sections'][0]];
    if (doubled.itemSize !== TAG_BYTES || serverBlinded.itemSize !== 32) throw new PsiError('PSI_MESSAGE_MALFORMED', 'The PSI reply has wrong item sizes');
    const padded = paddedSize(this.#set.size);
    if (doubled.items.length !== TAG_BYTES * padded) throw new PsiError('PSI_MESSAGE_MALFORMED', 'The PSI reply does not answer every point of the hello');
    assertPoints(serverBlinded.items, 'server set');
    const m2 = serverBlinded.items.length / 32;
    const reblinded = truncateTags(this.#key.multiplyAll(serverBlinded.items, progress(this.#hooks, 'blind peer set', m2)));
    this.#state = this.mode === 'sum' ? 'summing' : 'done';
    if (this.mode !== 'sum') this.#key.destroy();

    const serverTags = new Map<string, number>();
    for (let j = 0; j < m2; j++) serverTags.set(Buffer.from(reblinded.subarray(TAG_BYTES * j, TAG_BYTES * (j + 1))).toString('latin1'), j);
    const members: number[] = [];
    const matchedServer: number[] = [];
    // Only the client's real points (the first `size`) can match in intersection mode; in
    // the shuffled modes the dummies are random and match with negligible probability.
    const scan = this.mode === 'intersection' ? this.#set.size : padded;
    for (let i = 0; i < scan; i++) {
      const j = serverTags.get(Buffer.from(doubled.items.subarray(TAG_BYTES * i, TAG_BYTES * (i + 1))).toString('latin1'));
      if (j !== undefined) {
        members.push(i);
        matchedServer.push(j);
      }
    }
    this.#cardinality = members.length;
    let sumMessage: Uint8Array | null = null;
    if (this.mode === 'sum') {
      const [, , nSection, ciphertexts] = m.sections as PsiMessage['sections'];
      const n = bytesToBig(nSection!.items);
      const width = 2 * byteWidth(n);
      if (n < 2n ** 1023n || ciphertexts!.itemSize !== width || ciphertexts!.items.length !== width * m2) {
        throw new PsiError('PSI_MESSAGE_MALFORMED', 'The PSI reply carries a Paillier key or ciphertexts of the wrong size');
      }
      const pub = new PublicKey(n, n + 1n);
      this.#paillier = pub;
      const n2 = n * n;
      let sum = new PaillierEncryptor(pub).encrypt(0n); // fresh randomness: the server cannot tell which ciphertexts were added
      for (const j of matchedServer) {
        const c = bytesToBig(ciphertexts!.items.subarray(width * j, width * (j + 1)));
        if (c <= 0n || c >= n2) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A Paillier ciphertext is out of range');
        sum = pub.addition(sum, c);
      }
      sumMessage = encodeMessage({
        type: 'sum', mode: 'sum', sessionId: this.sessionId, seq: this.#helloCount + 2, last: true,
        sections: [{ itemSize: width, items: bigToBytes(sum, width) }],
      });
      this.#key.destroy();
    }
    return { mode: this.mode, cardinality: members.length, members: this.mode === 'intersection' ? members : null, peerPaddedSize: m2, sumMessage };
  }

  /** Sum mode: the server's final message carries the decrypted intersection-sum. */
  receiveResult(bytes: Uint8Array): { readonly cardinality: number; readonly sum: bigint } {
    if (this.#state === 'done') throw new PsiError('PSI_REPLAY', 'This PSI session already has its result');
    if (this.#state !== 'summing' || this.#paillier === null) throw new PsiError('PSI_OUT_OF_ORDER', 'A PSI result arrives only after the sum was sent');
    const m = this.#expect(bytes, 'result');
    if (m.seq !== this.#helloCount + 3 || m.sections.length !== 1) throw new PsiError('PSI_OUT_OF_ORDER', 'The PSI result has an unexpected sequence number');
    this.#state = 'done';
    return { cardinality: this.#cardinality, sum: bytesToBig(m.sections[0]!.items) };
  }
}

// ───────────────────────────── server ─────────────────────────────

export interface PsiServerOptions extends PsiHooks {
  /** Modes this server answers. */
  readonly modes: readonly PsiMode[];
  /** Sum mode: the server's Paillier key pair (it alone decrypts the sum). */
  readonly paillier?: KeyPair;
  /**
   * Sum mode: randomisers r^n mod n² computed ahead (PsiWorkers.randomisers), spent one per
   * encryption; when they run out the rest are computed on this thread.
   */
  readonly randomisers?: PrecomputedRandomisers;
  /** Called once per new session with its padded size, before any work (rate limit, audit). */
  readonly admit?: (sessionId: string, mode: PsiMode, paddedElements: number) => void;
  /** Largest padded set a client may send in one session. */
  readonly maxElements?: number;
  /** How long a finished session id stays refused. */
  readonly rememberMs?: number;
  readonly now?: () => number;
}

interface ServerSession {
  readonly mode: PsiMode;
  state: 'receiving' | 'awaiting-sum' | 'done';
  nextSeq: number;
  readonly chunks: Uint8Array[];
  key: BlindingKey | null;
  at: number;
}

export interface PsiServerOutcome {
  readonly sessionId: string;
  readonly mode: PsiMode;
  /** Sum mode: the decrypted intersection-sum once the session ends. */
  readonly sum: bigint | null;
}

export class PsiServer {
  readonly #set: PreparedSet;
  readonly #options: PsiServerOptions;
  readonly #sessions = new Map<string, ServerSession>();
  readonly #now: () => number;
  /** The outcome of the last finished sum session (the server learns the sum). */
  lastOutcome: PsiServerOutcome | null = null;

  constructor(set: PreparedSet, options: PsiServerOptions) {
    if (options.modes.includes('sum') && (options.paillier === undefined || set.values === null || options.paillier.publicKey.g !== options.paillier.publicKey.n + 1n)) {
      throw new PsiError('PSI_MESSAGE_MALFORMED', 'Intersection-sum needs a Paillier key with g = n + 1 (generatePaillierKeys) and values for every element');
    }
    this.#set = set;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  #forget(): void {
    const keep = this.#options.rememberMs ?? 86_400_000;
    const t = this.#now();
    for (const [id, s] of this.#sessions) if (s.state === 'done' && t - s.at > keep) this.#sessions.delete(id);
  }

  /** Handle one client message; returns the reply to send, or null while chunks arrive. */
  receive(bytes: Uint8Array): Uint8Array | null {
    const m = decodeMessage(bytes);
    const id = hex(m.sessionId);
    let s = this.#sessions.get(id);
    if (s === undefined) {
      if (m.type !== 'hello' || m.seq !== 1) throw new PsiError('PSI_SESSION_UNKNOWN', 'No such PSI session; a session starts with hello 1');
      if (!this.#options.modes.includes(m.mode)) throw new PsiError('PSI_MESSAGE_MALFORMED', `This node does not answer PSI in ${m.mode} mode`);
      this.#forget();
      s = { mode: m.mode, state: 'receiving', nextSeq: 1, chunks: [], key: null, at: this.#now() };
      this.#sessions.set(id, s);
    }
    if (s.state === 'done') throw new PsiError('PSI_REPLAY', 'This PSI session has ended; its messages are not accepted again');
    if (m.mode !== s.mode) throw new PsiError('PSI_MESSAGE_MALFORMED', 'The message is for another PSI mode');
    if (m.seq < s.nextSeq) throw new PsiError('PSI_REPLAY', 'This PSI message was already received');
    if (m.seq > s.nextSeq) throw new PsiError('PSI_OUT_OF_ORDER', 'A PSI message arrived before the one it follows');
    try {
      if (s.state === 'receiving') return this.#hello(id, s, m);
      return this.#sum(s, m, id);
    } catch (err) {
      this.#end(s);
      throw err;
    }
  }

  #end(s: ServerSession): void {
    s.state = 'done';
    s.key?.destroy();
    s.key = null;
    s.chunks.length = 0;
    s.at = this.#now();
  }

  #hello(id: string, s: ServerSession, m: PsiMessage): Uint8Array | null {
    if (m.type !== 'hello' || m.sections.length !== 1 || m.sections[0]!.itemSize !== 32) {
      throw new PsiError('PSI_OUT_OF_ORDER', 'Expected a PSI hello chunk');
    }
    const received = s.chunks.reduce((a, c) => a + c.length / 32, 0) + m.sections[0]!.items.length / 32;
    const max = this.#options.maxElements ?? 4_194_304;
    if (received > max) throw new PsiError('PSI_SET_TOO_LARGE', `A PSI session may carry at most ${max} elements`);
    s.chunks.push(Uint8Array.from(m.sections[0]!.items));
    s.nextSeq++;
    if (!m.last) return null;

    const clientPoints = Buffer.concat(s.chunks);
    s.chunks.length = 0;
    const n = clientPoints.length / 32;
    if (n !== paddedSize(n) && n !== 0) throw new PsiError('PSI_MESSAGE_MALFORMED', 'The client set is not padded to a bucket size');
    this.#options.admit?.(id, s.mode, n);
    assertPoints(clientPoints, 'client set');
    const key = BlindingKey.fresh();
    s.key = key;
    const doubled = truncateTags(key.multiplyAll(clientPoints, progress(this.#options, 'blind peer set', n)));
    const sortedDoubled = s.mode === 'intersection' ? doubled : shuffleItems(doubled, TAG_BYTES, randomInt);

    const own = this.#set;
    const padded = paddedSize(own.size);
    const mine = new Uint8Array(32 * padded);
    mine.set(key.multiplyAll(own.points, progress(this.#options, 'blind own set', own.size)));
    mine.set(dummyPoints(padded - own.size), 32 * own.size);
    const sections = [{ itemSize: TAG_BYTES, items: sortedDoubled }];
    if (s.mode !== 'sum') {
      sections.push({ itemSize: 32, items: shuffleItems(mine, 32, randomInt) });
      this.#end(s);
    } else {
      const keys = this.#options.paillier!;
      const { publicKey } = keys;
      // The server holds the private key, so it encrypts by CRT (paillier.ts).
      const encryptor = new PaillierEncryptor(publicKey, { factors: paillierFactors(keys), precomputed: this.#options.randomisers ?? null });
      const width = 2 * byteWidth(publicKey.n);
      const cts = new Uint8Array(width * padded);
      const values = own.values!;
      const tick = progress(this.#options, 'encrypt values', padded);
      for (let j = 0; j < padded; j++) {
        cts.set(bigToBytes(encryptor.encrypt(j < own.size ? values[j]! : 0n), width), width * j);
        if ((j + 1) % 256 === 0) tick(j + 1);
      }
      tick(padded);
      // Shuffle points and ciphertexts together: one permutation over (point ‖ ciphertext).
      const pairs = new Uint8Array((32 + width) * padded);
      for (let j = 0; j < padded; j++) {
        pairs.set(mine.subarray(32 * j, 32 * (j + 1)), (32 + width) * j);
        pairs.set(cts.subarray(width * j, width * (j + 1)), (32 + width) * j + 32);
      }
      const shuffled = shuffleItems(pairs, 32 + width, randomInt);
      const pts = new Uint8Array(32 * padded);
      const cs = new Uint8Array(width * padded);
      for (let j = 0; j < padded; j++) {
        pts.set(shuffled.subarray((32 + width) * j, (32 + width) * j + 32), 32 * j);
        cs.set(shuffled.subarray((32 + width) * j + 32, (32 + width) * (j + 1)), width * j);
      }
      const nBytes = bigToBytes(publicKey.n, byteWidth(publicKey.n));
      sections.push({ itemSize: 32, items: pts }, { itemSize: nBytes.length, items: nBytes }, { itemSize: width, items: cs });
      s.state = 'awaiting-sum';
      s.key.destroy();
      s.key = null;
    }
    return encodeMessage({ type: 'reply', mode: s.mode, sessionId: m.sessionId, seq: s.nextSeq++, last: true, sections });
  }

  #sum(s: ServerSession, m: PsiMessage, id: string): Uint8Array {
    if (m.type !== 'sum' || m.sections.length !== 1) throw new PsiError('PSI_OUT_OF_ORDER', 'Expected the encrypted PSI sum');
    const { publicKey, privateKey } = this.#options.paillier!;
    const c = bytesToBig(m.sections[0]!.items);
    if (c <= 0n || c >= publicKey._n2) throw new PsiError('PSI_MESSAGE_MALFORMED', 'The encrypted sum is out of range');
    const sum = privateKey.decrypt(c);
    s.nextSeq++;
    this.#end(s);
    this.lastOutcome = { sessionId: id, mode: 'sum', sum };
    return encodeMessage({
      type: 'result', mode: 'sum', sessionId: m.sessionId, seq: s.nextSeq, last: true,
      sections: [{ itemSize: Math.max(1, byteWidth(sum)), items: bigToBytes(sum, Math.max(1, byteWidth(sum))) }],
    });
  }
}
