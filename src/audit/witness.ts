/**
 * Witnessing, per C2SP tlog-witness (https://c2sp.org/tlog-witness) and
 * tlog-cosignature (https://c2sp.org/tlog-cosignature).
 *
 * A Witness keeps, per log origin, the latest checkpoint it cosigned. It accepts a new
 * checkpoint only if the submitter's "old" size equals what it holds (else 409 with its
 * size) and a consistency proof (RFC 9162 §2.1.4.2) links the two; it then stores the
 * new checkpoint durably and only afterwards returns a cosignature/v1. Check-and-store
 * runs under a per-origin lock, and the state directory is locked against a second
 * process, so concurrent updates can never roll the witness back.
 *
 * Wire format of POST /add-checkpoint (tlog-witness):
 *   old <size>\n  <base64 proof hash>\n ...  \n  <signed checkpoint note>
 * Responses: 200 cosignature lines; 409 text/x.tlog.size "<size>\n"; 404 unknown log;
 * 403 bad log signature; 422 bad consistency proof; 400 malformed.
 *
 * Owner side: publishCheckpoint() collects cosignatures and requires k of n;
 * verifyCosignedCheckpoint() is the client check; detectSplitView() compares two views.
 */
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { acquireDirLock, type ProcessLock } from './process-lock.ts';
import { join } from 'node:path';
import { createHash, type KeyObject } from 'node:crypto';
import { AuditError, InputInvalid, NoteMalformed, ProofVerificationFailed, SplitViewDetected, WitnessConflict, WitnessQuorumNotReached, WitnessUnknownLog } from './errors.ts';
import { EMPTY_ROOT, verifyConsistency } from './merkle.ts';
import {
  SIG_COSIGNATURE_V1, addSignatures, cosignatureSigner, encodeVkey, formatSignature, makeVerifier, openCheckpoint, openNote,
  parseSignatureLines, parseVkey, rawPublicKey, type NoteSignature, type NoteSigner, type NoteVerifier, type VerifiedCheckpoint,
} from './note.ts';
import { writeFileAtomicSync } from './fsutil.ts';
import { createPublicKey } from 'node:crypto';

export interface WitnessLogConfig { readonly origin: string; readonly vkeys: readonly string[] }

export interface WitnessOptions {
  /** Cosigner name (schema-less URL), e.g. "witness.partner.example/w1". */
  readonly name: string;
  readonly privateKey: KeyObject;
  readonly stateDir: string;
  readonly logs: readonly WitnessLogConfig[];
  readonly now?: () => number;
}

interface WitnessState { readonly size: number; readonly root: string; readonly checkpoint: string }

export class Witness {
  readonly name: string;
  readonly vkey: string;
  readonly #signer: NoteSigner;
  readonly #dir: string;
  readonly #logs = new Map<string, NoteVerifier[]>();
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #lock: ProcessLock;

  constructor(options: WitnessOptions) {
    this.name = options.name;
    this.#signer = cosignatureSigner(options.name, options.privateKey, options.now);
    this.vkey = encodeVkey(options.name, SIG_COSIGNATURE_V1, rawPublicKey(createPublicKey(options.privateKey)));
    this.#dir = options.stateDir;
    for (const l of options.logs) this.#logs.set(l.origin, l.vkeys.map(parseVkey));
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    this.#lock = acquireDirLock(this.#dir, 'witness state');
  }

  #statePath(origin: string): string {
    return join(this.#dir, `log-${createHash('sha256').update(origin).digest('hex').slice(0, 32)}.json`);
  }

  /** The latest checkpoint this witness cosigned for `origin`, or null. */
  latest(origin: string): WitnessState | null {
    const p = this.#statePath(origin);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as WitnessState) : null;
  }

