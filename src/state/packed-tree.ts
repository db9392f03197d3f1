/**
 * An in-memory RFC 6962 Merkle tree that only grows: the hashes of every complete subtree,
 * packed per level in growable buffers (≈ 64 bytes per leaf in all), so any subtree hash —
 * and so any inclusion or consistency proof — reads O(log n) stored nodes. It mirrors the
 * tree of a log whose entries live elsewhere (PostgreSQL): the FileStore keeps the same
 * nodes in tree-LL.dat files.
 */
import { StoreCorrupt } from '../audit/errors.ts';
import { EMPTY_ROOT, HASH_SIZE, hashChildren, type SubtreeSource } from '../audit/merkle.ts';

export class PackedTree implements SubtreeSource {
  /** levels[l] holds floor(size / 2^l) node hashes, packed, in a buffer with spare room. */
  #levels: Buffer[] = [];
  #counts: number[] = [];
  #size = 0;

  get size(): number { return this.#size; }

  #push(level: number, hash: Uint8Array): number {
    while (this.#levels.length <= level) { this.#levels.push(Buffer.allocUnsafe(HASH_SIZE * 64)); this.#counts.push(0); }
    let buf = this.#levels[level]!;
    const n = this.#counts[level]!;
    if ((n + 1) * HASH_SIZE > buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, n * HASH_SIZE);
      this.#levels[level] = buf = bigger;
    }
    buf.set(hash, n * HASH_SIZE);
    this.#counts[level] = n + 1;
    return n;
  }

  node(level: number, index: number): Buffer {
    if (level >= this.#counts.length || index >= this.#counts[level]!) throw new StoreCorrupt(`tree level ${level}: missing node ${index}`);
    return Buffer.from(this.#levels[level]!.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE));
  }

  /** Appends leaf hashes (32 bytes each, packed) and the complete subtrees they close. */
  append(leafHashes: Buffer): void {
    if (leafHashes.length % HASH_SIZE !== 0) throw new StoreCorrupt('leaf hashes must be 32 bytes each');
    for (let off = 0; off < leafHashes.length; off += HASH_SIZE) {
      let hash: Buffer = leafHashes.subarray(off, off + HASH_SIZE);
      let level = 0;
      let index = this.#push(0, hash);
      while (index % 2 === 1) {
        const left = this.#levels[level]!.subarray((index - 1) * HASH_SIZE, index * HASH_SIZE);
        hash = hashChildren(left, hash);
        level++;
        index = this.#push(level, hash);
      }
      this.#size++;
    }
  }

  leafHash(index: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.#size) throw new StoreCorrupt(`entry ${index} is outside the log`);
    return this.node(0, index);
  }

  subtreeHash(start: number, end: number): Buffer {
    const n = end - start;
    if (n <= 0 || end > this.#size) throw new StoreCorrupt(`subtree [${start}, ${end}) is outside the log of size ${this.#size}`);
    let level = 0;
    while (2 ** (level + 1) <= n) level++;
    if (2 ** level === n && start % n === 0) return this.node(level, start / n);
    const k = 2 ** (2 ** level === n ? level - 1 : level);
    return hashChildren(this.subtreeHash(start, start + k), this.subtreeHash(start + k, end));
  }

  root(size: number): Buffer {
    return size === 0 ? EMPTY_ROOT : this.subtreeHash(0, size);
  }
}
