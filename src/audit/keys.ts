/**
 * Keys of the audit log, encrypted at rest.
 *
 * A key file holds a scrypt salt (RFC 7914; N=2^15, r=8, p=1) and secrets sealed with
 * AES-256-GCM (NIST SP 800-38D) under the scrypt-derived key-encryption key, each with a
 * random 96-bit IV and its purpose as additional authenticated data, so a sealed value
 * cannot be moved to another slot. All primitives come from node:crypto.
 *
 * - LogKeyring: the log's Ed25519 signing keys (C2SP signed-note key names = log origin).
 *   Rotation retires the current key (its private half is erased, its public half stays
 *   in the history so old checkpoints keep verifying) and creates a new one.
 * - PseudonymKeyring: one HMAC-SHA-256 key per epoch (RFC 2104) that turns principals
 *   and other subject identifiers into pseudonyms. Destroying an epoch's key erases the
 *   link between people and the entries of that epoch; the entries and the tree stay.
 *
 * Each key file has its own salt, so opening the log costs one scrypt per file (≈ 0.1 s each on
 * a quiet core, several times that on a loaded one). The `…Async` openers run it on libuv's
 * thread pool (`crypto.scrypt`), so a node opens its key files in parallel and the event loop
 * stays free; the synchronous openers stay for the offline tools.
 *
 * The passphrase comes from the `passphrase` option or GATEHOUSE_KEY_PASSPHRASE. It is
 * never written anywhere, and error messages never include it.
 */
import {
  createCipheriv, createDecipheriv, createHmac, createPrivateKey, generateKeyPairSync,
  randomBytes, scrypt, scryptSync, type KeyObject,
} from 'node:crypto';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KeyUnavailable, PseudonymKeyDestroyed } from './errors.ts';
import { SIG_ED25519, ed25519NoteSigner, encodeVkey, parseVkey, rawPublicKey, type NoteSigner, type NoteVerifier } from './note.ts';
import { writeFileAtomicSync } from './fsutil.ts';

/** The passphrase `--demo` setups use when none is configured. It protects nothing: anyone can read it here. */
export const DEMO_PASSPHRASE = 'gatehouse-demo-passphrase-NOT-SECRET';
export const PASSPHRASE_ENV = 'GATEHOUSE_KEY_PASSPHRASE';

const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export interface SealedSecret { readonly iv: string; readonly tag: string; readonly ct: string }
interface KdfParams { readonly kdf: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string }

export function resolvePassphrase(option: string | undefined, allowDemo: boolean): string {
  const p = option ?? process.env[PASSPHRASE_ENV];
  if (p !== undefined && p !== '') return p;
  if (allowDemo) return DEMO_PASSPHRASE;
  throw new KeyUnavailable(`no key passphrase: set ${PASSPHRASE_ENV} or pass the passphrase option`);
}

function deriveKek(passphrase: string, params: KdfParams): Buffer {
  return scryptSync(passphrase, Buffer.from(params.salt, 'base64'), 32, { N: params.N, r: params.r, p: params.p, maxmem: SCRYPT.maxmem });
}

function deriveKekAsync(passphrase: string, params: KdfParams): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(passphrase, Buffer.from(params.salt, 'base64'), 32, { N: params.N, r: params.r, p: params.p, maxmem: SCRYPT.maxmem }, (err, key) => (err ? reject(err) : resolve(key))));
}

type Derive = (passphrase: string, params: KdfParams) => Buffer | Promise<Buffer>;

/** scrypt cost of the key-encryption key for key files created from now on (default N=2^15, r=8, p=1). */
export interface KeyKdfCost { readonly N: number; readonly r: number; readonly p: number }

function newKdf(cost: KeyKdfCost = SCRYPT): KdfParams {
  return { kdf: 'scrypt', N: cost.N, r: cost.r, p: cost.p, salt: randomBytes(16).toString('base64') };
}

export function seal(kek: Buffer, purpose: string, plain: Buffer): SealedSecret {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(Buffer.from(purpose, 'utf8'));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), ct: ct.toString('base64') };
}

export function unseal(kek: Buffer, purpose: string, s: SealedSecret): Buffer {
  try {
    const iv = Buffer.from(s.iv, 'base64');
    const tag = Buffer.from(s.tag, 'base64');
    // GCM would accept a truncated tag (down to 4 bytes): insist on the full 16.
    if (iv.length !== 12 || tag.length !== 16) throw new Error('bad iv or tag length');
    const d = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: 16 });
    d.setAAD(Buffer.from(purpose, 'utf8'));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(Buffer.from(s.ct, 'base64')), d.final()]);
  } catch {
    // Deliberately vague: wrong passphrase and tampered file look the same.
    throw new KeyUnavailable(`cannot decrypt ${purpose.split(':')[0]}: wrong passphrase or damaged key file`);
  }
}

