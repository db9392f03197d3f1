/**
 * The wire form of secure-aggregation messages for the node-to-node layer (JSON bodies of
 * signed federation envelopes): byte fields as base64url, the masked vector as base64url of
 * its little-endian words. Decoding checks every field's type and size, so a malformed
 * message is REQUEST_INVALID before any protocol code sees it (invariant 10). `rawBytes`
 * gives the size a binary encoding needs: the figure the benchmark's communication ratio uses.
 */
import { FlError } from '../errors.ts';
import type { AdvertiseMsg, ConsistencyMsg, MaskedMsg, ShareMsg, UnmaskMsg, UnmaskRequest } from './messages.ts';

const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64url');
const MAX_FIELD = 1 << 30;

function bad(what: string): never {
  throw new FlError('FL_PARAMETERS_INVALID', `malformed secure-aggregation message: ${what}`);
}
function str(o: any, k: string, max = 256): string {
  const v = o?.[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) bad(`${k} must be a string of 1–${max} characters`);
  return v;
}
function bytes(o: any, k: string, exact?: number): Uint8Array {
  const v = o?.[k];
  if (typeof v !== 'string' || v.length > MAX_FIELD || !/^[A-Za-z0-9_-]*$/.test(v)) bad(`${k} must be base64url`);
  const b = new Uint8Array(Buffer.from(v, 'base64url'));
  if (exact !== undefined && b.length !== exact) bad(`${k} must be ${exact} bytes`);
  return b;
}
function list(o: any, k: string, max: number): any[] {
  const v = o?.[k];
  if (!Array.isArray(v) || v.length > max) bad(`${k} must be a list of at most ${max}`);
  return v;
}

export const wire = {
  advertise: (m: AdvertiseMsg) => ({ session: m.session, from: m.from, cPk: b64(m.cPk), sPk: b64(m.sPk), sig: b64(m.sig) }),
  share: (m: ShareMsg) => ({ session: m.session, from: m.from, bCommit: b64(m.bCommit), shares: m.shares.map((s) => ({ to: s.to, ct: b64(s.ct) })), sig: b64(m.sig) }),
  incoming: (xs: readonly { from: string; to: string; ct: Uint8Array }[]) => xs.map((x) => ({ from: x.from, to: x.to, ct: b64(x.ct) })),
  masked: (m: MaskedMsg) => ({ session: m.session, from: m.from, y: b64(new Uint8Array(m.y.buffer, m.y.byteOffset, m.y.byteLength)), sig: b64(m.sig) }),
  consistency: (m: ConsistencyMsg) => ({ session: m.session, from: m.from, sig: b64(m.sig) }),
  unmaskRequest: (r: UnmaskRequest) => ({ survivors: [...r.survivors], signatures: r.signatures.map(wire.consistency) }),
  unmask: (m: UnmaskMsg) => ({ session: m.session, from: m.from, shares: m.shares.map((s) => ({ of: s.of, kind: s.kind, share: b64(s.share) })), sig: b64(m.sig) }),
};

export const unwire = {
  advertise: (o: any): AdvertiseMsg => ({ session: str(o, 'session'), from: str(o, 'from'), cPk: bytes(o, 'cPk', 32), sPk: bytes(o, 'sPk', 32), sig: bytes(o, 'sig', 64) }),
  advertiseList: (o: any): AdvertiseMsg[] => list(o, 'adverts', 256).map(unwire.advertise),
  share: (o: any): ShareMsg => ({
    session: str(o, 'session'), from: str(o, 'from'), bCommit: bytes(o, 'bCommit', 32), sig: bytes(o, 'sig', 64),
    shares: list(o, 'shares', 256).map((s) => ({ to: str(s, 'to'), ct: bytes(s, 'ct') })),
  }),
  incoming: (o: any) => list(o, 'shares', 256).map((s) => ({ from: str(s, 'from'), to: str(s, 'to'), ct: bytes(s, 'ct') })),
  masked: (o: any, length: number): MaskedMsg => {
    const y = bytes(o, 'y', length * 4);
    const words = new Uint32Array(length);
    new Uint8Array(words.buffer).set(y);
    return { session: str(o, 'session'), from: str(o, 'from'), y: words, sig: bytes(o, 'sig', 64) };
  },
  consistency: (o: any): ConsistencyMsg => ({ session: str(o, 'session'), from: str(o, 'from'), sig: bytes(o, 'sig', 64) }),
  unmaskRequest: (o: any): UnmaskRequest => ({ survivors: list(o, 'survivors', 10_000).map((_, i, a) => str(a, String(i))), signatures: list(o, 'signatures', 10_000).map(unwire.consistency) }),
  survivors: (o: any): string[] => list(o, 'survivors', 10_000).map((_, i, a) => str(a, String(i))),
  unmask: (o: any): UnmaskMsg => ({
    session: str(o, 'session'), from: str(o, 'from'), sig: bytes(o, 'sig', 64),
    shares: list(o, 'shares', 256).map((s) => {
      const kind = str(s, 'kind');
      if (kind !== 'b' && kind !== 's') bad("kind must be 'b' or 's'");
      return { of: str(s, 'of'), kind, share: bytes(s, 'share', 33) };
    }),
  }),
};

/** Bytes a binary encoding of a message needs: every byte field at its size, ids and session as UTF-8. */
export function rawBytes(m: unknown): number {
  if (m instanceof Uint8Array || m instanceof Uint32Array) return m.byteLength;
  if (typeof m === 'string') return Buffer.byteLength(m);
  if (Array.isArray(m)) return m.reduce((s: number, x) => s + rawBytes(x), 0);
  if (m && typeof m === 'object') return Object.values(m).reduce((s: number, x) => s + rawBytes(x), 0);
  return 0;
}
