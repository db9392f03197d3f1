/**
 * Audit receipts verified in the browser with WebCrypto, never trusting the server's word:
 *
 * - RFC 8785 (JCS) canonical JSON of the leaf; leaf hash SHA-256(0x00 || leaf) (RFC 6962 §2.1);
 * - RFC 9162 §2.1.3.2 inclusion proof from the leaf hash to the checkpoint's root;
 * - C2SP signed-note / tlog-checkpoint: Ed25519 signature of the checkpoint text by the key
 *   named in a vkey (`name+hex(keyid)+base64(0x01 || key)`), key ID = SHA-256(name || "\n" || 0x01 || key)[:4].
 *
 * Mirrors src/audit/verify.ts (verifyReceipt), which the server and the offline CLI use.
 */
export interface Receipt {
  readonly type: string; readonly origin: string; readonly index: number;
  readonly leaf: { entry: Record<string, unknown>; index: number; v: number };
  readonly proof: readonly string[]; readonly checkpoint: string;
}

export interface Verified { readonly ok: boolean; readonly steps: readonly { readonly what: string; readonly ok: boolean }[]; readonly error: string | null; readonly size: number | null }

const enc = new TextEncoder();
const b64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (b: Uint8Array): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

export function canonicalize(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('non-finite number');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalize).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalize(o[k])}`).join(',')}}`;
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', all));
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to. */
export async function rootFromInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Promise<Uint8Array> {
  if (index >= size) throw new Error(`index ${index} is not below tree size ${size}`);
  let fn = index; let sn = size - 1; let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw new Error('the proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(new Uint8Array([1]), p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn /= 2; sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(new Uint8Array([1]), r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('the proof is too short');
  return r;
}

interface Vkey { readonly name: string; readonly keyId: string; readonly key: Uint8Array }

async function parseVkey(vkey: string): Promise<Vkey> {
  // name "+" keyid "+" base64: the base64 part may itself contain "+".
  const a = vkey.indexOf('+');
  const b = vkey.indexOf('+', a + 1);
  const [name, id, k] = a > 0 && b > a ? [vkey.slice(0, a), vkey.slice(a + 1, b), vkey.slice(b + 1)] : [];
  if (!name || !id || !k) throw new Error('malformed vkey');
  const raw = b64(k);
  if (raw[0] !== 1 || raw.length !== 33) throw new Error('not an Ed25519 vkey');
  const key = raw.slice(1);
  const kid = hex((await sha256(enc.encode(`${name}\n`), new Uint8Array([1]), key)).slice(0, 4));
  if (kid !== id) throw new Error('vkey key ID does not match its key');
  return { name, keyId: id, key };
}

/** Verifies a signed checkpoint note with the given vkeys; returns size and root. */
export async function openCheckpoint(note: string, vkeys: readonly string[]): Promise<{ origin: string; size: number; root: Uint8Array }> {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint has no signature');
  const text = note.slice(0, split + 1);
  const keys = await Promise.all(vkeys.map(parseVkey));
  let verified = 0;
  for (const line of note.slice(split + 2).split('\n').filter(Boolean)) {
    if (!line.startsWith('\u2014 ')) throw new Error('malformed signature line');
    const [name, sigB64] = line.slice(2).split(' ');
    const sig = b64(sigB64 ?? '');
    const k = keys.find((x) => x.name === name && x.keyId === hex(sig.slice(0, 4)));
    if (!k) continue;
    const pub = await crypto.subtle.importKey('raw', k.key as BufferSource, { name: 'Ed25519' }, false, ['verify']);
    if (!(await crypto.subtle.verify({ name: 'Ed25519' }, pub, sig.slice(4) as BufferSource, enc.encode(text) as BufferSource))) throw new Error(`the signature of ${name} does not verify`);
    verified++;
  }
  if (verified === 0) throw new Error('no signature from a known log key');
  const [origin, size, root] = text.slice(0, -1).split('\n');
  return { origin: origin!, size: Number(size), root: b64(root ?? '') };
}

/** Verifies a receipt: checkpoint signature, then inclusion of the canonical leaf. */
export async function verifyReceipt(r: Receipt, vkeys: readonly string[]): Promise<Verified> {
  const steps: { what: string; ok: boolean }[] = [];
  try {
    const cp = await openCheckpoint(r.checkpoint, vkeys);
    steps.push({ what: `checkpoint signed by the log key (Ed25519, tree size ${cp.size})`, ok: true });
    if (cp.origin !== r.origin) throw new Error('the checkpoint is for another log');
    if (r.leaf.index !== r.index) throw new Error('the receipt index differs from the leaf index');
    const leafHash = await sha256(new Uint8Array([0]), enc.encode(canonicalize(r.leaf)));
    const root = await rootFromInclusion(r.index, cp.size, leafHash, r.proof.map(b64));
    const ok = hex(root) === hex(cp.root);
    steps.push({ what: `entry ${r.index} included in the tree (RFC 9162 proof of ${r.proof.length} hashes)`, ok });
    if (!ok) throw new Error(`the inclusion proof for entry ${r.index} does not lead to the signed root`);
    return { ok: true, steps, error: null, size: cp.size };
  } catch (e) {
    if (steps.length === 0) steps.push({ what: 'checkpoint signature', ok: false });
    return { ok: false, steps, error: (e as Error).message, size: null };
  }
}
