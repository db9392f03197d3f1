/**
 * The top of Gatehouse's key hierarchy: key-encryption keys (KEKs) that wrap data keys.
 *
 *     passphrase ──argon2id──▶ root key ──HKDF──▶ { seal key, file MAC key, check value }
 *                                                     │
 *                                KEK v1, v2, … (random AES-256, sealed with AES-256-GCM)
 *                                                     │
 *                          data keys (random AES-256, wrapped by the active KEK version)
 *
 * `KeyEncryptionService` is the interface an external key service (a cloud KMS, an HSM,
 * Vault transit) implements; `LocalKeyring` is the embedded default: one
 * passphrase-protected JSON file.
 *
 * Local keyring file (mode 0600, written atomically: temp file, fsync, rename, fsync dir):
 *   - kdf: argon2id (RFC 9106, second recommended option: m = 64 MiB, t = 3, p = 4) with a
 *     random 16-byte salt — or scrypt (N = 2^17, r = 8, p = 1) when this Node has no argon2;
 *   - check: 16 bytes HKDF(root, "check"), so a wrong passphrase is reported as such;
 *   - keks: per version its creation/retirement time and, while not retired, the KEK sealed
 *     with AES-256-GCM under the seal key, with "gatehouse/keyring/kek\n<keyring id>\n<version>"
 *     as additional authenticated data (a sealed KEK cannot be moved to another version);
 *   - mac: HMAC-SHA-256 under the file MAC key over everything else, so editing the file
 *     (deleting a version, changing which one is active) is detected as damage.
 *
 * Wrapping: AES-256-GCM under the KEK, random 96-bit IV, AAD
 * "gatehouse/keys/wrap/v1\n<keyring id>\n<version>\n<context>" — the context binds a wrapped
 * key to its subject, so a wrapped key copied to another subject fails to unwrap.
 * All primitives come from node:crypto.
 */
