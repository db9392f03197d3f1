/**
 * Offline verification of receipts and exported logs.
 *
 * Uses only the exported data, the log's public keys (C2SP vkeys; every key in the
 * rotation history) and, optionally, a checkpoint the verifier trusted earlier. Leaf
 * hashes are recomputed from the RFC 8785 canonical encoding, inclusion proofs are
 * checked per RFC 9162 §2.1.3.2, the whole tree is recomputed per RFC 6962 §2.1 and
 * compared to the signed checkpoint, and the trusted checkpoint is checked against the
 * recomputed prefix (or a consistency proof, RFC 9162 §2.1.4.2).
 *
 * Each finding names the entry: modified, deleted, reordered, inserted, truncated, or forked.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { canonicalBytes } from './canonical.ts';
import { AuditError, InputInvalid, ProofVerificationFailed } from './errors.ts';
import { MemoryTree, hashEquals, hashLeaf, verifyConsistency, verifyInclusion } from './merkle.ts';
import { openCheckpoint, type NoteVerifier, type VerifiedCheckpoint } from './note.ts';
import { EXPORT_FORMAT, RECEIPT_FORMAT, type Leaf } from './log.ts';

export type ProblemKind = 'modified' | 'deleted' | 'reordered' | 'inserted' | 'truncated' | 'forked' | 'malformed' | 'checkpoint' | 'unchecked';

export interface Problem {
  readonly kind: ProblemKind;
  /** Log index of the entry concerned, when there is one. */
  readonly index?: number;
  /** 0-based position of the line among the export's entry lines. */
  readonly position?: number;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly origin: string | null;
  readonly size: number | null;
  readonly entries: number;
  readonly complete: boolean;
  readonly problems: readonly Problem[];
  /** The verified checkpoint note; keep it as the next trusted checkpoint. */
  readonly checkpoint: string | null;
}

export interface VerifyExportOptions {
  readonly verifiers: readonly NoteVerifier[];
  /** A checkpoint note trusted before (for example from the previous verification or a witness). */
  readonly trusted?: string;
  /** For partial exports: a consistency proof (base64 hashes) from the trusted size to the export's size. */
  readonly consistencyProof?: readonly string[];
}

function b64hashes(v: unknown, what: string): Buffer[] {
  if (!Array.isArray(v) || v.length > 64 || !v.every((x) => typeof x === 'string')) throw new InputInvalid(`${what} must be an array of base64 hashes`);
  return v.map((x: string) => Buffer.from(x, 'base64'));
}

function leafIndex(leaf: unknown): number {
  const idx = (leaf as Leaf | null)?.index;
  if (typeof leaf !== 'object' || leaf === null || typeof idx !== 'number' || !Number.isSafeInteger(idx) || idx < 0) throw new InputInvalid('leaf has no valid index');
  return idx;
}

/** Verifies a receipt offline. Returns the verified checkpoint; throws a typed error otherwise. */
export function verifyReceipt(receipt: unknown, verifiers: readonly NoteVerifier[]): { index: number; checkpoint: VerifiedCheckpoint; leaf: Leaf } {
  const r = receipt as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || r.type !== RECEIPT_FORMAT) throw new InputInvalid(`not a ${RECEIPT_FORMAT} receipt`);
  if (typeof r.checkpoint !== 'string') throw new InputInvalid('receipt has no checkpoint');
  const cp = openCheckpoint(r.checkpoint, verifiers, typeof r.origin === 'string' ? r.origin : undefined);
  const index = leafIndex(r.leaf);
  if (r.index !== index) throw new ProofVerificationFailed(`receipt index ${String(r.index)} differs from the leaf's index ${index}`);
  verifyInclusion(index, cp.size, hashLeaf(canonicalBytes(r.leaf)), b64hashes(r.proof, 'proof'), cp.root);
  return { index, checkpoint: cp, leaf: r.leaf as Leaf };
}

interface Line { readonly position: number; readonly claimed: number; readonly hash: Buffer; valid: boolean | null }

