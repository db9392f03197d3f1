/**
 * CLI subcommands for the audit log. Each function takes already-parsed arguments (a
 * plain object), writes human-readable output (or JSON with `json: true`) to `out`, and
 * returns the process exit code: 0 success / verified, 1 verification failed,
 * 2 usage or input error. Errors print their stable code, never secrets.
 *
 * Where the log comes from (tail, export, proof): `dir` opens the log directory directly
 * (only while no server holds it: the store is locked by one process), or `url` talks to
 * a running server's /v1/audit API (`token` or GATEHOUSE_TOKEN becomes a Bearer token).
 * Key passphrase for `dir`: GATEHOUSE_KEY_PASSPHRASE (or `demo: true` for the demo one).
 *
 *   audit tail          { dir | url, token?, limit = 20, json? }
 *   audit keys          { dir | url, token? }                      prints the log's vkeys
 *   audit export        { dir | url, token?, output? (file; default out), principal?, pseudonym?,
 *                         dataset?, decision?, purpose?, action?, from?, to?, proofs = true }
 *   audit proof         { dir | url, token?, index?, size?, first?, second?, json? }
 *                         index → inclusion proof; first (+ second) → consistency proof
 *   audit verify        { export? (file) | url, token?, publicKey: string | string[] (vkeys or
 *                         files of vkeys), trusted? (file with a checkpoint note),
 *                         saveCheckpoint? (file to store the verified checkpoint), json? }
 *   audit verify-receipt { receipt (file, or an auditId fetched from `url` with the caller's own
 *                         `token`: a partner needs no auditor rights for its own entries),
 *                         publicKey? (pinned vkeys; without it the server's /v1/audit/keys are
 *                         used and the output says so), output? (file to keep the receipt), json? }
 *   witness             { stateDir, name, logKey: vkey(s) of the log(s) to witness,
 *                         keyFile? (default <stateDir>/witness-key.json), host = 127.0.0.1,
 *                         port = 7380, signal? (AbortSignal to stop) }
 *                         passphrase for the witness key: GATEHOUSE_KEY_PASSPHRASE
 */