import {
  argon2, createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, scrypt, timingSafeEqual,
} from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { link, open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../audit/fsutil.ts';
import { DEMO_PASSPHRASE, PASSPHRASE_ENV } from '../audit/keys.ts';
import {
  KekVersionRetired, KekVersionUnknown, KeyInputInvalid, KeyringCorrupt, KeyringExists, KeyringMismatch,
  KeyringNotFound, KeyringPassphraseMissing, KeyringPassphraseWrong, WrappedKeyInvalid,
} from './errors.ts';

/** A data key wrapped (encrypted) by a KEK. */
export interface WrappedKey {
  /** Which key service / keyring wrapped it. */
  readonly kekId: string;
  /** The KEK version that wrapped it. */
  readonly kekVersion: string;
  /** base64url fields. */
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/**
 * The KMS interface. `context` is additional authenticated data binding the wrapped key
 * to its subject: unwrap must fail unless it is the context given to wrap.
 */
export interface KeyEncryptionService {
  readonly id: string;
  wrap(dek: Buffer, context: string): Promise<WrappedKey>;
  unwrap(w: WrappedKey, context: string): Promise<Buffer>;
  /** The version new wraps use. */
  activeVersion(): string;
}

/** Optional extras a service may offer (LocalKeyring does). */
export interface RotatableKeyService extends KeyEncryptionService {
  rotate(): Promise<string>;
  /** Erases a non-active version; wrapped keys still under it become unrecoverable. */
  retire(version: string): Promise<void>;
  versions(): readonly KekVersionInfo[];
}

export interface KekVersionInfo {
  readonly version: string;
  readonly createdAt: string;
  readonly retiredAt: string | null;
  readonly active: boolean;
}

// ---- wrapped-key encoding --------------------------------------------------------------

const WK_PREFIX = 'gh-wk1';

/** One line, stable: `gh-wk1.<kekId>.<version>.<iv>.<ciphertext>.<tag>`. */
export function encodeWrappedKey(w: WrappedKey): string {
  for (const part of [w.kekId, w.kekVersion]) {
    if (!/^[A-Za-z0-9_:/-]{1,200}$/.test(part)) throw new KeyInputInvalid('a KEK id or version may only hold letters, digits and _ : / -');
  }
  return [WK_PREFIX, w.kekId, w.kekVersion, w.iv, w.ciphertext, w.tag].join('.');
}

export function decodeWrappedKey(s: string): WrappedKey {
  const parts = typeof s === 'string' ? s.split('.') : [];
  if (parts.length !== 6 || parts[0] !== WK_PREFIX) throw new WrappedKeyInvalid('malformed wrapped key');
  const [, kekId, kekVersion, iv, ciphertext, tag] = parts as [string, string, string, string, string, string];
  return { kekId, kekVersion, iv, ciphertext, tag };
}

// ---- passphrase ------------------------------------------------------------------------

/** The passphrase from the option, else GATEHOUSE_KEY_PASSPHRASE, else the demo one when allowed. */
export function resolveKeyringPassphrase(option: string | undefined, allowDemo = false): string {
  const p = option ?? process.env[PASSPHRASE_ENV];
  if (p !== undefined && p !== '') return p;
  if (allowDemo) return DEMO_PASSPHRASE;
  throw new KeyringPassphraseMissing(PASSPHRASE_ENV);
}

// ---- KDF -------------------------------------------------------------------------------

export type KdfParams =
  | { readonly alg: 'argon2id'; readonly memoryKiB: number; readonly passes: number; readonly parallelism: number; readonly salt: string }
  | { readonly alg: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string };

export const HAS_ARGON2 = typeof (nodeCrypto as { argon2?: unknown }).argon2 === 'function';

/** RFC 9106 §4, second recommended option. */
export const DEFAULT_ARGON2 = { memoryKiB: 64 * 1024, passes: 3, parallelism: 4 } as const;
export const DEFAULT_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;

function newKdf(): KdfParams {
  const salt = randomBytes(16).toString('base64url');
  return HAS_ARGON2 ? { alg: 'argon2id', ...DEFAULT_ARGON2, salt } : { alg: 'scrypt', ...DEFAULT_SCRYPT, salt };
}

/** Bounds a keyring file's KDF parameters must lie in (a doctored file cannot ask for 1 TB or for no work). */
function kdfProblem(k: KdfParams): string | null {
  if (typeof k?.salt !== 'string' || Buffer.from(k.salt, 'base64url').length < 16) return 'KDF salt missing or short';
  if (k.alg === 'argon2id') {
    if (!Number.isSafeInteger(k.memoryKiB) || k.memoryKiB < 19 * 1024 || k.memoryKiB > 4 * 1024 * 1024) return 'argon2id memory out of range';
    if (!Number.isSafeInteger(k.passes) || k.passes < 1 || k.passes > 64) return 'argon2id passes out of range';
    if (!Number.isSafeInteger(k.parallelism) || k.parallelism < 1 || k.parallelism > 64) return 'argon2id parallelism out of range';
    return null;
  }
  if (k.alg === 'scrypt') {
    if (!Number.isSafeInteger(k.N) || k.N < 2 ** 15 || k.N > 2 ** 22 || (k.N & (k.N - 1)) !== 0) return 'scrypt N out of range';
    if (!Number.isSafeInteger(k.r) || k.r < 1 || k.r > 32 || !Number.isSafeInteger(k.p) || k.p < 1 || k.p > 16) return 'scrypt r/p out of range';
    return null;
  }
  return 'unknown KDF';
}

function deriveRoot(passphrase: string, k: KdfParams): Promise<Buffer> {
  const salt = Buffer.from(k.salt, 'base64url');
  return new Promise((resolve, reject) => {
    if (k.alg === 'argon2id') {
      if (!HAS_ARGON2) { reject(new KeyInputInvalid('this keyring uses argon2id, which this Node.js lacks: run Gatehouse on Node 24.7 or later')); return; }
      argon2('argon2id', { message: Buffer.from(passphrase, 'utf8'), nonce: salt, parallelism: k.parallelism, tagLength: 32, memory: k.memoryKiB, passes: k.passes },
        (err, key) => (err ? reject(err) : resolve(Buffer.from(key))));
    } else {
      scrypt(passphrase, salt, 32, { N: k.N, r: k.r, p: k.p, maxmem: 128 * k.N * k.r * k.p + 32 * 1024 * 1024 },
        (err, key) => (err ? reject(err) : resolve(key)));
    }
  });
}

interface RootKeys { readonly seal: Buffer; readonly mac: Buffer; readonly check: Buffer }

function splitRoot(root: Buffer, keyringId: string): RootKeys {
  const info = (label: string) => Buffer.from(`gatehouse/keyring/v1/${label}\n${keyringId}`, 'utf8');
  const d = (label: string, len: number) => Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), info(label), len));
  return { seal: d('seal', 32), mac: d('mac', 32), check: d('check', 16) };
}