  async #withLock<T>(origin: string, fn: () => T): Promise<T> {
    const prev = this.#locks.get(origin) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#locks.set(origin, tail);
    try { return await run; } finally { if (this.#locks.get(origin) === tail) this.#locks.delete(origin); }
  }

  /** tlog-witness add-checkpoint: returns the cosignature for the (stored) checkpoint. */
  addCheckpoint(oldSize: number, proof: readonly Buffer[], note: string): Promise<NoteSignature> {
    return this.#withLock('any', () => {
      if (!Number.isSafeInteger(oldSize) || oldSize < 0) throw new InputInvalid('old size must be a non-negative integer');
      let origin: string;
      try { origin = note.split('\n', 1)[0]!; } catch { throw new NoteMalformed('not a checkpoint'); }
      const verifiers = this.#logs.get(origin);
      if (!verifiers) throw new WitnessUnknownLog(origin);
      const cp = openCheckpoint(note, verifiers, origin);
      const state = this.latest(origin);
      const curSize = state?.size ?? 0;
      const curRoot = state ? Buffer.from(state.root, 'base64') : EMPTY_ROOT;
      if (oldSize !== curSize) throw new WitnessConflict(curSize);
      if (cp.size < curSize) throw new InputInvalid(`checkpoint size ${cp.size} is below the old size ${curSize}`);
      if (state && cp.size === curSize) {
        if (!cp.root.equals(curRoot)) throw new ProofVerificationFailed(`a different root for size ${curSize}: the log forked`);
      } else if (state) {
        verifyConsistency(curSize, cp.size, curRoot, cp.root, proof);
      } else if (proof.length !== 0) {
        throw new ProofVerificationFailed('first checkpoint of a log needs an empty proof');
      }
      // Store before cosigning: a cosignature is never issued for a state that could be lost.
      const signedText = openNote(note, verifiers).text;
      writeFileAtomicSync(this.#statePath(origin), JSON.stringify({ size: cp.size, root: cp.root.toString('base64'), checkpoint: note }) + '\n', 0o600);
      return { name: this.#signer.name, keyId: this.#signer.keyId, sig: this.#signer.sign(signedText) };
    });
  }

  close(): void {
    this.#lock.release();
  }
}

export function parseAddCheckpointBody(body: string): { oldSize: number; proof: Buffer[]; note: string } {
  const split = body.indexOf('\n\n');
  if (split < 0) throw new InputInvalid('request must hold "old", proof lines, a blank line and the checkpoint');
  const head = body.slice(0, split).split('\n');
  const m = /^old (0|[1-9][0-9]*)$/.exec(head[0] ?? '');
  if (!m) throw new InputInvalid('first line must be "old <size>"');
  if (head.length - 1 > 63) throw new InputInvalid('too many proof lines');
  const proof = head.slice(1).map((l) => {
    if (!/^[A-Za-z0-9+/]{43}=$/.test(l)) throw new InputInvalid('proof lines must be base64 hashes');
    return Buffer.from(l, 'base64');
  });
  return { oldSize: Number(m[1]), proof, note: body.slice(split + 2) };
}

export function formatAddCheckpointBody(oldSize: number, proof: readonly Buffer[], note: string): string {
  return `old ${oldSize}\n${proof.map((p) => p.toString('base64') + '\n').join('')}\n${note}`;
}

/** A small HTTP witness (tlog-witness add-checkpoint) on 127.0.0.1 by default. */
export async function startWitnessServer(witness: Witness, options: { host?: string; port?: number } = {}): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/vkey') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(witness.vkey + '\n');
      return;
    }
    if (req.method === 'GET' && url.pathname === '/latest') {
      const st = witness.latest(url.searchParams.get('origin') ?? '');
      if (!st) { res.writeHead(404).end('unknown log\n'); return; }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(st.checkpoint);
      return;
    }
    if (req.method !== 'POST' || url.pathname !== '/add-checkpoint') { res.writeHead(404).end('not found\n'); return; }
    const chunks: Buffer[] = [];
    let len = 0;
    req.on('data', (c: Buffer) => { len += c.length; if (len > 1 << 20) req.destroy(); else chunks.push(c); });
    req.on('end', () => {
      void (async () => {
        try {
          const { oldSize, proof, note } = parseAddCheckpointBody(Buffer.concat(chunks).toString('utf8'));
          const sig = await witness.addCheckpoint(oldSize, proof, note);
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(formatSignature(sig));
        } catch (e) {
          if (e instanceof WitnessConflict) { res.writeHead(409, { 'content-type': 'text/x.tlog.size' }).end(`${e.latestSize}\n`); return; }
          const status = e instanceof WitnessUnknownLog ? 404
            : e instanceof AuditError && (e.detail === 'AUDIT_NOTE_SIGNATURE_INVALID' || e.detail === 'AUDIT_NOTE_UNVERIFIED') ? 403
              : e instanceof AuditError && (e.detail === 'AUDIT_PROOF_INVALID' || e.detail === 'AUDIT_PROOF_LENGTH' || e.detail === 'AUDIT_PROOF_RANGE') ? 422
                : e instanceof AuditError && e.status < 500 ? 400 : 500;
          res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${e instanceof AuditError ? e.detail : 'INTERNAL'}: ${e instanceof AuditError ? e.message : 'internal error'}\n`);
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    server,
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

// ---- Owner side -------------------------------------------------------------------------

export interface WitnessClient {
  readonly name: string;
  /** The witness's cosignature vkey (type 0x04). */
  readonly vkey: string;
  addCheckpoint(oldSize: number, proof: readonly Buffer[], note: string): Promise<NoteSignature[]>;
  /** The latest checkpoint the witness cosigned for `origin` (as the log signed it), or null. */
  latest?(origin: string): Promise<string | null>;
}

export class LocalWitnessClient implements WitnessClient {
  readonly name: string;
  readonly vkey: string;
  readonly #w: Witness;
  constructor(w: Witness) { this.#w = w; this.name = w.name; this.vkey = w.vkey; }
  async addCheckpoint(oldSize: number, proof: readonly Buffer[], note: string): Promise<NoteSignature[]> {
    return [await this.#w.addCheckpoint(oldSize, proof, note)];
  }
  async latest(origin: string): Promise<string | null> { return this.#w.latest(origin)?.checkpoint ?? null; }
}

export class HttpWitnessClient implements WitnessClient {
  readonly name: string;
  readonly vkey: string;
  readonly url: string;
  constructor(url: string, vkey: string) {
    this.url = url.replace(/\/$/, '');
    this.vkey = vkey;
    this.name = parseVkey(vkey).name;
  }
  async addCheckpoint(oldSize: number, proof: readonly Buffer[], note: string): Promise<NoteSignature[]> {
    const res = await fetch(`${this.url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointBody(oldSize, proof, note), signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.status === 409) throw new WitnessConflict(Number(text.trim()));
    if (res.status !== 200) throw new AuditError('AUDIT_WITNESS_REJECTED', `witness ${this.name} answered ${res.status}: ${text.trim().slice(0, 200)}`, 502);
    return parseSignatureLines(text);
  }
  async latest(origin: string): Promise<string | null> {
    const res = await fetch(`${this.url}/latest?origin=${encodeURIComponent(origin)}`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.status === 404) return null;
    if (res.status !== 200) throw new AuditError('AUDIT_WITNESS_REJECTED', `witness ${this.name} answered ${res.status} for its latest checkpoint`, 502);
    return text;
  }
}

export interface WitnessPolicy {
  readonly witnesses: readonly WitnessClient[];
  /** How many distinct witnesses must cosign (k of n). */
  readonly quorum: number;
}

/** Minimal view of a log the owner-side publisher needs. */
export interface PublishableLog {
  checkpoint(): Promise<string>;
  consistencyProof(first: number, second?: number): { proof: string[] };
  verifiers(): NoteVerifier[];
}

/** Remembers the size each witness last cosigned (in memory; a 409 teaches the real one). */
const knownSizes = new WeakMap<WitnessClient, number>();

/**
 * Sends the log's latest checkpoint to every witness with a consistency proof from the
 * size that witness holds, and returns the checkpoint with k-of-n valid cosignatures.
 * Throws WitnessQuorumNotReached otherwise: the owner must not publish it.
 */
export async function publishCheckpoint(log: PublishableLog, policy: WitnessPolicy): Promise<string> {
  checkQuorum(policy);
  const note = await log.checkpoint();
  return cosignCheckpoint(note, log.verifiers(), (first, second) => log.consistencyProof(first, second).proof.map((p) => Buffer.from(p, 'base64')), policy);
}

export function checkQuorum(policy: WitnessPolicy): void {
  if (!Number.isSafeInteger(policy.quorum) || policy.quorum < 1 || policy.quorum > policy.witnesses.length) {
    throw new InputInvalid('witness quorum must be between 1 and the number of witnesses');
  }
}

/** Tells the publisher the size a witness is known to hold (e.g. from its latest checkpoint at start). */
export function rememberWitnessSize(w: WitnessClient, size: number): void { knownSizes.set(w, size); }

/**
 * Sends a signed checkpoint to every witness with a consistency proof from the size that
 * witness holds (`proofOf(old, size)`), and returns the note with the k-of-n valid
 * cosignatures added. Throws WitnessQuorumNotReached otherwise: it must not be published.
 */
export async function cosignCheckpoint(note: string, logVerifiers: readonly NoteVerifier[], proofOf: (first: number, second: number) => Buffer[], policy: WitnessPolicy): Promise<string> {
  checkQuorum(policy);
  const cp = openCheckpoint(note, [...logVerifiers]);
  const failures: string[] = [];
  const results = await Promise.all(policy.witnesses.map(async (w) => {
    const verifier = parseVkey(w.vkey);
    for (let attempt = 0; attempt < 2; attempt++) {
      const old = Math.min(knownSizes.get(w) ?? 0, cp.size);
      try {
        const proof = old === 0 || old === cp.size ? [] : proofOf(old, cp.size);
        const sigs = await w.addCheckpoint(old, proof, note);
        const mine = sigs.filter((s) => s.name === verifier.name && s.keyId.equals(verifier.keyId));
        openNote(addSignatures(note, mine), [verifier]);
        knownSizes.set(w, cp.size);
        return mine;
      } catch (e) {
        if (e instanceof WitnessConflict && attempt === 0 && e.latestSize <= cp.size) { knownSizes.set(w, e.latestSize); continue; }
        failures.push(`${w.name}: ${e instanceof AuditError ? e.detail : 'unreachable'}${e instanceof WitnessConflict && e.latestSize > cp.size ? ' (witness has seen a larger tree: split view or rollback)' : ''}`);
        return null;
      }
    }
    failures.push(`${w.name}: conflict persisted`);
    return null;
  }));
  const good = results.filter((r): r is NoteSignature[] => r !== null);
  if (good.length < policy.quorum) throw new WitnessQuorumNotReached(good.length, policy.quorum, failures);
  return addSignatures(note, good.flat());
}

/**
 * Client check of a published checkpoint: a valid log signature and at least `quorum`
 * valid cosignatures from distinct configured witnesses. Unknown signatures are ignored;
 * a bad signature from a known key rejects the note.
 */
export function verifyCosignedCheckpoint(note: string, logVkeys: readonly string[], witnessVkeys: readonly string[], quorum: number): VerifiedCheckpoint {
  const logVerifiers = logVkeys.map(parseVkey);
  const witnessVerifiers = witnessVkeys.map(parseVkey);
  const cp = openCheckpoint(note, logVerifiers);
  const opened = openNote(note, [...logVerifiers, ...witnessVerifiers]);
  const cosigners = new Set(opened.verifiedBy.filter((v) => witnessVerifiers.includes(v)).map((v) => v.vkey));
  if (cosigners.size < quorum) throw new WitnessQuorumNotReached(cosigners.size, quorum, []);
  return cp;
}

/**
 * Compares two checkpoints of the same log seen by different parties (two witnesses,
 * two clients). Same size with different roots, or no valid consistency proof between
 * them, is a split view. The proof (base64 hashes, smaller to larger) comes from the log.
 */
export function detectSplitView(a: string, b: string, logVkeys: readonly string[], proof: readonly string[] = []): void {
  const verifiers = logVkeys.map(parseVkey);
  const ca = openCheckpoint(a, verifiers);
  const cb = openCheckpoint(b, verifiers, ca.origin);
  const [small, large] = ca.size <= cb.size ? [ca, cb] : [cb, ca];
  if (small.size === large.size) {
    if (!small.root.equals(large.root)) throw new SplitViewDetected(`two signed checkpoints of size ${small.size} with different roots`);
    return;
  }
  try {
    verifyConsistency(small.size, large.size, small.root, large.root, proof.map((p) => Buffer.from(p, 'base64')));
  } catch {
    throw new SplitViewDetected(`checkpoints of sizes ${small.size} and ${large.size} are not consistent`);
  }
}

export { makeVerifier };
