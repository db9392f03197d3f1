/**
 * The PSI message format: compact binary, because the points dominate the bytes on the wire
 * (the benchmark's budget is 100 MB for 1M × 1M). One message is
 *
 *   "GPSI" | version u8 | type u8 | mode u8 | session id (16 bytes) | seq u32 | last u8 |
 *   section count u8 | per section: item size u16, item count u32, items
 *
 * all integers big-endian. A reader checks every length against the buffer before it reads,
 * so a truncated or inflated message is refused whole (invariant 10).
 */
import { PsiError } from './errors.ts';

export const MESSAGE_TYPES = { hello: 1, reply: 2, sum: 3, result: 4 } as const;
export type MessageType = keyof typeof MESSAGE_TYPES;
export const MODES = { cardinality: 1, intersection: 2, sum: 3 } as const;
export type PsiMode = keyof typeof MODES;

export interface Section {
  readonly itemSize: number;
  readonly items: Uint8Array;
}

export interface PsiMessage {
  readonly type: MessageType;
  readonly mode: PsiMode;
  readonly sessionId: Uint8Array;
  readonly seq: number;
  readonly last: boolean;
  readonly sections: readonly Section[];
}

const MAGIC = [0x47, 0x50, 0x53, 0x49];
const VERSION = 1;
const HEADER = 4 + 1 + 1 + 1 + 16 + 4 + 1 + 1;

function lookup<T extends Record<string, number>>(table: T, value: number, what: string): keyof T {
  for (const [k, v] of Object.entries(table)) if (v === value) return k as keyof T;
  throw new PsiError('PSI_MESSAGE_MALFORMED', `Unknown PSI ${what} ${value}`);
}

export function encodeMessage(m: PsiMessage): Uint8Array {
  if (m.sessionId.length !== 16) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A PSI session id is 16 bytes');
  let size = HEADER;
  for (const s of m.sections) size += 6 + s.items.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = MESSAGE_TYPES[m.type];
  out[6] = MODES[m.mode];
  out.set(m.sessionId, 7);
  view.setUint32(23, m.seq);
  out[27] = m.last ? 1 : 0;
  out[28] = m.sections.length;
  let off = HEADER;
  for (const s of m.sections) {
    if (s.itemSize <= 0 || s.items.length % s.itemSize !== 0) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A PSI section is not a whole number of items');
    view.setUint16(off, s.itemSize);
    view.setUint32(off + 2, s.items.length / s.itemSize);
    out.set(s.items, off + 6);
    off += 6 + s.items.length;
  }
  return out;
}

export function decodeMessage(bytes: Uint8Array): PsiMessage {
  if (bytes.length < HEADER) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A PSI message is shorter than its header');
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw new PsiError('PSI_MESSAGE_MALFORMED', 'Not a PSI message');
  if (bytes[4] !== VERSION) throw new PsiError('PSI_MESSAGE_MALFORMED', `Unsupported PSI message version ${bytes[4]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = lookup(MESSAGE_TYPES, bytes[5]!, 'message type');
  const mode = lookup(MODES, bytes[6]!, 'mode');
  const sessionId = bytes.slice(7, 23);
  const seq = view.getUint32(23);
  const lastByte = bytes[27]!;
  if (lastByte > 1) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A PSI message has an invalid last flag');
  const count = bytes[28]!;
  const sections: Section[] = [];
  let off = HEADER;
  for (let i = 0; i < count; i++) {
    if (off + 6 > bytes.length) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A PSI message is truncated');
    const itemSize = view.getUint16(off);
    const items = view.getUint32(off + 2);
    const len = itemSize * items;
    if (itemSize === 0 || off + 6 + len > bytes.length) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A PSI message is truncated');
    sections.push({ itemSize, items: bytes.subarray(off + 6, off + 6 + len) });
    off += 6 + len;
  }
  if (off !== bytes.length) throw new PsiError('PSI_MESSAGE_MALFORMED', 'A PSI message has trailing bytes');
  return { type, mode, sessionId, seq, last: lastByte === 1, sections };
}