function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new KeyUnavailable(`key file ${path} is unreadable (${(e as NodeJS.ErrnoException).code ?? 'invalid JSON'})`);
  }
}

// ---- Log signing keys -------------------------------------------------------------------

export interface SigningKeyRecord {
  readonly keyId: string;
  readonly vkey: string;
  readonly createdAt: string;
  readonly retiredAt: string | null;
  /** Present only for the active key. */
  readonly sealed?: SealedSecret;
}
interface SigningKeyFile { readonly version: 1; readonly origin: string; readonly kdf: KdfParams; readonly keys: SigningKeyRecord[] }

export class LogKeyring {
  readonly origin: string;
  readonly path: string;
  #file: SigningKeyFile;
  #kek: Buffer;
  #signer: NoteSigner;

  private constructor(path: string, file: SigningKeyFile, kek: Buffer) {
    this.path = path;
    this.origin = file.origin;
    this.#file = file;
    this.#kek = kek;
    this.#signer = this.#loadSigner();
  }

  /** Opens (or creates, with a fresh key) the signing key file in `dir`. */
  static open(dir: string, origin: string, passphrase: string, cost?: KeyKdfCost): LogKeyring {
    return LogKeyring.#open(dir, origin, passphrase, deriveKek, cost) as LogKeyring;
  }

  /** `open` with the scrypt on the thread pool (a node opening its key files in parallel). */
  static async openAsync(dir: string, origin: string, passphrase: string, cost?: KeyKdfCost): Promise<LogKeyring> {
    return LogKeyring.#open(dir, origin, passphrase, deriveKekAsync, cost);
  }

