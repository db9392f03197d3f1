/**
 * Set-size padding: a PSI party reveals its set size to the peer, so each party pads its set
 * with dummy points up to a bucket. Buckets are m·2^e with m in 8..15, so the size leaks about
 * three significant bits and padding costs at most 12.5 % more work and bytes.
 *
 * A dummy is a fresh X25519 public key (a point of the prime-order subgroup, as every real
 * blinded H(x) is after cofactor clearing), so a peer cannot tell dummies from elements and
 * no dummy matches anything except with probability 2^-252.
 */
import { generateKeyPairSync } from 'node:crypto';

export function paddedSize(n: number, minimum = 16): number {
  const target = Math.max(n, minimum);
  let e = 0;
  while ((15 << e) < target) e++;
  for (let m = 8; m <= 15; m++) if (m << e >= target) return m << e;
  return 16 << e;
}

export function dummyPoints(count: number): Uint8Array {
  const out = new Uint8Array(32 * count);
  for (let i = 0; i < count; i++) {
    const jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
    out.set(Buffer.from(jwk.x!, 'base64url'), 32 * i);
  }
  return out;
}

/** Fisher–Yates over fixed-size items with a CSPRNG (crypto.randomInt). */
export function shuffleItems(items: Uint8Array, itemSize: number, randomInt: (max: number) => number): Uint8Array {
  const n = items.length / itemSize;
  const out = Uint8Array.from(items);
  const tmp = new Uint8Array(itemSize);
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    if (j === i) continue;
    tmp.set(out.subarray(i * itemSize, (i + 1) * itemSize));
    out.copyWithin(i * itemSize, j * itemSize, (j + 1) * itemSize);
    out.set(tmp, j * itemSize);
  }
  return out;
}
