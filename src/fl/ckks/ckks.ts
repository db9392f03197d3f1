/**
 * Homomorphic aggregation, the alternative to masking: participants encrypt their update
 * under CKKS (Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of Approximate
 * Numbers", ASIACRYPT 2017; Microsoft SEAL 4.1 through node-seal's WebAssembly), the
 * coordinator adds ciphertexts without decrypting, and one designated key authority — a node
 * that is not the coordinator — decrypts the sum.
 *
 * The key authority decrypts only a sum it can verify: it receives each participant's
 * ciphertexts with the participant's Ed25519 signature over their digest (pinned node keys),
 * recomputes the sum itself, and refuses unless at least `minContributors` distinct signed
 * contributions of this session are in it. So a coordinator cannot have one participant's
 * update decrypted by passing it off as a sum. What stays trusted: that the key authority
 * and the coordinator do not collude (with the secret key, the coordinator's ciphertexts
 * decrypt). node-seal has no threshold CKKS; docs/federated.md compares this with SecAgg.
 *
 * Parameters: N = 8192 (4096 slots), coefficient modulus 60+40+60 bits (≤ 218 for 128-bit
 * security at N = 8192, HE standard), scale 2^40: additions only, no rescaling, ~1e-7
 * absolute error per coordinate after summing hundreds of inputs.
 */
import SEAL from 'node-seal';
import type { KeyObject } from 'node:crypto';
import { FlError } from '../errors.ts';
import { digest, signFields, verifyFields } from '../secagg/crypto.ts';

type Seal = Awaited<ReturnType<typeof SEAL>>;
type Context = InstanceType<Seal['SEALContext']>;

export const POLY_DEGREE = 8192;
export const SLOTS = POLY_DEGREE / 2;
const SCALE = 2 ** 40;

let runtime: Promise<{ seal: Seal; ctx: Context }> | null = null;

/** One SEAL runtime and context per process (loading the WebAssembly takes ~100 ms). */
export function ckksContext(): Promise<{ seal: Seal; ctx: Context }> {
  runtime ??= (async () => {
    const seal = await SEAL();
    const parms = new seal.EncryptionParameters(seal.SchemeType.ckks);
    parms.setPolyModulusDegree(POLY_DEGREE);
    parms.setCoeffModulus(seal.CoeffModulus.Create(POLY_DEGREE, Int32Array.from([60, 40, 60])));
    return { seal, ctx: new seal.SEALContext(parms, true, seal.SecLevelType.tc128) };
  })();
  return runtime;
}

/** A participant's encrypted update: one ciphertext per 4096 coordinates, zstd-compressed. */
export interface CkksContribution {
  readonly session: string;
  readonly from: string;
  readonly length: number;
  readonly ciphertexts: readonly Uint8Array[];
  readonly sig: Uint8Array;
}

const contributionFields = (c: Omit<CkksContribution, 'sig'>) => [c.session, 'ckks', c.from, String(c.length), ...c.ciphertexts.map((x) => digest(x))];

export async function encryptUpdate(publicKey: Uint8Array, session: string, from: string, identity: KeyObject, v: Float64Array): Promise<CkksContribution> {
  const { seal, ctx } = await ckksContext();
  const pk = new seal.PublicKey();
  pk.loadFromArray(ctx, publicKey);
  const enc = new seal.Encryptor(ctx, pk);
  const coder = new seal.CKKSEncoder(ctx);
  const pt = new seal.Plaintext();
  const ct = new seal.Ciphertext();
  const ciphertexts: Uint8Array[] = [];
  try {
    for (let off = 0; off < v.length; off += SLOTS) {
      const chunk = new Float64Array(SLOTS);
      chunk.set(v.subarray(off, Math.min(v.length, off + SLOTS)));
      coder.encode(chunk, SCALE, pt);
      enc.encrypt(pt, ct);
      ciphertexts.push(new Uint8Array(ct.saveToArray(seal.ComprModeType.zstd)));
    }
  } finally {
    for (const o of [pk, enc, coder, pt, ct]) o.delete();
  }
  const body = { session, from, length: v.length, ciphertexts };
  return { ...body, sig: signFields(identity, contributionFields(body)) };
}

