/**
 * HMAC-SHA-256 (RFC 2104, FIPS 198-1) from precomputed key pads over node:crypto's one-shot
 * `hash`. Same output as `createHmac('sha256', key)`, about six times faster for the short
 * messages the sensitive value index MACs, because no key object is set up per call.
 * Intermediate buffers are zeroed before returning.
 */
import { hash } from 'node:crypto';

const BLOCK = 64;

export interface HmacPads {
  readonly inner: Buffer;
  readonly outer: Buffer;
}

/** K ⊕ ipad and K ⊕ opad; a key longer than the block is hashed first (RFC 2104 §2). */
export function hmacSha256Pads(key: Uint8Array): HmacPads {
  const k = key.length > BLOCK ? hash('sha256', key, 'buffer') : Buffer.from(key);
  const inner = Buffer.alloc(BLOCK, 0x36);
  const outer = Buffer.alloc(BLOCK, 0x5c);
  for (let i = 0; i < k.length; i++) {
    inner[i]! ^= k[i]!;
    outer[i]! ^= k[i]!;
  }
  k.fill(0);
  return { inner, outer };
}

export function hmacSha256(pads: HmacPads, message: Uint8Array): Buffer {
  const inner = Buffer.allocUnsafe(BLOCK + message.length);
  pads.inner.copy(inner, 0);
  inner.set(message, BLOCK);
  const innerHash = hash('sha256', inner, 'buffer');
  const outer = Buffer.allocUnsafe(BLOCK + innerHash.length);
  pads.outer.copy(outer, 0);
  innerHash.copy(outer, BLOCK);
  const mac = hash('sha256', outer, 'buffer');
  inner.fill(0);
  innerHash.fill(0);
  outer.fill(0);
  return mac;
}

export function wipePads(pads: HmacPads): void {
  pads.inner.fill(0);
  pads.outer.fill(0);
}
