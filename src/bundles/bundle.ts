/**
 * Signed, encrypted bundles for sites with no network between them (scenario 3): approved
 * code goes in, approved results and the audit export with its proofs come out, on media
 * carried by hand.
 *
 *   file  = { "format": "gatehouse.bundle.v1", "sender", "recipient", "sequence", "kind",
 *             "jwe": <compact JWE>, "signature": <Ed25519 over LABEL_OUTER ‖ SHA-256(canonical header ‖ jwe)> }
 *   jwe   = JWE (RFC 7516) ECDH-ES+A256KW / A256GCM to the recipient's X25519 key; its
 *           protected header repeats sender, recipient, sequence, kind and bundle id, so the
 *           AEAD authenticates them too
 *   plain = canonical JSON { header: { bundleId, sender, recipient, sequence, kind, createdAt },
 *                            manifest: [{ name, bytes, sha256 }], files: { name: base64 },
 *                            signature: Ed25519 over LABEL_INNER ‖ SHA-256(canonical { header, manifest }) }
 *
 * Sign-then-encrypt inside (the recipient knows who wrote the contents, RFC 7516 §11.1's
 * caution about unsigned JWEs) and sign-the-ciphertext outside (a transfer station can check
 * origin and integrity with public keys only, `gatehouse bundle verify`, before the media
 * reaches the enclave). Every file is listed with its size and SHA-256 and checked on import.
 * Replay and order are the receiver's ledger's job (ledger.ts): sequence numbers per sender
 * must arrive as 1, 2, 3 … with no gap or repeat.
 */
import { createHash, randomUUID, sign, verify } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose';
import { canonicalize } from '../audit/canonical.ts';
import { BundleRejected } from './errors.ts';
import type { PublicIdentity, SiteIdentity } from './identity.ts';

export const BUNDLE_FORMAT = 'gatehouse.bundle.v1';
export const BUNDLE_KINDS = ['job-code', 'results', 'audit-export', 'mock-data'] as const;
export type BundleKind = (typeof BUNDLE_KINDS)[number];

const LABEL_INNER = 'gatehouse.bundle.v1.contents:';
const LABEL_OUTER = 'gatehouse.bundle.v1.transport:';
const MAX_BYTES = 64 * 1024 * 1024;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface BundleHeader {
  readonly bundleId: string;
  readonly sender: string;
  readonly recipient: string;
  readonly sequence: number;
  readonly kind: BundleKind;
  readonly createdAt: string;
}

export interface ManifestEntry {
  readonly name: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface BundleFile {
  readonly format: typeof BUNDLE_FORMAT;
  readonly sender: string;
  readonly recipient: string;
  readonly sequence: number;
  readonly kind: BundleKind;
  readonly jwe: string;
  readonly signature: string;
}

export interface OpenedBundle {
  readonly header: BundleHeader;
  readonly manifest: readonly ManifestEntry[];
  readonly files: ReadonlyMap<string, Uint8Array>;
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

function outerDigest(f: Pick<BundleFile, 'format' | 'sender' | 'recipient' | 'sequence' | 'kind' | 'jwe'>): Buffer {
  return Buffer.from(LABEL_OUTER + sha256(canonicalize({ format: f.format, sender: f.sender, recipient: f.recipient, sequence: f.sequence, kind: f.kind })) + sha256(f.jwe));
}

export async function sealBundle(options: { from: SiteIdentity; to: PublicIdentity; sequence: number; kind: BundleKind; files: ReadonlyMap<string, Uint8Array>; now?: Date }): Promise<BundleFile> {
  const { from, to, sequence, kind } = options;
  if (!Number.isSafeInteger(sequence) || sequence < 1) throw new BundleRejected('sequence numbers start at 1', 'BUNDLE_BAD_SEQUENCE');
  if (!BUNDLE_KINDS.includes(kind)) throw new BundleRejected(`kind must be one of ${BUNDLE_KINDS.join(', ')}`, 'BUNDLE_BAD_KIND');
  let total = 0;
  const manifest: ManifestEntry[] = [];
  const files: Record<string, string> = {};
  for (const [name, bytes] of [...options.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!NAME.test(name)) throw new BundleRejected('file names in a bundle are plain names (letters, digits, . _ -), no paths', 'BUNDLE_BAD_NAME');
    total += bytes.length;
    manifest.push({ name, bytes: bytes.length, sha256: sha256(bytes) });
    files[name] = Buffer.from(bytes).toString('base64');
  }
  if (total > MAX_BYTES) throw new BundleRejected(`a bundle carries at most ${MAX_BYTES} bytes`, 'BUNDLE_TOO_LARGE');
  const header: BundleHeader = { bundleId: randomUUID(), sender: from.id, recipient: to.id, sequence, kind, createdAt: (options.now ?? new Date()).toISOString() };
  const innerSig = sign(null, Buffer.from(LABEL_INNER + sha256(canonicalize({ header, manifest }))), from.signingKey).toString('base64url');
  const plain = Buffer.from(canonicalize({ header, manifest, files, signature: innerSig }));
  const jwe = await new CompactEncrypt(plain)
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: BUNDLE_FORMAT, 'gh-sender': from.id, 'gh-recipient': to.id, 'gh-sequence': sequence, 'gh-kind': kind, 'gh-bundle': header.bundleId })
    .encrypt(to.encryption);
  const outer = { format: BUNDLE_FORMAT, sender: from.id, recipient: to.id, sequence, kind, jwe } as const;
  return { ...outer, signature: sign(null, outerDigest(outer), from.signingKey).toString('base64url') };
}