// ---- AES-256-GCM helpers ---------------------------------------------------------------

function gcmSeal(key: Buffer, aad: Buffer, plain: Buffer): { iv: string; ciphertext: string; tag: string } {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { iv: iv.toString('base64url'), ciphertext: ct.toString('base64url'), tag: c.getAuthTag().toString('base64url') };
}

/** Returns null when authentication fails. */
function gcmOpen(key: Buffer, aad: Buffer, s: { iv: string; ciphertext: string; tag: string }): Buffer | null {
  const iv = Buffer.from(s.iv, 'base64url');
  const tag = Buffer.from(s.tag, 'base64url');
  // createDecipheriv would accept a tag truncated to 4 bytes: insist on the full 16.
  if (iv.length !== 12 || tag.length !== 16) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(tag);
    return Buffer.concat([d.update(Buffer.from(s.ciphertext, 'base64url')), d.final()]);
  } catch {
    return null;
  }
}

// ---- the local keyring -----------------------------------------------------------------

interface KekRecord {
  readonly version: string;
  readonly createdAt: string;
  readonly retiredAt: string | null;
  readonly sealed: { iv: string; ciphertext: string; tag: string } | null;
}

interface KeyringFile {
  readonly format: 'gatehouse-keyring';
  readonly version: 1;
  readonly keyringId: string;
  readonly kdf: KdfParams;
  readonly check: string;
  readonly active: string;
  readonly keks: readonly KekRecord[];
  readonly mac: string;
}

type KeyringBody = Omit<KeyringFile, 'mac'>;

const KEK_AAD = (keyringId: string, version: string) => Buffer.from(`gatehouse/keyring/kek\n${keyringId}\n${version}`, 'utf8');
const WRAP_AAD = (keyringId: string, version: string, context: string) =>
  Buffer.from(`gatehouse/keys/wrap/v1\n${keyringId}\n${version}\n${context}`, 'utf8');

function canonicalBody(b: KeyringBody): Buffer {
  // Fixed key order: the MAC covers exactly these fields.
  return Buffer.from(JSON.stringify([b.format, b.version, b.keyringId, b.kdf, b.check, b.active,
    b.keks.map((k) => [k.version, k.createdAt, k.retiredAt, k.sealed ? [k.sealed.iv, k.sealed.ciphertext, k.sealed.tag] : null])]), 'utf8');
}

function macOf(macKey: Buffer, b: KeyringBody): string {
  return createHmac('sha256', macKey).update(canonicalBody(b)).digest('base64url');
}