/** The coordinator's part: Σ ciphertexts, chunk by chunk, with no key at all. */
export async function addEncrypted(contributions: readonly CkksContribution[]): Promise<Uint8Array[]> {
  const { seal, ctx } = await ckksContext();
  const ev = new seal.Evaluator(ctx);
  const chunks = contributions[0]!.ciphertexts.length;
  const out: Uint8Array[] = [];
  const acc = new seal.Ciphertext();
  const next = new seal.Ciphertext();
  try {
    for (let k = 0; k < chunks; k++) {
      acc.loadFromArray(ctx, contributions[0]!.ciphertexts[k]!);
      for (let i = 1; i < contributions.length; i++) {
        next.loadFromArray(ctx, contributions[i]!.ciphertexts[k]!);
        ev.addInplace(acc, next);
      }
      out.push(new Uint8Array(acc.saveToArray(seal.ComprModeType.zstd)));
    }
  } finally {
    for (const o of [ev, acc, next]) o.delete();
  }
  return out;
}

/** The designated key authority: holds the CKKS secret key; decrypts verified sums only. */
export class CkksKeyAuthority {
  readonly id: string;
  readonly publicKey: Uint8Array;
  readonly #secretKey: Uint8Array;
  readonly #pins: ReadonlyMap<string, KeyObject>;
  readonly #decrypted = new Set<string>();

  private constructor(id: string, publicKey: Uint8Array, secretKey: Uint8Array, pins: ReadonlyMap<string, KeyObject>) {
    this.id = id;
    this.publicKey = publicKey;
    this.#secretKey = secretKey;
    this.#pins = pins;
  }

  static async create(id: string, coordinatorId: string, pins: ReadonlyMap<string, KeyObject>): Promise<CkksKeyAuthority> {
    if (id === coordinatorId) throw new FlError('FL_PARAMETERS_INVALID', 'the CKKS key authority must not be the coordinator', 'name another node as key authority');
    const { seal, ctx } = await ckksContext();
    const kg = new seal.KeyGenerator(ctx);
    const pk = kg.createPublicKey();
    const sk = kg.secretKey();
    try {
      return new CkksKeyAuthority(id, new Uint8Array(pk.saveToArray(seal.ComprModeType.zstd)), new Uint8Array(sk.saveToArray(seal.ComprModeType.none)), pins);
    } finally {
      for (const o of [kg, pk, sk]) o.delete();
    }
  }

  /**
   * Decrypts Σ contributions after checking every signature, that the contributors are
   * distinct and at least `minContributors`, and that this session was not decrypted before
   * (no differencing two sums of one session).
   */
  async decryptSum(session: string, contributions: readonly CkksContribution[], minContributors: number): Promise<Float64Array> {
    if (this.#decrypted.has(session)) throw new FlError('FL_DECRYPTION_REFUSED', 'this session was already decrypted once');
    const from = new Set<string>();
    for (const c of contributions) {
      const pin = this.#pins.get(c.from);
      if (c.session !== session || !pin || !verifyFields(pin, contributionFields(c), c.sig)) throw new FlError('FL_MESSAGE_FORGED', `the contribution for ${c.from} is not signed by its pinned node key for this session`);
      from.add(c.from);
    }
    if (from.size !== contributions.length || from.size < Math.max(2, minContributors)) throw new FlError('FL_DECRYPTION_REFUSED', `the key authority decrypts only sums of at least ${Math.max(2, minContributors)} distinct participants (got ${from.size})`);
    const length = contributions[0]!.length;
    if (contributions.some((c) => c.length !== length || c.ciphertexts.length !== Math.ceil(length / SLOTS))) throw new FlError('FL_PARAMETERS_INVALID', 'contributions differ in length');
    const sum = await addEncrypted(contributions);
    this.#decrypted.add(session);
    const { seal, ctx } = await ckksContext();
    const sk = new seal.SecretKey();
    sk.loadFromArray(ctx, this.#secretKey);
    const dec = new seal.Decryptor(ctx, sk);
    const coder = new seal.CKKSEncoder(ctx);
    const ct = new seal.Ciphertext();
    const pt = new seal.Plaintext();
    const out = new Float64Array(length);
    try {
      sum.forEach((bytes, k) => {
        ct.loadFromArray(ctx, bytes);
        dec.decrypt(ct, pt);
        const vals = coder.decodeFloat64(pt) as Float64Array;
        out.set(vals.subarray(0, Math.min(SLOTS, length - k * SLOTS)), k * SLOTS);
      });
    } finally {
      for (const o of [sk, dec, coder, ct, pt]) o.delete();
    }
    return out;
  }
}
