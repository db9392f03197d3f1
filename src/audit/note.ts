/**
 * C2SP signed notes (https://c2sp.org/signed-note), checkpoints
 * (https://c2sp.org/tlog-checkpoint) and cosignatures (https://c2sp.org/tlog-cosignature).
 *
 *   note      = text ("\n"-terminated lines) || "\n" || signature lines
 *   signature = "— " name " " base64(key ID [4] || signature) "\n"
 *   key ID    = SHA-256(name || "\n" || type || public key)[:4]
 *               type 0x01: Ed25519 note signature over the text
 *               type 0x04: cosignature/v1, signature = u64 timestamp || Ed25519 over
 *                          "cosignature/v1\ntime <t>\n" || text
 *   vkey      = name "+" hex(key ID) "+" base64(type || public key)
 *
 * Verification follows the spec: signatures from unknown keys are ignored, a signature
 * from a known key that does not verify rejects the whole note, and at least one known
 * key must have signed. Ed25519 comes from node:crypto.
 */
import { createHash, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { NoteMalformed, NoteSignatureInvalid, NoteUnverified } from './errors.ts';
import { HASH_SIZE } from './merkle.ts';

export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;
const SIG_PREFIX = '\u2014 ';
const MAX_SIGNATURES = 100;

export interface NoteSigner {
  readonly name: string;
  readonly keyId: Buffer;
  /** Signature bytes excluding the 4-byte key ID. */
  sign(text: string): Buffer;
}

export interface NoteVerifier {
  readonly name: string;
  readonly keyId: Buffer;
  readonly type: number;
  readonly publicKey: Buffer;
  /** Verifies signature bytes (excluding the key ID) over the note text. */
  verify(text: string, sig: Buffer): boolean;
  /** The vkey string for this verifier. */
  readonly vkey: string;
}

export interface NoteSignature {
  readonly name: string;
  readonly keyId: Buffer;
  /** Signature bytes excluding the key ID. */
  readonly sig: Buffer;
}

export function checkKeyName(name: string): void {
  if (name.length === 0 || /[\s+]/u.test(name) || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new NoteMalformed('key name must be non-empty without spaces or "+"');
  }
}

export function keyIdFor(name: string, type: number, publicKey: Uint8Array): Buffer {
  return createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, type])).update(publicKey).digest().subarray(0, 4);
}

export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' }) as { x?: string };
  if (!jwk.x) throw new NoteMalformed('not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new NoteMalformed('Ed25519 public key must be 32 bytes');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function encodeVkey(name: string, type: number, publicKey: Uint8Array): string {
  checkKeyName(name);
  const id = keyIdFor(name, type, publicKey);
  return `${name}+${id.toString('hex')}+${Buffer.concat([Buffer.from([type]), publicKey]).toString('base64')}`;
}

/** Parses a vkey ("name+hexid+base64(type||key)") into a verifier for note or cosignature signatures. */
export function parseVkey(vkey: string): NoteVerifier {
  const v = vkey.trim();
  const a = v.indexOf('+');
  const b = a < 0 ? -1 : v.indexOf('+', a + 1);
  if (a <= 0 || b < 0) throw new NoteMalformed('vkey must be name+keyid+key');
  const name = v.slice(0, a);
  const idHex = v.slice(a + 1, b);
  const keyB64 = v.slice(b + 1);
  checkKeyName(name);
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw new NoteMalformed('vkey key ID must be 8 hex digits');
  const material = Buffer.from(keyB64, 'base64');
  if (material.length !== 33) throw new NoteMalformed('vkey must hold a type byte and a 32-byte Ed25519 key');
  const type = material[0]!;
  const publicKey = material.subarray(1);
  if (type !== SIG_ED25519 && type !== SIG_COSIGNATURE_V1) throw new NoteMalformed(`unsupported vkey type 0x${type.toString(16)}`);
  if (keyIdFor(name, type, publicKey).toString('hex') !== idHex) throw new NoteMalformed('vkey key ID does not match its key');
  return makeVerifier(name, type, publicKey);
}

export function makeVerifier(name: string, type: number, publicKey: Uint8Array): NoteVerifier {
  const key = publicKeyFromRaw(publicKey);
  const keyId = keyIdFor(name, type, publicKey);
  const vkey = encodeVkey(name, type, publicKey);
  if (type === SIG_ED25519) {
    return { name, keyId, type, publicKey: Buffer.from(publicKey), vkey, verify: (text, sig) => sig.length === 64 && edVerify(null, Buffer.from(text, 'utf8'), key, sig) };
  }
  return {
    name, keyId, type, publicKey: Buffer.from(publicKey), vkey,
    verify: (text, sig) => {
      if (sig.length !== 72) return false;
      const time = sig.readBigUInt64BE(0);
      if (time > 2n ** 63n - 1n) return false;
      return edVerify(null, cosignedMessage(text, time), key, sig.subarray(8));
    },
  };
}

export function ed25519NoteSigner(name: string, privateKey: KeyObject): NoteSigner {
  checkKeyName(name);
  const pub = rawPublicKey(createPublicKey(privateKey));
  return { name, keyId: keyIdFor(name, SIG_ED25519, pub), sign: (text) => edSign(null, Buffer.from(text, 'utf8'), privateKey) };
}