  /** `cost` applies only when the file is created; an existing file says its own. */
  static #open(dir: string, origin: string, passphrase: string, derive: Derive, cost?: KeyKdfCost): LogKeyring | Promise<LogKeyring> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, 'log-signing-keys.json');
    if (existsSync(path)) {
      const file = readJson<SigningKeyFile>(path);
      if (file.origin !== origin) throw new KeyUnavailable(`signing keys in ${path} belong to log ${JSON.stringify(file.origin)}, not ${JSON.stringify(origin)}`);
      return then(derive(passphrase, file.kdf), (kek) => new LogKeyring(path, file, kek));
    }
    const kdf = newKdf(cost);
    return then(derive(passphrase, kdf), (kek) => {
      const file: SigningKeyFile = { version: 1, origin, kdf, keys: [newSigningKey(origin, kek)] };
      writeFileAtomicSync(path, JSON.stringify(file, null, 2) + '\n', 0o600);
      return new LogKeyring(path, file, kek);
    });
  }

  /**
   * The verifier keys of the log's signing keys (public halves only), read without the
   * passphrase when the key file exists, so a reader pays no scrypt; on first run the
   * file is created (one scrypt, on the thread pool).
   */
  static async verifierKeys(dir: string, origin: string, passphrase: string): Promise<string[]> {
    const path = join(dir, 'log-signing-keys.json');
    if (existsSync(path)) {
      const file = readJson<SigningKeyFile>(path);
      if (file.origin !== origin) throw new KeyUnavailable(`signing keys in ${path} belong to log ${JSON.stringify(file.origin)}, not ${JSON.stringify(origin)}`);
      return file.keys.map((k) => parseVkey(k.vkey).vkey);
    }
    const created = await LogKeyring.openAsync(dir, origin, passphrase);
    try { return created.verifiers().map((v) => v.vkey); } finally { created.close(); }
  }

  #loadSigner(): NoteSigner {
    const active = this.#file.keys.find((k) => k.retiredAt === null && k.sealed);
    if (!active?.sealed) throw new KeyUnavailable('no active signing key');
    const pkcs8 = unseal(this.#kek, `log-signing-key:${active.keyId}`, active.sealed);
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    pkcs8.fill(0);
    return ed25519NoteSigner(this.origin, key);
  }

  get signer(): NoteSigner { return this.#signer; }

  /** Every key the log ever signed with, oldest first. */
  history(): readonly SigningKeyRecord[] {
    return this.#file.keys.map(({ sealed: _s, ...rest }) => rest);
  }

  verifiers(): NoteVerifier[] {
    return this.#file.keys.map((k) => parseVkey(k.vkey));
  }

  /** Retires the active key (erasing its private half) and makes a new one active. */
  rotate(now = new Date()): SigningKeyRecord {
    const keys = this.#file.keys.map((k) => k.retiredAt === null ? { keyId: k.keyId, vkey: k.vkey, createdAt: k.createdAt, retiredAt: now.toISOString() } : k);
    const fresh = newSigningKey(this.origin, this.#kek, now);
    keys.push(fresh);
    const file = { ...this.#file, keys };
    writeFileAtomicSync(this.path, JSON.stringify(file, null, 2) + '\n', 0o600);
    this.#file = file;
    this.#signer = this.#loadSigner();
    const { sealed: _s, ...pub } = fresh;
    return pub;
  }

  close(): void { this.#kek.fill(0); }
}

function newSigningKey(origin: string, kek: Buffer, now = new Date()): SigningKeyRecord {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  const vkey = encodeVkey(origin, SIG_ED25519, raw);
  const keyId = vkey.split('+')[1]!;
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const sealed = seal(kek, `log-signing-key:${keyId}`, pkcs8);
  pkcs8.fill(0);
  return { keyId, vkey, createdAt: now.toISOString(), retiredAt: null, sealed };
}

/** A fresh Ed25519 key pair for a witness or a test, with its vkey. */
export function generateEd25519(): { privateKey: KeyObject; publicKey: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

/** Stores one Ed25519 private key sealed under a passphrase (witness keys). */
export function loadOrCreateSealedEd25519(path: string, passphrase: string, purpose: string): KeyObject {
  return sealedEd25519(path, passphrase, purpose, deriveKek) as KeyObject;
}

/** `loadOrCreateSealedEd25519` with the scrypt on the thread pool. */
export async function loadOrCreateSealedEd25519Async(path: string, passphrase: string, purpose: string): Promise<KeyObject> {
  return sealedEd25519(path, passphrase, purpose, deriveKekAsync);
}

function sealedEd25519(path: string, passphrase: string, purpose: string, derive: Derive): KeyObject | Promise<KeyObject> {
  if (existsSync(path)) {
    const f = readJson<{ kdf: KdfParams; sealed: SealedSecret }>(path);
    return then(derive(passphrase, f.kdf), (kek) => {
      const der = unseal(kek, purpose, f.sealed);
      kek.fill(0);
      const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      der.fill(0);
      return key;
    });
  }
  const kdf = newKdf();
  return then(derive(passphrase, kdf), (kek) => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    writeFileAtomicSync(path, JSON.stringify({ version: 1, kdf, sealed: seal(kek, purpose, der) }, null, 2) + '\n', 0o600);
    der.fill(0);
    kek.fill(0);
    return privateKey;
  });
}

/** Applies `f` now to a value, or later to a promise's (one body for the sync and async openers). */
function then<A, B>(v: A | Promise<A>, f: (a: A) => B): B | Promise<B> {
  return v instanceof Promise ? v.then(f) : f(v);
}

// ---- Pseudonym keys --------------------------------------------------------------------

export type PseudonymEpoch = 'year' | 'month' | 'day';

interface PseudonymKeyFile {
  readonly version: 1;
  readonly kdf: KdfParams;
  readonly epochs: Record<string, { readonly createdAt: string; readonly sealed?: SealedSecret; readonly destroyedAt?: string }>;
}

const PSEUDONYM_LABEL = 'gatehouse/audit/pseudonym/v1\n';

export function epochOf(time: string, granularity: PseudonymEpoch): string {
  const iso = /^\d{4}-\d{2}-\d{2}T/.test(time) ? time : new Date(time).toISOString();
  return granularity === 'year' ? iso.slice(0, 4) : granularity === 'month' ? iso.slice(0, 7) : iso.slice(0, 10);
}

export class PseudonymKeyring {
  readonly path: string;
  readonly granularity: PseudonymEpoch;
  #file: PseudonymKeyFile;
  #kek: Buffer;
  #keys = new Map<string, Buffer>();
  /** epoch -> id -> pseudonym (bounded; cleared per epoch when its key is destroyed). */
  #cache = new Map<string, Map<string, string>>();
  #cacheSize = 0;
  #lastEpoch = '';
  #lastEpochCache: Map<string, string> | null = null;

  private constructor(path: string, file: PseudonymKeyFile, kek: Buffer, granularity: PseudonymEpoch) {
    this.path = path;
    this.#file = file;
    this.#kek = kek;
    this.granularity = granularity;
  }

  static open(dir: string, passphrase: string, granularity: PseudonymEpoch = 'month', cost?: KeyKdfCost): PseudonymKeyring {
    return PseudonymKeyring.#open(dir, passphrase, granularity, deriveKek, cost) as PseudonymKeyring;
  }

  /** `open` with the scrypt on the thread pool. */
  static async openAsync(dir: string, passphrase: string, granularity: PseudonymEpoch = 'month', cost?: KeyKdfCost): Promise<PseudonymKeyring> {
    return PseudonymKeyring.#open(dir, passphrase, granularity, deriveKekAsync, cost);
  }

  /** `cost` applies only when the file is created; an existing file says its own. */
  static #open(dir: string, passphrase: string, granularity: PseudonymEpoch, derive: Derive, cost?: KeyKdfCost): PseudonymKeyring | Promise<PseudonymKeyring> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, 'pseudonym-keys.json');
    if (existsSync(path)) {
      const file = readJson<PseudonymKeyFile>(path);
      return then(derive(passphrase, file.kdf), (kek) => new PseudonymKeyring(path, file, kek, granularity));
    }
    const kdf = newKdf(cost);
    const file: PseudonymKeyFile = { version: 1, kdf, epochs: {} };
    writeFileAtomicSync(path, JSON.stringify(file, null, 2) + '\n', 0o600);
    return then(derive(passphrase, kdf), (kek) => new PseudonymKeyring(path, file, kek, granularity));
  }

  #key(epoch: string, create: boolean): Buffer | null {
    const cached = this.#keys.get(epoch);
    if (cached) return cached;
    const rec = this.#file.epochs[epoch];
    if (rec?.destroyedAt) throw new PseudonymKeyDestroyed(epoch);
    if (rec?.sealed) {
      const k = unseal(this.#kek, `pseudonym-key:${epoch}`, rec.sealed);
      this.#keys.set(epoch, k);
      return k;
    }
    if (!create) return null;
    const k = randomBytes(32);
    const file = { ...this.#file, epochs: { ...this.#file.epochs, [epoch]: { createdAt: new Date().toISOString(), sealed: seal(this.#kek, `pseudonym-key:${epoch}`, k) } } };
    writeFileAtomicSync(this.path, JSON.stringify(file, null, 2) + '\n', 0o600);
    this.#file = file;
    this.#keys.set(epoch, k);
    return k;
  }

  /** The pseudonym of `id` in `epoch` ("p1:<epoch>:<base64url 128-bit HMAC>"), creating the epoch key if needed. */
  pseudonym(id: string, epoch: string): string {
    let byId = epoch === this.#lastEpoch ? this.#lastEpochCache : this.#cache.get(epoch);
    const hit = byId?.get(id);
    if (hit !== undefined) return hit;
    const key = this.#key(epoch, true)!;
    const mac = createHmac('sha256', key).update(PSEUDONYM_LABEL).update(id, 'utf8').digest().subarray(0, 16).toString('base64url');
    const p = `p1:${epoch}:${mac}`;
    if (this.#cacheSize >= 100_000) { this.#cache.clear(); this.#cacheSize = 0; this.#lastEpochCache = null; this.#lastEpoch = ''; byId = undefined; }
    if (!byId) { byId = new Map(); this.#cache.set(epoch, byId); }
    byId.set(id, p);
    this.#cacheSize++;
    this.#lastEpoch = epoch;
    this.#lastEpochCache = byId;
    return p;
  }

  /** Every pseudonym `id` has under the epochs whose keys still exist (for search). */
  lookup(id: string): string[] {
    const out: string[] = [];
    for (const [epoch, rec] of Object.entries(this.#file.epochs)) {
      if (rec.destroyedAt) continue;
      out.push(this.pseudonym(id, epoch));
    }
    return out;
  }

  epochs(): { epoch: string; createdAt: string; destroyedAt: string | null }[] {
    return Object.entries(this.#file.epochs).map(([epoch, r]) => ({ epoch, createdAt: r.createdAt, destroyedAt: r.destroyedAt ?? null }));
  }

  /** Crypto-shreds an epoch's key: its pseudonyms can no longer be linked to anyone. */
  destroy(epoch: string, now = new Date()): void {
    const rec = this.#file.epochs[epoch];
    if (!rec || rec.destroyedAt) return;
    const file = { ...this.#file, epochs: { ...this.#file.epochs, [epoch]: { createdAt: rec.createdAt, destroyedAt: now.toISOString() } } };
    writeFileAtomicSync(this.path, JSON.stringify(file, null, 2) + '\n', 0o600);
    this.#file = file;
    this.#keys.get(epoch)?.fill(0);
    this.#keys.delete(epoch);
    const dropped = this.#cache.get(epoch);
    if (dropped) { this.#cacheSize -= dropped.size; this.#cache.delete(epoch); }
    if (this.#lastEpoch === epoch) { this.#lastEpoch = ''; this.#lastEpochCache = null; }
  }

  close(): void {
    for (const k of this.#keys.values()) k.fill(0);
    this.#keys.clear();
    this.#cache.clear();
    this.#cacheSize = 0;
    this.#lastEpoch = '';
    this.#lastEpochCache = null;
    this.#kek.fill(0);
  }
}
