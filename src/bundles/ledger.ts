/**
 * The receiving site's record of what it imported: per sender, the last sequence number and
 * the bundle ids seen. A bundle is accepted only with the next number (last + 1): a repeat is
 * a replay, a larger number means one is missing (out of order). The file is rewritten
 * atomically (write, fsync, rename), and a bundle counts as imported only once this record
 * says so, so a crash mid-import never lets the same bundle in twice.
 *
 * The sending site keeps the same file for the numbers it issued (`next`).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { BundleRejected } from './errors.ts';

interface LedgerJson {
  received: Record<string, { last: number; ids: string[] }>;
  sent: Record<string, number>;
}

export class BundleLedger {
  readonly #file: string;
  #j: LedgerJson;

  constructor(file: string) {
    this.#file = file;
    this.#j = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as LedgerJson : { received: {}, sent: {} };
  }

  /** The next sequence number to send to `recipient` (recorded). */
  next(recipient: string): number {
    const n = (this.#j.sent[recipient] ?? 0) + 1;
    this.#j.sent[recipient] = n;
    this.#save();
    return n;
  }

  /** Throws unless `sequence` is exactly the next one from `sender` and `bundleId` is new. */
  check(sender: string, sequence: number, bundleId?: string): void {
    const r = this.#j.received[sender] ?? { last: 0, ids: [] };
    if ((bundleId !== undefined && r.ids.includes(bundleId)) || sequence <= r.last) {
      throw new BundleRejected(`bundle ${sequence} from "${sender}" was already imported (replay); the next expected is ${r.last + 1}`, 'BUNDLE_REPLAYED');
    }
    if (sequence !== r.last + 1) {
      throw new BundleRejected(`bundle ${sequence} from "${sender}" is out of order: import bundle ${r.last + 1} first`, 'BUNDLE_OUT_OF_ORDER');
    }
  }

  accept(sender: string, sequence: number, bundleId: string): void {
    this.check(sender, sequence, bundleId);
    const r = this.#j.received[sender] ?? { last: 0, ids: [] };
    this.#j.received[sender] = { last: sequence, ids: [...r.ids, bundleId].slice(-10_000) };
    this.#save();
  }

  #save(): void {
    mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
    const tmp = `${this.#file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try { writeSync(fd, JSON.stringify(this.#j)); fsyncSync(fd); } finally { closeSync(fd); }
    renameSync(tmp, this.#file);
  }
}