function cosignedMessage(text: string, time: bigint): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${time.toString()}\n${text}`, 'utf8');
}

/** A cosignature/v1 signer (tlog-cosignature): the signature carries its own timestamp. */
export function cosignatureSigner(name: string, privateKey: KeyObject, now: () => number = () => Math.floor(Date.now() / 1000)): NoteSigner {
  checkKeyName(name);
  const pub = rawPublicKey(createPublicKey(privateKey));
  return {
    name,
    keyId: keyIdFor(name, SIG_COSIGNATURE_V1, pub),
    sign: (text) => {
      const time = BigInt(now());
      const ts = Buffer.alloc(8);
      ts.writeBigUInt64BE(time);
      return Buffer.concat([ts, edSign(null, cosignedMessage(text, time), privateKey)]);
    },
  };
}

function checkText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteMalformed('note text must end with a newline');
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)) throw new NoteMalformed('note text contains control characters');
  if (text.includes('\n\n')) throw new NoteMalformed('note text contains a blank line');
}

export function formatSignature(s: NoteSignature): string {
  return `${SIG_PREFIX}${s.name} ${Buffer.concat([s.keyId, s.sig]).toString('base64')}\n`;
}

export function signNote(text: string, signers: readonly NoteSigner[], existing: readonly NoteSignature[] = []): string {
  checkText(text);
  const sigs = [...existing];
  for (const s of signers) sigs.push({ name: s.name, keyId: s.keyId, sig: s.sign(text) });
  return text + '\n' + sigs.map(formatSignature).join('');
}

export interface ParsedNote {
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

export function parseNote(note: string): ParsedNote {
  if (typeof note !== 'string') throw new NoteMalformed('note must be a string');
  if (note.length > 1_000_000) throw new NoteMalformed('note is too large');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new NoteMalformed('note has no signature block');
  const text = note.slice(0, split + 1);
  checkText(text);
  const block = note.slice(split + 2);
  if (!block.endsWith('\n')) throw new NoteMalformed('signature block must end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteMalformed('too many signatures');
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteMalformed('malformed signature line');
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    if (space <= 0) throw new NoteMalformed('malformed signature line');
    const name = rest.slice(0, space);
    const b64 = rest.slice(space + 1);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new NoteMalformed('malformed signature encoding');
    const raw = Buffer.from(b64, 'base64');
    if (raw.length < 5) throw new NoteMalformed('signature too short');
    checkKeyName(name);
    signatures.push({ name, keyId: raw.subarray(0, 4), sig: raw.subarray(4) });
  }
  return { text, signatures };
}

export interface OpenedNote extends ParsedNote {
  /** Verifiers whose signature verified. */
  readonly verifiedBy: readonly NoteVerifier[];
  /** Signatures from keys the caller did not supply (kept, not trusted). */
  readonly unknown: readonly NoteSignature[];
}

/** Parses and verifies a note. Unknown signatures are ignored; a bad signature from a known key throws. */
export function openNote(note: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  const parsed = parseNote(note);
  const verifiedBy: NoteVerifier[] = [];
  const unknown: NoteSignature[] = [];
  for (const s of parsed.signatures) {
    const v = verifiers.find((x) => x.name === s.name && x.keyId.equals(s.keyId));
    if (!v) { unknown.push(s); continue; }
    if (!v.verify(parsed.text, s.sig)) throw new NoteSignatureInvalid(v.name);
    if (!verifiedBy.includes(v)) verifiedBy.push(v);
  }
  if (verifiedBy.length === 0) throw new NoteUnverified();
  return { ...parsed, verifiedBy, unknown };
}

// ---- tlog-checkpoint ------------------------------------------------------------------

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
  readonly extensions: readonly string[];
}

export function formatCheckpoint(c: Checkpoint): string {
  if (!c.origin || c.origin.includes('\n')) throw new NoteMalformed('checkpoint origin must be one non-empty line');
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n${c.extensions.map((e) => e + '\n').join('')}`;
}

export function parseCheckpoint(text: string): Checkpoint {
  checkText(text);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new NoteMalformed('checkpoint needs origin, size and root hash lines');
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) throw new NoteMalformed('checkpoint origin is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine)) throw new NoteMalformed('checkpoint size must be a decimal without leading zeros');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw new NoteMalformed('checkpoint size is too large');
  if (!/^[A-Za-z0-9+/]{43}=$/.test(rootLine)) throw new NoteMalformed('checkpoint root must be a base64 SHA-256 hash');
  const root = Buffer.from(rootLine, 'base64');
  if (root.length !== HASH_SIZE) throw new NoteMalformed('checkpoint root must be 32 bytes');
  for (const e of extensions) if (e.length === 0) throw new NoteMalformed('empty checkpoint extension line');
  return { origin, size, root, extensions };
}

export interface VerifiedCheckpoint extends Checkpoint {
  readonly note: string;
  readonly signedBy: readonly NoteVerifier[];
  readonly signatures: readonly NoteSignature[];
}

/** Opens a signed checkpoint; when `origin` is given the checkpoint must be for that log. */
export function openCheckpoint(note: string, verifiers: readonly NoteVerifier[], origin?: string): VerifiedCheckpoint {
  const opened = openNote(note, verifiers);
  const cp = parseCheckpoint(opened.text);
  if (origin !== undefined && cp.origin !== origin) throw new NoteMalformed(`checkpoint is for log ${JSON.stringify(cp.origin)}, not ${JSON.stringify(origin)}`);
  return { ...cp, note, signedBy: opened.verifiedBy, signatures: opened.signatures };
}

/** Adds signature lines (e.g. witness cosignatures) to a signed note, dropping duplicates by key. */
export function addSignatures(note: string, extra: readonly NoteSignature[]): string {
  const parsed = parseNote(note);
  const all = [...parsed.signatures];
  for (const s of extra) {
    if (!all.some((x) => x.name === s.name && x.keyId.equals(s.keyId))) all.push(s);
  }
  return parsed.text + '\n' + all.map(formatSignature).join('');
}

/** Parses signature lines alone (a witness response body). */
export function parseSignatureLines(body: string): NoteSignature[] {
  if (body.trim() === '') return [];
  return [...parseNote('x\n\n' + (body.endsWith('\n') ? body : body + '\n')).signatures];
}