/** Parses a bundle file's JSON shape (no cryptography yet). */
export function parseBundle(text: string): BundleFile {
  let j: Record<string, unknown>;
  try { j = JSON.parse(text) as Record<string, unknown>; } catch { throw new BundleRejected('the bundle is not JSON', 'BUNDLE_MALFORMED'); }
  if (j.format !== BUNDLE_FORMAT || typeof j.sender !== 'string' || typeof j.recipient !== 'string' || typeof j.sequence !== 'number' || !Number.isSafeInteger(j.sequence)
    || typeof j.kind !== 'string' || !BUNDLE_KINDS.includes(j.kind as BundleKind) || typeof j.jwe !== 'string' || typeof j.signature !== 'string') {
    throw new BundleRejected(`the file is not a ${BUNDLE_FORMAT} bundle`, 'BUNDLE_MALFORMED');
  }
  return j as unknown as BundleFile;
}

/** The transport check anyone with the sender's public identity can run: origin and integrity, without decrypting. */
export function verifyTransport(f: BundleFile, senders: readonly PublicIdentity[]): PublicIdentity {
  const sender = senders.find((s) => s.id === f.sender);
  if (!sender) throw new BundleRejected(`the bundle comes from "${f.sender}", a site this node does not trust`, 'BUNDLE_UNKNOWN_SENDER');
  let ok = false;
  try { ok = verify(null, outerDigest(f), sender.signing, Buffer.from(f.signature, 'base64url')); } catch { ok = false; }
  if (!ok) throw new BundleRejected('the bundle signature does not verify: it was changed after the sender signed it, or the sender is not who it claims', 'BUNDLE_BAD_SIGNATURE');
  const h = decodeProtectedHeader(f.jwe);
  if (h['gh-sender'] !== f.sender || h['gh-recipient'] !== f.recipient || h['gh-sequence'] !== f.sequence || h['gh-kind'] !== f.kind) {
    throw new BundleRejected('the bundle\'s outer fields disagree with its encrypted header', 'BUNDLE_HEADER_MISMATCH');
  }
  return sender;
}

/** Decrypts and checks everything: recipient, inner signature, every file's size and hash. */
export async function openBundle(f: BundleFile, me: SiteIdentity, senders: readonly PublicIdentity[]): Promise<OpenedBundle> {
  const sender = verifyTransport(f, senders);
  if (f.recipient !== me.id) throw new BundleRejected(`the bundle is addressed to "${f.recipient}", not this site`, 'BUNDLE_WRONG_RECIPIENT');
  let plain: Uint8Array;
  try { ({ plaintext: plain } = await compactDecrypt(f.jwe, me.encryptionKey)); } catch { throw new BundleRejected('the bundle does not decrypt with this site\'s key', 'BUNDLE_UNDECRYPTABLE'); }
  const inner = JSON.parse(Buffer.from(plain).toString('utf8')) as { header: BundleHeader; manifest: ManifestEntry[]; files: Record<string, string>; signature: string };
  const ok = verify(null, Buffer.from(LABEL_INNER + sha256(canonicalize({ header: inner.header, manifest: inner.manifest }))), sender.signing, Buffer.from(inner.signature, 'base64url'));
  if (!ok) throw new BundleRejected('the bundle contents are not signed by the sender', 'BUNDLE_BAD_SIGNATURE');
  const h = inner.header;
  if (h.sender !== f.sender || h.recipient !== f.recipient || h.sequence !== f.sequence || h.kind !== f.kind) throw new BundleRejected('the bundle\'s outer fields disagree with its signed header', 'BUNDLE_HEADER_MISMATCH');
  const files = new Map<string, Uint8Array>();
  const names = new Set(inner.manifest.map((m) => m.name));
  if (names.size !== Object.keys(inner.files).length || ![...names].every((n) => Object.hasOwn(inner.files, n))) throw new BundleRejected('the bundle\'s files do not match its manifest', 'BUNDLE_HASH_MISMATCH');
  for (const m of inner.manifest) {
    const bytes = new Uint8Array(Buffer.from(inner.files[m.name]!, 'base64'));
    if (bytes.length !== m.bytes || sha256(bytes) !== m.sha256) throw new BundleRejected(`file ${m.name} does not match its manifest hash`, 'BUNDLE_HASH_MISMATCH');
    files.set(m.name, bytes);
  }
  return { header: h, manifest: inner.manifest, files };
}
