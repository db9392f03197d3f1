/**
 * Store tampering is refused on open, not served: an attacker with write access to the
 * audit directory edits an entry (fixing its CRC, as anyone would) or swaps two records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync, readSync, writeSync, closeSync, fstatSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { TransparencyLog } from './log.ts';
import { verifyReceipt } from './verify.ts';
import { TEST_PASSPHRASE, record, tempDir } from './testing/fixtures.ts';

const open = (dir: string) => TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE });

/** Byte offsets and lengths of each record in entries.dat (u32 len || u32 crc || payload). */
function records(file: string): { at: number; len: number }[] {
  const b = readFileSync(file);
  const out: { at: number; len: number }[] = [];
  for (let at = 0; at < b.length;) { const len = b.readUInt32BE(at); out.push({ at, len }); at += 8 + len; }
  return out;
}

async function logOf(dir: string, n: number): Promise<void> {
  const log = open(dir);
  for (let i = 0; i < n; i++) await log.append(record(i, { purpose: 'research', decision: 'allow', errorCode: null, rowsReturned: 10 }));
  await log.checkpoint();
  await log.close();
}

function rewriteRecord(file: string, at: number, edit: (payload: Buffer) => void): void {
  const fd = openSync(file, 'r+');
  const h = Buffer.alloc(8);
  readSync(fd, h, 0, 8, at);
  const payload = Buffer.alloc(h.readUInt32BE(0));
  readSync(fd, payload, 0, payload.length, at + 8);
  edit(payload);
  h.writeUInt32BE(crc32(payload), 4);
  writeSync(fd, h, 0, 8, at);
  writeSync(fd, payload, 0, payload.length, at + 8);
  closeSync(fd);
}

test('an entry edited in place with a valid checksum is refused on open, naming the entry', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  await logOf(dir, 40);
  const file = join(dir, 'entries.dat');
  const r = records(file)[17]!;
  // "allow" → "deny!": same length, so every later offset stays valid.
  rewriteRecord(file, r.at, (p) => { const s = p.toString('latin1').replace('"decision":"allow"', '"decision":"deny!"'); p.write(s, 'latin1'); });
  assert.throws(() => open(dir), (e: Error & { detail?: string }) => e.detail === 'AUDIT_STORE_CORRUPT' && /entry 17\b/.test(e.message));
});

test('two records swapped in entries.dat are refused on open, naming the first of them', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  await logOf(dir, 40);
  const file = join(dir, 'entries.dat');
  const rs = records(file);
  const a = rs[12]!, b = rs[15]!;
  assert.equal(a.len, b.len, 'test premise: two records of the same length');
  const fd = openSync(file, 'r+');
  const ba = Buffer.alloc(8 + a.len), bb = Buffer.alloc(8 + b.len);
  readSync(fd, ba, 0, ba.length, a.at); readSync(fd, bb, 0, bb.length, b.at);
  writeSync(fd, bb, 0, bb.length, a.at); writeSync(fd, ba, 0, ba.length, b.at);
  closeSync(fd);
  assert.throws(() => open(dir), (e: Error & { detail?: string }) => e.detail === 'AUDIT_STORE_CORRUPT' && /entry 12\b/.test(e.message));
});

test('an edited entry whose derived files were deleted to hide it is still refused', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  await logOf(dir, 40);
  const file = join(dir, 'entries.dat');
  rewriteRecord(file, records(file)[3]!.at, (p) => { p.write(p.toString('latin1').replace('"decision":"allow"', '"decision":"deny!"'), 'latin1'); });
  for (const f of readdirSync(dir)) if (/^(offsets|tree-\d+)\.dat$/.test(f)) rmSync(join(dir, f));
  assert.throws(() => open(dir), (e: Error & { detail?: string }) => e.detail === 'AUDIT_STORE_CORRUPT' && /checkpoint/.test(e.message));
});

test('a damaged derived tree file is rebuilt from the verified entries, and receipts still verify', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  await logOf(dir, 40);
  const tree = join(dir, 'tree-02.dat');
  const fd = openSync(tree, 'r+');
  assert.ok(fstatSync(fd).size >= 64);
  writeSync(fd, Buffer.alloc(32, 0xab), 0, 32, 32);
  closeSync(fd);
  const log = open(dir);
  const receipt = await log.receipt('9');
  assert.equal(verifyReceipt(receipt, log.verifiers()).index, 9);
  await log.close();
});

test('verifying a log of 50,000 entries on open takes bounded time', async (t) => {
  const { dir, cleanup } = tempDir(); t.after(cleanup);
  const log = TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE });
  await Promise.all(Array.from({ length: 50_000 }, (_, i) => log.append(record(i))));
  await log.close();
  const t0 = performance.now();
  const again = open(dir);
  const ms = performance.now() - t0;
  assert.equal(again.size, 50_000);
  await again.close();
  t.diagnostic(`open with verification of 50,000 entries: ${ms.toFixed(0)} ms`);
  assert.ok(ms < 10_000, `open took ${ms} ms`);
});
