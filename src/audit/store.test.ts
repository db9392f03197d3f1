import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileStore } from './store.ts';
import { MemoryTree, hashEquals, hashLeaf } from './merkle.ts';
import { tempDir } from './testing/fixtures.ts';

const options = {
  indexOf: (payload: Buffer) => (JSON.parse(payload.toString('utf8')) as { index: number }).index,
  checkpointSizeRoot: () => { throw new Error('no checkpoint in this test'); },
};

test('string and Buffer payloads of any size are stored as UTF-8 with correct leaf hashes and tree', async (t) => {
  const { dir, cleanup } = tempDir('gh-audit-store-'); t.after(cleanup);
  let store = FileStore.open(dir, options);
  const expected: Buffer[] = [];
  const payload = (i: number, pad: string) => `{"index":${i},"pad":${JSON.stringify(pad)}}`;
  let i = 0;
  // Small ASCII, multi-byte and astral text, and records large enough to grow the batch buffer.
  for (const batch of [
    [payload(i++, 'a'), payload(i++, 'é中😀\u2028')],
    Array.from({ length: 300 }, () => payload(i++, 'x'.repeat(50))),
    [payload(i++, '€'.repeat(700_000)), Buffer.from(payload(i++, 'b'.repeat(1_500_000))), payload(i++, '')],
    Array.from({ length: 7 }, () => Buffer.from(payload(i++, 'ü'))),
  ]) {
    for (const p of batch) expected.push(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
    await store.appendBatch(batch);
  }
  const check = (s: FileStore) => {
    assert.equal(s.size, expected.length);
    for (let k = 0; k < expected.length; k++) {
      assert.ok(s.readEntry(k).equals(expected[k]!), `entry ${k}`);
      assert.ok(hashEquals(s.leafHash(k), hashLeaf(expected[k]!)), `leaf hash ${k}`);
    }
    const tree = new MemoryTree(expected.map((e) => hashLeaf(e)));
    for (const n of [1, 2, 3, 301, 302, 305, expected.length]) assert.ok(hashEquals(s.root(n), tree.root(n)), `root ${n}`);
  };
  check(store);
  await store.close();
  // Without a checkpoint, reopening rebuilds every derived file from entries.dat.
  store = FileStore.open(dir, options);
  check(store);
  await store.close();
});

test('derived data appended since the last write to its files answers reads from memory, and lands on disk byte-equal at a checkpoint', async (t) => {
  const { dir, cleanup } = tempDir('gh-audit-store-'); t.after(cleanup);
  const store = FileStore.open(dir, options);
  const expected: Buffer[] = [];
  let i = 0;
  // Many small group commits, as under concurrent load: one record or a few per batch.
  for (let b = 0; b < 200; b++) {
    const batch = Array.from({ length: 1 + (b % 4) }, () => `{"index":${i++}}`);
    for (const p of batch) expected.push(Buffer.from(p, 'utf8'));
    await store.appendBatch(batch);
  }
  const tree = new MemoryTree(expected.map((e) => hashLeaf(e)));
  const { readFileSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  // Nothing is on disk yet but entries.dat: the derived files wait for the checkpoint.
  assert.equal(statSync(join(dir, 'offsets.dat')).size, 0, 'offsets not yet written');
  for (let k = 0; k < expected.length; k += 7) {
    assert.ok(store.readEntry(k).equals(expected[k]!), `entry ${k} found through its offset in memory`);
    assert.ok(hashEquals(store.leafHash(k), hashLeaf(expected[k]!)), `leaf ${k}`);
  }
  for (const n of [1, 5, 64, 129, 300, expected.length]) assert.ok(hashEquals(store.subtreeHash(0, n), tree.root(n)), `subtree [0, ${n}) from nodes in memory`);
  store.saveCheckpoint('a note');
  const offsets = readFileSync(join(dir, 'offsets.dat'));
  assert.equal(offsets.length, expected.length * 8, 'every offset written at the checkpoint');
  const leaves = readFileSync(join(dir, 'tree-00.dat'));
  for (let k = 0; k < expected.length; k++) assert.ok(leaves.subarray(k * 32, (k + 1) * 32).equals(hashLeaf(expected[k]!)), `stored leaf ${k}`);
  for (const n of [3, 64, 257, expected.length]) assert.ok(hashEquals(store.subtreeHash(0, n), tree.root(n)), `subtree [0, ${n}) from the files`);
  await store.close();
});

test('a checkpoint whose derived files never reached the disk (power lost after the note) reopens whole: they are rebuilt from entries.dat', async (t) => {
  const { dir, cleanup } = tempDir('gh-audit-store-'); t.after(cleanup);
  const withCheckpoint = {
    indexOf: options.indexOf,
    checkpointSizeRoot: (note: string) => { const n = JSON.parse(note) as { size: number; root: string }; return { size: n.size, root: Buffer.from(n.root, 'base64') }; },
  };
  const { truncateSync, writeFileSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  let store = FileStore.open(dir, withCheckpoint);
  const expected: Buffer[] = [];
  for (let i = 0; i < 100; i++) { const p = `{"index":${i}}`; expected.push(Buffer.from(p)); await store.appendBatch([p]); }
  const tree = new MemoryTree(expected.map((e) => hashLeaf(e)));
  await store.saveCheckpointAsync(JSON.stringify({ size: 100, root: tree.root(100).toString('base64') }));
  await store.close();
  // What an unsynced page cache loses: the derived files short, or holding stale bytes.
  truncateSync(join(dir, 'offsets.dat'), 40 * 8);
  truncateSync(join(dir, 'tree-00.dat'), 0);
  const level1 = readFileSync(join(dir, 'tree-01.dat'));
  level1.fill(0, 0, 64);
  writeFileSync(join(dir, 'tree-01.dat'), level1);
  store = FileStore.open(dir, withCheckpoint);
  assert.equal(store.size, 100);
  for (const n of [1, 2, 37, 64, 100]) assert.ok(hashEquals(store.root(n), tree.root(n)), `root ${n}`);
  for (let k = 0; k < 100; k += 9) assert.ok(store.readEntry(k).equals(expected[k]!), `entry ${k}`);
  await store.close();
});
