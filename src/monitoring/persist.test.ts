/**
 * The detection state is written off the event loop (issue 15). Writes that overlap must not
 * tear the file or let an older state land after a newer one.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonWritesSettled, writeJson } from './persist.ts';

describe('writing the detection state off the event loop', () => {
  it('leaves the newest of many overlapping writes, whole, and no temporary file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-persist-'));
    const path = join(dir, 'monitoring-detection.json');
    try {
      const big = Array.from({ length: 5_000 }, (_, i) => ({ at: i, principal: `p${i % 7}` }));
      for (let v = 1; v <= 20; v++) writeJson(path, { version: v, events: big });
      await jsonWritesSettled();
      const saved = JSON.parse(readFileSync(path, 'utf8')) as { version: number; events: unknown[] };
      assert.equal(saved.version, 20);
      assert.equal(saved.events.length, 5_000);
      assert.equal(existsSync(`${path}.tmp`), false);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });

  it('writes the state as it was at the call, not as it is when the disk gets to it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-persist-'));
    const path = join(dir, 's.json');
    try {
      const state = { events: [1, 2, 3] };
      writeJson(path, state);
      state.events.push(4);
      await jsonWritesSettled();
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { events: [1, 2, 3] });
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