function shapeProblem(f: unknown): string | null {
  if (typeof f !== 'object' || f === null) return 'not a JSON object';
  const o = f as Record<string, unknown>;
  if (o.format !== 'gatehouse-keyring') return 'not a Gatehouse keyring file';
  if (o.version !== 1) return `unsupported keyring format version ${JSON.stringify(o.version)}`;
  if (typeof o.keyringId !== 'string' || !/^kr_[A-Za-z0-9_-]{8,64}$/.test(o.keyringId)) return 'keyring id missing or malformed';
  if (typeof o.check !== 'string' || typeof o.mac !== 'string' || typeof o.active !== 'string') return 'check value, MAC or active version missing';
  if (!Array.isArray(o.keks) || o.keks.length === 0) return 'no key-encryption keys';
  for (const k of o.keks as unknown[]) {
    const r = k as Record<string, unknown>;
    if (typeof r?.version !== 'string' || typeof r.createdAt !== 'string' || !(r.retiredAt === null || typeof r.retiredAt === 'string')) return 'a KEK record is malformed';
    const s = r.sealed as Record<string, unknown> | null;
    if (s !== null && (typeof s?.iv !== 'string' || typeof s.ciphertext !== 'string' || typeof s.tag !== 'string')) return 'a sealed KEK is malformed';
  }
  return kdfProblem(o.kdf as KdfParams);
}

export interface LocalKeyringOptions {
  /** Clock for createdAt/retiredAt (tests). */
  readonly now?: () => Date;
}

export class LocalKeyring implements RotatableKeyService {
  readonly path: string;
  readonly #now: () => Date;
  #file: KeyringFile;
  #root: RootKeys;
  #keks = new Map<string, Buffer>();
  #closed = false;

  private constructor(path: string, file: KeyringFile, root: RootKeys, keks: Map<string, Buffer>, options: LocalKeyringOptions) {
    this.path = path;
    this.#file = file;
    this.#root = root;
    this.#keks = keks;
    this.#now = options.now ?? (() => new Date());
  }