import { createWriteStream, mkdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { once } from 'node:events';
import { AuditError, InputInvalid } from './errors.ts';
import { TransparencyLog, type SearchFilter } from './log.ts';
import { parseVkey, parseCheckpoint, parseNote, type NoteVerifier } from './note.ts';
import { verifyExport, verifyExportFile, verifyReceipt, type VerifyReport } from './verify.ts';
import { HttpWitnessClient, Witness, startWitnessServer } from './witness.ts';
import { LogKeyring, loadOrCreateSealedEd25519, loadOrCreateSealedEd25519Async, resolvePassphrase } from './keys.ts';
import type { TransparencyLogOptions } from './log.ts';
import { createInterface } from 'node:readline';

export interface SourceArgs { readonly dir?: string; readonly url?: string; readonly token?: string; readonly demo?: boolean }

function print(out: Writable, s: string): void { out.write(s.endsWith('\n') ? s : s + '\n'); }

function fail(out: Writable, e: unknown): number {
  if (e instanceof AuditError) { print(out, `error ${e.detail}: ${e.message}`); return 2; }
  print(out, `error: ${(e as Error).message ?? String(e)}`);
  return 2;
}

function headers(args: SourceArgs): Record<string, string> {
  const token = args.token ?? process.env.GATEHOUSE_TOKEN;
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function getJson<T>(args: SourceArgs, path: string): Promise<T> {
  const res = await fetch(new URL(path, args.url), { headers: headers(args), signal: AbortSignal.timeout(60_000) });
  const body = await res.json().catch(() => ({})) as { error?: { code: string; message: string } };
  if (!res.ok) throw new AuditError(body.error?.code ?? 'AUDIT_HTTP_ERROR', body.error?.message ?? `server answered ${res.status}`, res.status);
  return body as T;
}

async function withLog<T>(args: SourceArgs, fn: (log: TransparencyLog) => Promise<T>): Promise<T> {
  if (!args.dir) throw new InputInvalid('give dir (a log directory) or url (a server)');
  const log = TransparencyLog.open(args.dir, { demo: args.demo ?? false });
  try { return await fn(log); } finally { await log.close(); }
}

/** Reads vkeys given inline or as files holding one vkey per line. */
export function loadVerifiers(publicKey: string | readonly string[] | undefined): NoteVerifier[] {
  const items = publicKey === undefined ? [] : typeof publicKey === 'string' ? [publicKey] : publicKey;
  const vkeys: string[] = [];
  for (const item of items) {
    if (existsSync(item)) vkeys.push(...readFileSync(item, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
    else vkeys.push(item);
  }
  if (vkeys.length === 0) throw new InputInvalid('give the log public key (publicKey: a vkey or a file of vkeys)');
  return vkeys.map(parseVkey);
}

function filterOf(args: Record<string, unknown>): SearchFilter | undefined {
  const f: Record<string, unknown> = {};
  for (const k of ['principal', 'pseudonym', 'dataset', 'decision', 'purpose', 'action', 'from', 'to'] as const) if (typeof args[k] === 'string') f[k] = args[k];
  return Object.keys(f).length > 0 ? (f as SearchFilter) : undefined;
}

function entryLine(index: number, e: { time: string; decision: string; action: string; principal: string | null; datasets: readonly string[]; purpose: string | null }): string {
  return `${index}\t${e.time}\t${e.decision}\t${e.action}\t${e.principal ?? '-'}\t${e.datasets.join(',') || '-'}\t${e.purpose ?? '-'}`;
}

export async function auditTail(args: SourceArgs & { limit?: number; json?: boolean }, out: Writable): Promise<number> {
  try {
    const limit = args.limit ?? 20;
    let hits: { index: number; entry: Parameters<typeof entryLine>[1] }[];
    if (args.url) {
      const cp = await getJson<{ size: number }>(args, '/v1/audit/checkpoint');
      const from = Math.max(0, cp.size - limit);
      hits = (await getJson<{ entries: typeof hits }>(args, `/v1/audit/entries?fromIndex=${from}&limit=${limit}`)).entries;
    } else {
      hits = await withLog(args, async (log) => log.search({ fromIndex: Math.max(0, log.size - limit), limit }));
    }
    for (const h of hits) print(out, args.json ? JSON.stringify(h) : entryLine(h.index, h.entry));
    return 0;
  } catch (e) { return fail(out, e); }
}

export async function auditKeys(args: SourceArgs, out: Writable): Promise<number> {
  try {
    const keys = args.url ? await getJson<{ vkeys: string[] }>(args, '/v1/audit/keys') : await withLog(args, async (log) => log.publicKeys());
    for (const k of keys.vkeys) print(out, k);
    return 0;
  } catch (e) { return fail(out, e); }
}

export async function auditExport(args: SourceArgs & { output?: string; proofs?: boolean } & Record<string, unknown>, out: Writable): Promise<number> {
  try {
    const target: Writable = args.output ? createWriteStream(args.output) : out;
    const filter = filterOf(args);
    if (args.url) {
      const qs = new URLSearchParams(Object.entries({ ...(filter ?? {}), ...(args.proofs === false ? { proofs: 'false' } : {}) }) as [string, string][]);
      const res = await fetch(new URL(`/v1/audit/export?${qs}`, args.url), { headers: headers(args) });
      if (!res.ok || !res.body) throw new AuditError('AUDIT_HTTP_ERROR', `server answered ${res.status}`, res.status);
      for await (const chunk of Readable.fromWeb(res.body as import('node:stream/web').ReadableStream)) {
        if (!target.write(chunk)) await once(target, 'drain');
      }
    } else {
      await withLog(args, (log) => log.export(target, { ...(filter ? { filter } : {}), proofs: args.proofs ?? true }));
    }
    if (args.output) { target.end(); await once(target, 'finish'); }
    return 0;
  } catch (e) { return fail(out, e); }
}

export async function auditProof(args: SourceArgs & { index?: number; size?: number; first?: number; second?: number; json?: boolean }, out: Writable): Promise<number> {
  try {
    let result: unknown;
    if (args.index !== undefined) {
      const q = `index=${args.index}${args.size !== undefined ? `&size=${args.size}` : ''}`;
      result = args.url ? await getJson(args, `/v1/audit/proof/inclusion?${q}`)
        : await withLog(args, async (log) => { await log.checkpoint(); return log.inclusionProof(args.index!, args.size); });
    } else if (args.first !== undefined) {
      const q = `first=${args.first}${args.second !== undefined ? `&second=${args.second}` : ''}`;
      result = args.url ? await getJson(args, `/v1/audit/proof/consistency?${q}`)
        : await withLog(args, async (log) => { await log.checkpoint(); return log.consistencyProof(args.first!, args.second); });
    } else {
      throw new InputInvalid('give index (inclusion proof) or first (consistency proof)');
    }
    print(out, JSON.stringify(result, null, args.json ? 0 : 2));
    return 0;
  } catch (e) { return fail(out, e); }
}

function report(out: Writable, r: VerifyReport, json: boolean | undefined): number {
  if (json) { print(out, JSON.stringify(r)); return r.ok ? 0 : 1; }
  if (r.ok) print(out, `OK: ${r.entries} entries verified against the signed checkpoint of ${r.origin} at size ${r.size}${r.complete ? '' : ' (partial export)'}`);
  else {
    print(out, `FAILED: ${r.problems.length} problem(s)`);
    for (const p of r.problems) print(out, `  ${p.kind}${p.index !== undefined ? ` entry ${p.index}` : ''}: ${p.message}`);
  }
  return r.ok ? 0 : 1;
}

export async function auditVerify(args: { export?: string; url?: string; token?: string; publicKey?: string | string[]; trusted?: string; saveCheckpoint?: string; json?: boolean }, out: Writable): Promise<number> {
  try {
    const verifiers = loadVerifiers(args.publicKey);
    const trusted = args.trusted ? readFileSync(args.trusted, 'utf8') : undefined;
    let r: VerifyReport;
    if (args.export) {
      r = await verifyExportFile(args.export, { verifiers, ...(trusted ? { trusted } : {}) });
    } else if (args.url) {
      const res = await fetch(new URL('/v1/audit/export', args.url), { headers: headers(args) });
      if (!res.ok || !res.body) throw new AuditError('AUDIT_HTTP_ERROR', `server answered ${res.status}`, res.status);
      const rl = createInterface({ input: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), crlfDelay: Infinity });
      r = await verifyExport(rl, { verifiers, ...(trusted ? { trusted } : {}) });
    } else {
      throw new InputInvalid('give export (a file) or url (a server)');
    }
    if (r.ok && args.saveCheckpoint && r.checkpoint) writeFileSync(args.saveCheckpoint, r.checkpoint);
    return report(out, r, args.json);
  } catch (e) { return fail(out, e); }
}

export async function auditVerifyReceipt(args: SourceArgs & { receipt?: string; publicKey?: string | string[]; output?: string; json?: boolean }, out: Writable): Promise<number> {
  try {
    if (!args.receipt) throw new InputInvalid('give the receipt file, or an audit id and the server url');
    let receipt: unknown;
    let pinned = true;
    let verifiers: NoteVerifier[];
    if (existsSync(args.receipt)) {
      verifiers = loadVerifiers(args.publicKey);
      try { receipt = JSON.parse(readFileSync(args.receipt, 'utf8')); } catch { throw new InputInvalid('receipt is not a readable JSON file'); }
    } else if (/^(0|[1-9][0-9]{0,15})$/.test(args.receipt) && args.url) {
      // The partner's own credential fetches its own receipt; verification below is offline.
      receipt = await getJson<unknown>(args, `/v1/audit/receipt/${args.receipt}`);
      if (args.output) writeFileSync(args.output, JSON.stringify(receipt, null, 2) + '\n');
      pinned = args.publicKey !== undefined;
      verifiers = pinned ? loadVerifiers(args.publicKey) : (await getJson<{ vkeys: string[] }>(args, '/v1/audit/keys')).vkeys.map(parseVkey);
    } else {
      throw new InputInvalid(`no receipt file ${JSON.stringify(args.receipt)}; to fetch one give an audit id and the server url`);
    }
    try {
      const r = verifyReceipt(receipt, verifiers);
      const note = pinned ? '' : ' — log key taken from the server: pin it with --public-key to rule out a false server';
      if (args.json) print(out, JSON.stringify({ ok: true, index: r.index, size: r.checkpoint.size, origin: r.checkpoint.origin, pinnedKey: pinned }));
      else print(out, `OK: entry ${r.index} is included in ${r.checkpoint.origin} at tree size ${r.checkpoint.size} (checkpoint signed by ${r.checkpoint.signedBy.map((v) => v.vkey.split('+')[1]).join(', ')})${note}`);
      return 0;
    } catch (e) {
      if (e instanceof AuditError && e.detail !== 'AUDIT_INPUT_INVALID') {
        print(out, args.json ? JSON.stringify({ ok: false, code: e.detail, message: e.message }) : `FAILED ${e.detail}: ${e.message}`);
        return 1;
      }
      throw e;
    }
  } catch (e) { return fail(out, e); }
}

export async function witnessCommand(args: { stateDir?: string; name?: string; logKey?: string | string[]; keyFile?: string; host?: string; port?: number; signal?: AbortSignal; demo?: boolean }, out: Writable): Promise<number> {
  try {
    if (!args.stateDir || !args.name) throw new InputInvalid('give stateDir and name');
    const logVerifiers = loadVerifiers(args.logKey);
    const origins = new Map<string, string[]>();
    for (const v of logVerifiers) origins.set(v.name, [...(origins.get(v.name) ?? []), v.vkey]);
    const passphrase = resolvePassphrase(undefined, args.demo ?? false);
    mkdirSync(args.stateDir, { recursive: true, mode: 0o700 });
    const key = loadOrCreateSealedEd25519(args.keyFile ?? join(args.stateDir, 'witness-key.json'), passphrase, 'witness-key');
    const witness = new Witness({ name: args.name, privateKey: key, stateDir: args.stateDir, logs: [...origins].map(([origin, vkeys]) => ({ origin, vkeys })) });
    const server = await startWitnessServer(witness, { host: args.host ?? '127.0.0.1', port: args.port ?? 7380 });
    print(out, `witness ${args.name} listening on ${server.url}`);
    print(out, `witness vkey: ${witness.vkey}`);
    print(out, `witnessing: ${[...origins.keys()].join(', ')}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      args.signal?.addEventListener('abort', stop, { once: true });
      if (!args.signal) { process.once('SIGINT', stop); process.once('SIGTERM', stop); }
    });
    await server.close();
    witness.close();
    return 0;
  } catch (e) { return fail(out, e); }
}

/**
 * `serve --witness URL --witness-key VKEY [--witness URL --witness-key VKEY ...] [--witness-quorum K]`
 * as TransparencyLog options (pass them to TransparencyLog.start). Witnesses and keys pair up
 * in order; the key is the witness's cosignature vkey (`gatehouse witness` prints it), pinned
 * by the operator, never fetched. Quorum defaults to every witness.
 */
export function witnessOptions(urls: readonly string[] = [], keys: readonly string[] = [], quorum?: string | number): Pick<TransparencyLogOptions, 'witnesses' | 'witnessQuorum'> {
  if (urls.length !== keys.length) throw new InputInvalid('give one --witness-key (the witness vkey) per --witness URL, in the same order');
  if (urls.length === 0) {
    if (quorum !== undefined) throw new InputInvalid('--witness-quorum needs at least one --witness');
    return {};
  }
  for (const u of urls) if (!/^https?:\/\//.test(u)) throw new InputInvalid('--witness must be an http(s) URL');
  const k = quorum === undefined ? urls.length : Number(quorum);
  if (!Number.isSafeInteger(k) || k < 1 || k > urls.length) throw new InputInvalid(`--witness-quorum must be between 1 and ${urls.length}`);
  return { witnesses: urls.map((url, i) => ({ url, key: parseVkey(keys[i]!).vkey })), witnessQuorum: k };
}

/**
 * The demo's one local witness: a `gatehouse witness` server in this process on 127.0.0.1,
 * with its own state directory and sealed key, configured for the log in `auditDir` (whose
 * signing key it reads, creating it on first run). Returns the TransparencyLog options that
 * make the log publish only checkpoints this witness cosigned.
 */
export async function startLocalWitness(args: { auditDir: string; stateDir: string; demo?: boolean; passphrase?: string; origin?: string; port?: number }): Promise<{ url: string; vkey: string; options: Pick<TransparencyLogOptions, 'witnesses' | 'witnessQuorum'>; close(): Promise<void> }> {
  const origin = args.origin ?? 'gatehouse.local/audit';
  const passphrase = resolvePassphrase(args.passphrase, args.demo ?? false);
  mkdirSync(args.auditDir, { recursive: true });
  mkdirSync(args.stateDir, { recursive: true, mode: 0o700 });
  // The log's public keys need no passphrase; the witness key's scrypt runs on the thread pool.
  const [vkeys, key] = await Promise.all([
    LogKeyring.verifierKeys(join(args.auditDir, 'keys'), origin, passphrase),
    loadOrCreateSealedEd25519Async(join(args.stateDir, 'witness-key.json'), passphrase, 'witness-key'),
  ]);
  const witness = new Witness({ name: 'witness.local/demo', privateKey: key, stateDir: args.stateDir, logs: [{ origin, vkeys }] });
  try {
    const server = await startWitnessServer(witness, { host: '127.0.0.1', port: args.port ?? 0 });
    return {
      url: server.url, vkey: witness.vkey,
      options: { witnesses: [new HttpWitnessClient(server.url, witness.vkey)], witnessQuorum: 1 },
      close: async () => { await server.close(); witness.close(); },
    };
  } catch (e) {
    witness.close();
    throw e;
  }
}

export { parseCheckpoint, parseNote };
