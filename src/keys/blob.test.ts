import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blobKeyId, decryptFile, decryptFileTo, encryptFile, open, parseHeader, seal } from './blob.ts';

const KEY = randomBytes(32);
const CS = 1024; // small chunks so tests cross many chunk boundaries

function dir(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-blob-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('sealed data round-trips for empty, sub-chunk, exact-multiple and multi-chunk plaintexts, and the ciphertext hides it', () => {
  for (const n of [0, 1, CS - 1, CS, 3 * CS, 3 * CS + 7]) {
    const plain = randomBytes(n);
    const blob = seal(plain, KEY, 'dk_test', { chunkSize: CS });
    assert.deepEqual(open(blob, KEY), plain, `length ${n}`);
    assert.equal(parseHeader(blob).keyId, 'dk_test');
  }
  const text = Buffer.from('patient 123-45-6789 has diabetes; '.repeat(100));
  assert.equal(seal(text, KEY, 'dk_test').includes(Buffer.from('123-45-6789')), false);
  // Same plaintext twice: different ciphertexts (random nonce prefix).
  assert.notDeepEqual(seal(text, KEY, 'dk_test'), seal(text, KEY, 'dk_test'));
});

test('every kind of tampering is a clear CIPHERTEXT_TAMPERED error naming the chunk, never partial plaintext', () => {
  const plain = randomBytes(4 * CS + 100);
  const blob = seal(plain, KEY, 'dk_a', { chunkSize: CS });
  const h = parseHeader(blob);
  const rec = CS + 16;
  const chunk = (i: number) => blob.subarray(h.length + i * rec, h.length + (i + 1) * rec);
  const flip = (at: number) => { const b = Buffer.from(blob); b[at]! ^= 0x01; return b; };
  const cases: [string, Buffer, number | null][] = [
    ['a flipped byte in chunk 2', flip(h.length + 2 * rec + 5), 2],
    ['a flipped tag byte in the last chunk', flip(blob.length - 1), 4],
    ['a flipped bit in the header key id (header is authenticated)', flip(h.length - 1), 0],
    ['chunks 1 and 2 swapped', Buffer.concat([blob.subarray(0, h.length), chunk(0), chunk(2), chunk(1), blob.subarray(h.length + 3 * rec)]), 1],
    ['truncated at a chunk boundary (last chunk dropped)', blob.subarray(0, h.length + 4 * rec), 3],
    ['truncated inside the last chunk', blob.subarray(0, blob.length - 10), 4],
  ];
  // Spliced: chunk 1 from another blob under the same key.
  const other = seal(randomBytes(4 * CS + 100), KEY, 'dk_a', { chunkSize: CS });
  const oh = parseHeader(other);
  const spliced = Buffer.from(blob);
  other.subarray(oh.length + rec, oh.length + 2 * rec).copy(spliced, h.length + rec);
  cases.push(['chunk 1 spliced from another blob', spliced, 1]);
  for (const [label, bad, idx] of cases) {
    assert.throws(() => open(bad, KEY, { name: 'r1.ghb' }), (e: any) => {
      assert.equal(e.detail, 'CIPHERTEXT_TAMPERED', label);
      assert.equal(e.chunk, idx, label);
      assert.match(e.message, /^r1\.ghb: /);
      return true;
    }, label);
  }
  assert.throws(() => open(blob, randomBytes(32)), { detail: 'CIPHERTEXT_TAMPERED' });
  assert.throws(() => open(Buffer.from('PAR1 not a blob at all, sorry'), KEY), { detail: 'CIPHERTEXT_MALFORMED' });
  assert.throws(() => open(blob, KEY, { expectedKeyId: 'dk_b' }), { detail: 'CIPHERTEXT_KEY_MISMATCH' });
  assert.throws(() => open(blob, Buffer.alloc(16)), { detail: 'KEY_INPUT_INVALID' });
});

test('files are encrypted in chunks to a 0600 file and decrypted back; a tampered file leaves no plaintext behind', async (t) => {
  const d = dir(t);
  const src = join(d, 'result.csv');
  const plain = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `${i},name-${i},${i * 3}\n`).join(''));
  writeFileSync(src, plain);
  const enc = join(d, 'result.ghb');
  const info = await encryptFile(src, enc, KEY, 'dk_file', { chunkSize: 4096 });
  assert.equal(statSync(enc).mode & 0o777, 0o600);
  assert.equal(info.bytes, plain.length);
  assert.equal(info.plaintextSha256, createHash('sha256').update(plain).digest('hex'));
  assert.equal(info.ciphertextSha256, createHash('sha256').update(readFileSync(enc)).digest('hex'));
  assert.equal(readFileSync(enc).includes(Buffer.from('name-1234')), false);
  assert.equal(await blobKeyId(enc), 'dk_file');
  assert.deepEqual(await decryptFile(enc, KEY), plain);
  assert.deepEqual(await decryptFile(enc, async (id) => { assert.equal(id, 'dk_file'); return KEY; }), plain);
  // In-memory and file formats are the same.
  assert.deepEqual(open(readFileSync(enc), KEY), plain);
  const out = join(d, 'out.csv');
  assert.equal((await decryptFileTo(enc, out, KEY)).bytes, plain.length);
  assert.deepEqual(readFileSync(out), plain);

  // Tamper with the middle of the file: decryptFileTo refuses and leaves nothing at the destination.
  const bad = Buffer.from(readFileSync(enc));
  bad[Math.floor(bad.length / 2)]! ^= 0x80;
  writeFileSync(enc, bad);
  const out2 = join(d, 'out2.csv');
  await assert.rejects(decryptFileTo(enc, out2, KEY), (e: any) => e.detail === 'CIPHERTEXT_TAMPERED' && e.file === 'result.ghb' && typeof e.chunk === 'number');
  assert.equal(existsSync(out2), false);
  assert.deepEqual(readdirSync(d).filter((f) => f.endsWith('.tmp')), []);
  await assert.rejects(decryptFile(enc, KEY), { detail: 'CIPHERTEXT_TAMPERED' });
});

test('an empty file encrypts to an authenticated empty blob', async (t) => {
  const d = dir(t);
  writeFileSync(join(d, 'empty'), '');
  await encryptFile(join(d, 'empty'), join(d, 'empty.ghb'), KEY, 'dk_e');
  assert.equal((await decryptFile(join(d, 'empty.ghb'), KEY)).length, 0);
  // Dropping the only (final) chunk is detected as truncation.
  const blob = readFileSync(join(d, 'empty.ghb'));
  writeFileSync(join(d, 'empty.ghb'), blob.subarray(0, parseHeader(blob).length));
  await assert.rejects(decryptFile(join(d, 'empty.ghb'), KEY), { detail: 'CIPHERTEXT_TAMPERED' });
});