  get id(): string { return this.#file.keyringId; }

  /** Creates a new keyring with one active KEK (v1). Refuses to overwrite an existing file. */
  static async create(path: string, passphrase: string, options: LocalKeyringOptions = {}): Promise<LocalKeyring> {
    checkPassphrase(passphrase);
    if (existsSync(path)) throw new KeyringExists(path);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const keyringId = `kr_${randomBytes(12).toString('base64url')}`;
    const kdf = newKdf();
    const root = splitRoot(await deriveRoot(passphrase, kdf), keyringId);
    const now = (options.now ?? (() => new Date()))().toISOString();
    const kek = randomBytes(32);
    const rec: KekRecord = { version: 'v1', createdAt: now, retiredAt: null, sealed: gcmSeal(root.seal, KEK_AAD(keyringId, 'v1'), kek) };
    const body: KeyringBody = { format: 'gatehouse-keyring', version: 1, keyringId, kdf, check: root.check.toString('base64url'), active: 'v1', keks: [rec] };
    const file: KeyringFile = { ...body, mac: macOf(root.mac, body) };
    await writeNewFile(path, JSON.stringify(file, null, 2) + '\n');
    return new LocalKeyring(path, file, root, new Map([['v1', kek]]), options);
  }

  /** Opens an existing keyring: wrong passphrase, damage and tampering are distinct errors. */
  static async open(path: string, passphrase: string, options: LocalKeyringOptions = {}): Promise<LocalKeyring> {
    checkPassphrase(passphrase);
    const file = readKeyringFile(path);
    const root = splitRoot(await deriveRoot(passphrase, file.kdf), file.keyringId);
    const keks = unsealAll(path, file, root);
    return new LocalKeyring(path, file, root, keks, options);
  }

  static async openOrCreate(path: string, passphrase: string, options: LocalKeyringOptions = {}): Promise<LocalKeyring> {
    if (existsSync(path)) return LocalKeyring.open(path, passphrase, options);
    try {
      return await LocalKeyring.create(path, passphrase, options);
    } catch (e) {
      // Another process created it first.
      if (e instanceof KeyringExists) return LocalKeyring.open(path, passphrase, options);
      throw e;
    }
  }

  activeVersion(): string { return this.#file.active; }

  versions(): readonly KekVersionInfo[] {
    return this.#file.keks.map((k) => ({ version: k.version, createdAt: k.createdAt, retiredAt: k.retiredAt, active: k.version === this.#file.active }));
  }

  async wrap(dek: Buffer, context: string): Promise<WrappedKey> {
    this.#live();
    if (!Buffer.isBuffer(dek) || dek.length === 0) throw new KeyInputInvalid('a data key to wrap must be a non-empty Buffer');
    const version = this.#file.active;
    const kek = this.#keks.get(version)!;
    const s = gcmSeal(kek, WRAP_AAD(this.id, version, context), dek);
    return { kekId: this.id, kekVersion: version, ...s };
  }

  async unwrap(w: WrappedKey, context: string): Promise<Buffer> {
    this.#live();
    if (w.kekId !== this.id) throw new KeyringMismatch(this.id, w.kekId);
    let kek = this.#keks.get(w.kekVersion);
    if (!kek) {
      // Another process may have rotated the file since we opened it: re-read it once.
      this.#reload();
      kek = this.#keks.get(w.kekVersion);
    }
    if (!kek) {
      const rec = this.#file.keks.find((k) => k.version === w.kekVersion);
      if (rec?.retiredAt) throw new KekVersionRetired(w.kekVersion);
      throw new KekVersionUnknown(this.id, w.kekVersion);
    }
    const dek = gcmOpen(kek, WRAP_AAD(this.id, w.kekVersion, context), w);
    if (!dek) throw new WrappedKeyInvalid(`KEK ${w.kekVersion}`);
    return dek;
  }

  /** Makes a fresh KEK version active; older versions still unwrap until retired. */
  async rotate(): Promise<string> {
    this.#live();
    this.#reload();
    const n = Math.max(...this.#file.keks.map((k) => Number(k.version.slice(1)) || 0)) + 1;
    const version = `v${n}`;
    const kek = randomBytes(32);
    const rec: KekRecord = { version, createdAt: this.#now().toISOString(), retiredAt: null, sealed: gcmSeal(this.#root.seal, KEK_AAD(this.id, version), kek) };
    await this.#write({ ...this.#body(), active: version, keks: [...this.#file.keks, rec] });
    this.#keks.set(version, kek);
    return version;
  }

  /**
   * Erases a KEK version (its sealed material leaves the file). Data keys still wrapped by
   * it become unrecoverable — rewrap first (DataKeyStore.rewrapAll does, then retires).
   */
  async retire(version: string): Promise<void> {
    this.#live();
    this.#reload();
    if (version === this.#file.active) throw new KeyInputInvalid(`KEK ${version} is the active version: rotate before retiring it`);
    const rec = this.#file.keks.find((k) => k.version === version);
    if (!rec) throw new KekVersionUnknown(this.id, version);
    if (rec.retiredAt) return;
    const keks = this.#file.keks.map((k) => (k.version === version ? { version: k.version, createdAt: k.createdAt, retiredAt: this.#now().toISOString(), sealed: null } : k));
    await this.#write({ ...this.#body(), keks });
    this.#keks.get(version)?.fill(0);
    this.#keks.delete(version);
  }

  /** Re-protects the keyring under a new passphrase (new salt); the KEKs themselves do not change. */
  async changePassphrase(newPassphrase: string): Promise<void> {
    this.#live();
    checkPassphrase(newPassphrase);
    this.#reload();
    const kdf = newKdf();
    const root = splitRoot(await deriveRoot(newPassphrase, kdf), this.id);
    const keks = this.#file.keks.map((k) => {
      const kek = this.#keks.get(k.version);
      return kek ? { ...k, sealed: gcmSeal(root.seal, KEK_AAD(this.id, k.version), kek) } : k;
    });
    const body: KeyringBody = { ...this.#body(), kdf, check: root.check.toString('base64url'), keks };
    const file: KeyringFile = { ...body, mac: macOf(root.mac, body) };
    await writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', 0o600);
    this.#wipeRoot();
    this.#root = root;
    this.#file = file;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const k of this.#keks.values()) k.fill(0);
    this.#keks.clear();
    this.#wipeRoot();
  }

  #wipeRoot(): void {
    this.#root.seal.fill(0);
    this.#root.mac.fill(0);
  }

  #body(): KeyringBody {
    const { mac: _m, ...body } = this.#file;
    return body;
  }

  async #write(body: KeyringBody): Promise<void> {
    const file: KeyringFile = { ...body, mac: macOf(this.#root.mac, body) };
    await writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', 0o600);
    this.#file = file;
  }

  /** Picks up versions another process added or retired (same passphrase, so the root keys are reused). */
  #reload(): void {
    const file = readKeyringFile(this.path);
    if (file.keyringId !== this.id) throw new KeyringCorrupt(this.path, 'the file now holds a different keyring');
    if (file.mac === this.#file.mac) return;
    const keks = unsealAll(this.path, file, this.#root);
    for (const [v, k] of this.#keks) if (!keks.has(v)) k.fill(0);
    this.#keks = keks;
    this.#file = file;
  }

  #live(): void {
    if (this.#closed) throw new KeyInputInvalid('the keyring is closed');
  }
}

/** Writes a temp file, fsyncs it and links it into place: fails (KeyringExists) if the path was taken meanwhile. */
async function writeNewFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyringExists(path);
    throw e;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  const dir = await open(dirname(path), 'r');
  try { await dir.sync(); } finally { await dir.close(); }
}

function checkPassphrase(p: string): void {
  if (typeof p !== 'string' || p.length === 0) throw new KeyringPassphraseMissing(PASSPHRASE_ENV);
}

function readKeyringFile(path: string): KeyringFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new KeyringNotFound(path);
    throw new KeyringCorrupt(path, `cannot read it (${(e as NodeJS.ErrnoException).code ?? 'I/O error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KeyringCorrupt(path, text.length === 0 ? 'the file is empty' : 'not valid JSON (truncated or overwritten?)');
  }
  const problem = shapeProblem(parsed);
  if (problem) throw new KeyringCorrupt(path, problem);
  return parsed as KeyringFile;
}

function unsealAll(path: string, file: KeyringFile, root: RootKeys): Map<string, Buffer> {
  const expected = Buffer.from(file.check, 'base64url');
  if (expected.length !== root.check.length || !timingSafeEqual(expected, root.check)) {
    root.seal.fill(0);
    root.mac.fill(0);
    throw new KeyringPassphraseWrong(path);
  }
  const body: KeyringBody = { format: file.format, version: file.version, keyringId: file.keyringId, kdf: file.kdf, check: file.check, active: file.active, keks: file.keks };
  const mac = Buffer.from(macOf(root.mac, body), 'base64url');
  const got = Buffer.from(file.mac, 'base64url');
  if (mac.length !== got.length || !timingSafeEqual(mac, got)) throw new KeyringCorrupt(path, 'integrity check failed (the file was edited or partly overwritten)');
  const active = file.keks.find((k) => k.version === file.active);
  if (!active || active.retiredAt || !active.sealed) throw new KeyringCorrupt(path, `active version ${file.active} is missing or retired`);
  const out = new Map<string, Buffer>();
  for (const k of file.keks) {
    if (!k.sealed) continue;
    const kek = gcmOpen(root.seal, KEK_AAD(file.keyringId, k.version), k.sealed);
    if (!kek || kek.length !== 32) throw new KeyringCorrupt(path, `KEK ${k.version} does not decrypt`);
    out.set(k.version, kek);
  }
  return out;
}