/** Verifies an exported log given as an iterable of JSON lines. */
export async function verifyExport(lines: AsyncIterable<string> | Iterable<string>, options: VerifyExportOptions): Promise<VerifyReport> {
  const problems: Problem[] = [];
  let cp: VerifiedCheckpoint | null = null;
  let complete = false;
  let headerSeen = false;
  let trailerCount: number | null = null;
  const entries: Line[] = [];
  let lineNo = 0;
  for await (const raw of lines) {
    lineNo++;
    if (raw.trim() === '') continue;
    let obj: Record<string, unknown>;
    try { obj = JSON.parse(raw) as Record<string, unknown>; } catch {
      problems.push({ kind: 'malformed', message: `line ${lineNo} is not JSON` });
      continue;
    }
    if (!headerSeen) {
      headerSeen = true;
      if (obj.type !== EXPORT_FORMAT || typeof obj.checkpoint !== 'string') {
        problems.push({ kind: 'malformed', message: `first line is not a ${EXPORT_FORMAT} header` });
        break;
      }
      try {
        cp = openCheckpoint(obj.checkpoint, options.verifiers);
      } catch (e) {
        problems.push({ kind: 'checkpoint', message: `export checkpoint rejected: ${(e as Error).message}` });
        break;
      }
      complete = obj.complete === true;
      continue;
    }
    if (obj.type === 'end') { trailerCount = typeof obj.count === 'number' ? obj.count : -1; continue; }
    if (obj.type !== 'entry') { problems.push({ kind: 'malformed', message: `line ${lineNo} has unknown type` }); continue; }
    const position = entries.length;
    let claimed: number;
    let hash: Buffer;
    try {
      claimed = leafIndex(obj.leaf);
      hash = hashLeaf(canonicalBytes(obj.leaf));
    } catch {
      problems.push({ kind: 'malformed', position, message: `entry line ${position} has no valid leaf` });
      entries.push({ position, claimed: -1, hash: Buffer.alloc(32), valid: false });
      continue;
    }
    let valid: boolean | null = null;
    if (obj.proof !== undefined && cp) {
      try { verifyInclusion(claimed, cp.size, hash, b64hashes(obj.proof, 'proof'), cp.root); valid = true; } catch { valid = false; }
    }
    entries.push({ position, claimed, hash, valid });
  }
  if (!cp) {
    if (!headerSeen) problems.push({ kind: 'malformed', message: 'export is empty' });
    return { ok: false, origin: null, size: null, entries: entries.length, complete, problems, checkpoint: null };
  }
  const n = cp.size;
  if (trailerCount === null) problems.push({ kind: 'truncated', message: 'export has no end line: the file was cut short' });
  else if (trailerCount !== entries.length) problems.push({ kind: 'malformed', message: `end line counts ${trailerCount} entries, the file holds ${entries.length}` });

  const anyProofs = entries.some((e) => e.valid !== null);
  if (anyProofs) diagnose(entries, n, complete, problems);
  else if (complete) diagnoseWithoutProofs(entries, n, cp.root, problems);
  else problems.push({ kind: 'unchecked', message: 'partial export without proofs: nothing to check' });

  // Belt and braces for complete exports: the leaves, in file order, must rebuild the signed root.
  const cleanFile = problems.length === 0;
  if (complete && cleanFile) {
    const root = new MemoryTree(entries.map((e) => e.hash)).root();
    if (entries.length !== n || !hashEquals(root, cp.root)) problems.push({ kind: 'modified', message: 'the entries do not rebuild the signed root hash' });
  }

  if (options.trusted !== undefined) checkTrusted(options, cp, entries, complete && problems.length === 0, problems);
  return { ok: problems.length === 0, origin: cp.origin, size: n, entries: entries.length, complete, problems, checkpoint: cp.note };
}

