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
