/**
 * PostgreSQL protocol v3 messages: strict decoding of what a frontend sends after start-up
 * and encoding of what the backend answers. Every read is bounds-checked: a truncated or
 * inconsistent message throws ProtocolViolation (the connection then ends with SQLSTATE
 * 08P01), never an out-of-range read or a half-understood command.
 *
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { GatehouseError } from '../errors.ts';

/** PROTOCOL_VIOLATION: its SQLSTATE (08P01) comes from the one table in src/errors.ts. */
export class ProtocolViolation extends GatehouseError {
  declare readonly code: 'PROTOCOL_VIOLATION';
  constructor(message: string) {
    super('PROTOCOL_VIOLATION', message);
  }
}

/** A cursor over one message body (after the type byte and length). */
export class Reader {
  readonly #buf: Buffer;
  #pos: number;
  constructor(buf: Buffer, pos = 0) {
    this.#buf = buf;
    this.#pos = pos;
  }
  get remaining(): number { return this.#buf.length - this.#pos; }
  #need(n: number, what: string): void {
    if (n < 0 || this.#pos + n > this.#buf.length) throw new ProtocolViolation(`message truncated while reading ${what}`);
  }
  int16(what = 'an Int16'): number { this.#need(2, what); const v = this.#buf.readInt16BE(this.#pos); this.#pos += 2; return v; }
  int32(what = 'an Int32'): number { this.#need(4, what); const v = this.#buf.readInt32BE(this.#pos); this.#pos += 4; return v; }
  byte(what = 'a byte'): number { this.#need(1, what); return this.#buf[this.#pos++]!; }
  cstring(what = 'a string'): string {
    const end = this.#buf.indexOf(0, this.#pos);
    if (end < 0) throw new ProtocolViolation(`message truncated while reading ${what} (no terminating NUL)`);
    const s = this.#buf.toString('utf8', this.#pos, end);
    this.#pos = end + 1;
    return s;
  }
  bytes(n: number, what = 'bytes'): Buffer { this.#need(n, what); const b = this.#buf.subarray(this.#pos, this.#pos + n); this.#pos += n; return b; }
  end(what: string): void {
    if (this.#pos !== this.#buf.length) throw new ProtocolViolation(`${what} message has ${this.#buf.length - this.#pos} unexpected trailing bytes`);
  }
}

/** Frontend messages after authentication. */
export type Frontend =
  | { readonly type: 'Query'; readonly sql: string }
  | { readonly type: 'Parse'; readonly name: string; readonly sql: string; readonly paramTypes: readonly number[] }
  | { readonly type: 'Bind'; readonly portal: string; readonly statement: string; readonly paramFormats: readonly number[]; readonly params: readonly (Buffer | null)[]; readonly resultFormats: readonly number[] }
  | { readonly type: 'Describe'; readonly kind: 'S' | 'P'; readonly name: string }
  | { readonly type: 'Execute'; readonly portal: string; readonly maxRows: number }
  | { readonly type: 'Close'; readonly kind: 'S' | 'P'; readonly name: string }
  | { readonly type: 'Sync' }
  | { readonly type: 'Flush' }
  | { readonly type: 'Terminate' }
  | { readonly type: 'Unsupported'; readonly code: string };

const MAX_PARAMS = 65_535;

/** Decodes one whole message (type byte, Int32 length, body). */
export function decodeFrontend(msg: Buffer): Frontend {
  if (msg.length < 5) throw new ProtocolViolation('message shorter than its header');
  const code = String.fromCharCode(msg[0]!);
  const len = msg.readInt32BE(1);
  if (len !== msg.length - 1) throw new ProtocolViolation('message length does not match its header');
  const r = new Reader(msg, 5);
  switch (code) {
    case 'Q': { const sql = r.cstring('the query'); r.end('Query'); return { type: 'Query', sql }; }
    case 'P': {
      const name = r.cstring('the statement name');
      const sql = r.cstring('the query');
      const n = r.int16('the parameter type count');
      if (n < 0) throw new ProtocolViolation('negative parameter type count');
      const paramTypes: number[] = [];
      for (let i = 0; i < n; i++) paramTypes.push(r.int32('a parameter type') >>> 0);
      r.end('Parse');
      return { type: 'Parse', name, sql, paramTypes };
    }
    case 'B': {
      const portal = r.cstring('the portal name');
      const statement = r.cstring('the statement name');
      const nf = r.int16('the parameter format count');
      if (nf < 0) throw new ProtocolViolation('negative parameter format count');
      const paramFormats: number[] = [];
      for (let i = 0; i < nf; i++) paramFormats.push(r.int16('a parameter format'));
      const np = r.int16('the parameter count');
      if (np < 0 || np > MAX_PARAMS) throw new ProtocolViolation('invalid parameter count');
      const params: (Buffer | null)[] = [];
      for (let i = 0; i < np; i++) {
        const l = r.int32('a parameter length');
        if (l === -1) params.push(null);
        else if (l < 0) throw new ProtocolViolation('negative parameter length');
        else params.push(r.bytes(l, 'a parameter value'));
      }
      const nr = r.int16('the result format count');
      if (nr < 0) throw new ProtocolViolation('negative result format count');
      const resultFormats: number[] = [];
      for (let i = 0; i < nr; i++) resultFormats.push(r.int16('a result format'));
      r.end('Bind');
      if (nf > 1 && nf !== np) throw new ProtocolViolation(`Bind has ${nf} parameter formats for ${np} parameters`);
      return { type: 'Bind', portal, statement, paramFormats, params, resultFormats };
    }
    case 'D': case 'C': {
      const k = String.fromCharCode(r.byte('the target kind'));
      if (k !== 'S' && k !== 'P') throw new ProtocolViolation(`invalid ${code === 'D' ? 'Describe' : 'Close'} target "${k}"`);
      const name = r.cstring('the name');
      r.end(code === 'D' ? 'Describe' : 'Close');
      return code === 'D' ? { type: 'Describe', kind: k, name } : { type: 'Close', kind: k, name };
    }
    case 'E': {
      const portal = r.cstring('the portal name');
      const maxRows = r.int32('the row limit');
      r.end('Execute');
      return { type: 'Execute', portal, maxRows: maxRows < 0 ? 0 : maxRows };
    }
    case 'S': r.end('Sync'); return { type: 'Sync' };
    case 'H': r.end('Flush'); return { type: 'Flush' };
    case 'X': return { type: 'Terminate' };
    default: return { type: 'Unsupported', code };
  }
}

// ---- backend messages --------------------------------------------------------------------

function message(code: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = code.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function cstr(s: string): Buffer { return Buffer.from(`${s.replaceAll('\u0000', '')}\u0000`, 'utf8'); }
function i16(n: number): Buffer { const b = Buffer.allocUnsafe(2); b.writeInt16BE(n); return b; }
function i32(n: number): Buffer { const b = Buffer.allocUnsafe(4); b.writeInt32BE(n | 0); return b; }

export interface FieldDescription {
  readonly name: string;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeMod?: number;
  readonly format?: 0 | 1;
}

export const enc = {
  authenticationOk: (): Buffer => message('R', i32(0)),
  parameterStatus: (name: string, value: string): Buffer => message('S', Buffer.concat([cstr(name), cstr(value)])),
  backendKeyData: (pid: number, secret: Buffer): Buffer => message('K', Buffer.concat([i32(pid), secret])),
  readyForQuery: (status: 'I' | 'T' | 'E'): Buffer => message('Z', Buffer.from(status)),
  parseComplete: (): Buffer => message('1', Buffer.alloc(0)),
  bindComplete: (): Buffer => message('2', Buffer.alloc(0)),
  closeComplete: (): Buffer => message('3', Buffer.alloc(0)),
  noData: (): Buffer => message('n', Buffer.alloc(0)),
  emptyQuery: (): Buffer => message('I', Buffer.alloc(0)),
  portalSuspended: (): Buffer => message('s', Buffer.alloc(0)),
  commandComplete: (tag: string): Buffer => message('C', cstr(tag)),
  parameterDescription: (oids: readonly number[]): Buffer => message('t', Buffer.concat([i16(oids.length), ...oids.map((o) => i32(o))])),
  rowDescription: (fields: readonly FieldDescription[]): Buffer => message('T', Buffer.concat([
    i16(fields.length),
    ...fields.flatMap((f) => [cstr(f.name), i32(0), i16(0), i32(f.typeOid), i16(f.typeSize), i32(f.typeMod ?? -1), i16(f.format ?? 0)]),
  ])),
  dataRow: (cells: readonly (Buffer | null)[]): Buffer => {
    const parts: Buffer[] = [i16(cells.length)];
    for (const c of cells) {
      if (c === null) parts.push(i32(-1));
      else parts.push(i32(c.length), c);
    }
    return message('D', Buffer.concat(parts));
  },
  /** ErrorResponse (or NoticeResponse with `notice`). Fields: S, V, C, M, D, H. */
  error: (e: { severity: 'ERROR' | 'FATAL' | 'NOTICE' | 'WARNING'; code: string; message: string; detail?: string | null; hint?: string | null }, notice = false): Buffer => {
    const parts: Buffer[] = [Buffer.from('S'), cstr(e.severity), Buffer.from('V'), cstr(e.severity), Buffer.from('C'), cstr(e.code), Buffer.from('M'), cstr(e.message)];
    if (e.detail) parts.push(Buffer.from('D'), cstr(e.detail));
    if (e.hint) parts.push(Buffer.from('H'), cstr(e.hint));
    parts.push(Buffer.from([0]));
    return message(notice ? 'N' : 'E', Buffer.concat(parts));
  },
};

/** Protocol codes of the start-up packets that carry no type byte. */
export const STARTUP = { protocol3: 196608, ssl: 80877103, gssenc: 80877104, cancel: 80877102 } as const;