function diagnose(entries: Line[], n: number, complete: boolean, problems: Problem[]): void {
  const validAt = new Map<number, number>();
  for (const e of entries) {
    if (e.valid !== true) continue;
    if (validAt.has(e.claimed)) problems.push({ kind: 'inserted', index: e.claimed, position: e.position, message: `entry ${e.claimed} appears a second time at line ${e.position}` });
    else validAt.set(e.claimed, e.position);
  }
  // Order of authentic entries.
  let maxSeen = -1;
  for (const e of entries) {
    if (e.valid !== true || validAt.get(e.claimed) !== e.position) continue;
    if (e.claimed < maxSeen) problems.push({ kind: 'reordered', index: e.claimed, position: e.position, message: `entry ${e.claimed} appears after entry ${maxSeen}` });
    maxSeen = Math.max(maxSeen, e.claimed);
  }
  const missing = new Set<number>();
  if (complete) for (let i = 0; i < n; i++) if (!validAt.has(i)) missing.add(i);
  // Lines that fail their proof: a modified entry fills a gap, anything else was inserted.
  const invalid = entries.filter((e) => e.valid === false);
  for (const e of invalid) {
    let slot: number | null = null;
    if (e.claimed >= 0 && e.claimed < n && !validAt.has(e.claimed) && (missing.has(e.claimed) || !complete)) slot = e.claimed;
    else {
      // The line's own index was changed too: use the gap between its authentic neighbours.
      const before = [...entries.slice(0, e.position)].reverse().find((x) => x.valid === true);
      const after = entries.slice(e.position + 1).find((x) => x.valid === true);
      const lo = before ? before.claimed + 1 : 0;
      const hi = after ? after.claimed : n;
      const gap = [...missing].filter((i) => i >= lo && i < hi);
      if (gap.length === 1) slot = gap[0]!;
    }
    if (slot !== null) {
      missing.delete(slot);
      validAt.set(slot, e.position);
      problems.push({ kind: 'modified', index: slot, position: e.position, message: `entry ${slot} was modified (its content does not match the signed tree)` });
    } else {
      problems.push({ kind: 'inserted', index: e.claimed, position: e.position, message: `line ${e.position} is not in the signed log (an inserted entry claiming index ${e.claimed})` });
    }
  }
  if (missing.size > 0) {
    const sorted = [...missing].sort((a, b) => a - b);
    // A contiguous run at the end is a truncation; anything else is a deletion.
    let k = sorted.length;
    while (k > 0 && sorted[k - 1] === n - (sorted.length - k) - 1) k--;
    for (const i of sorted.slice(0, k)) problems.push({ kind: 'deleted', index: i, message: `entry ${i} was deleted` });
    if (k < sorted.length) problems.push({ kind: 'truncated', index: sorted[k]!, message: `log truncated: entries ${sorted[k]}..${n - 1} are missing (the signed checkpoint covers ${n})` });
  }
}

function diagnoseWithoutProofs(entries: Line[], n: number, root: Buffer, problems: Problem[]): void {
  const got = new MemoryTree(entries.map((e) => e.hash)).root();
  if (entries.length === n && hashEquals(got, root)) return;
  let expected = 0;
  for (const e of entries) {
    if (e.claimed !== expected) {
      problems.push({ kind: e.claimed > expected ? 'deleted' : 'reordered', index: expected, position: e.position, message: `line ${e.position} holds entry ${e.claimed}, expected ${expected}` });
      return;
    }
    expected++;
  }
  if (entries.length < n) problems.push({ kind: 'truncated', index: entries.length, message: `log truncated at ${entries.length} of ${n} entries` });
  else problems.push({ kind: 'modified', message: 'the entries do not rebuild the signed root hash (export without proofs: cannot name the entry)' });
}

function checkTrusted(options: VerifyExportOptions, cp: VerifiedCheckpoint, entries: readonly Line[], prefixUsable: boolean, problems: Problem[]): void {
  let trusted: VerifiedCheckpoint;
  try {
    trusted = openCheckpoint(options.trusted!, options.verifiers);
  } catch (e) {
    problems.push({ kind: 'checkpoint', message: `trusted checkpoint rejected: ${(e as Error).message}` });
    return;
  }
  if (trusted.origin !== cp.origin) { problems.push({ kind: 'checkpoint', message: `trusted checkpoint is for log ${trusted.origin}, export is for ${cp.origin}` }); return; }
  const m = trusted.size;
  if (m > cp.size) {
    problems.push({ kind: 'truncated', index: cp.size, message: `log truncated or rolled back: it now has ${cp.size} entries, you trusted a checkpoint of ${m}` });
    return;
  }
  if (prefixUsable) {
    const root = new MemoryTree(entries.slice(0, m).map((e) => e.hash)).root(m);
    if (!hashEquals(root, trusted.root)) problems.push({ kind: 'forked', message: `log forked: its first ${m} entries differ from the trusted checkpoint of size ${m}` });
    return;
  }
  if (options.consistencyProof) {
    try {
      verifyConsistency(m, cp.size, trusted.root, cp.root, b64hashes(options.consistencyProof, 'consistency proof'));
    } catch (e) {
      problems.push({ kind: 'forked', message: `log forked: no valid consistency from the trusted size ${m} to ${cp.size} (${(e as AuditError).code ?? 'error'})` });
    }
    return;
  }
  problems.push({ kind: 'unchecked', message: 'consistency with the trusted checkpoint was not checked (fix the entries or supply a consistency proof)' });
}

/** Reads an export from a file or stream and verifies it. */
export async function verifyExportFile(input: string | Readable, options: VerifyExportOptions): Promise<VerifyReport> {
  const stream = typeof input === 'string' ? createReadStream(input, 'utf8') : input;
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  return verifyExport(rl, options);
}
