/**
 * The SQLite anchor's off-thread advance (issue 15): the log's periodic checkpoints record
 * their anchor on a worker thread so the commit's fsync does not stall requests. It must keep
 * every promise `advance` makes: durable before it resolves, forward only, and a fork refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnchorForked, SqliteCheckpointAnchor, noteHash } from './anchor.ts';

const cp = (size: number, root: string) => ({ size, rootHash: root, noteHash: noteHash(`note ${size} ${root}`), note: `note ${size} ${root}` });

describe('the SQLite checkpoint anchor off the event loop', () => {
  it('records a checkpoint that a fresh connection reads once the promise resolves, and never moves back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-anchor-'));
    const anchor = SqliteCheckpointAnchor.open(join(dir, 'a.sqlite'), 'origin-a');
    try {
      await anchor.advanceOffThread(cp(5, 'r5'));
      const other = SqliteCheckpointAnchor.open(join(dir, 'a.sqlite'), 'origin-a');
      assert.equal(other.latest()?.size, 5);
      await anchor.advanceOffThread(cp(3, 'r3'));
      assert.equal(other.latest()?.size, 5, 'an older checkpoint does not move the anchor back');
      other.close();
    } finally { anchor.close(); rmSync(dir, { recursive: true, force: true }); }
  });

  it('refuses a second root for an anchored size, as the synchronous advance does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-anchor-'));
    const anchor = SqliteCheckpointAnchor.open(join(dir, 'a.sqlite'), 'origin-a');
    try {
      anchor.advance(cp(8, 'r8'));
      await assert.rejects(anchor.advanceOffThread(cp(8, 'forged')), (e: unknown) => e instanceof AnchorForked && /size 8/.test((e as Error).message));
      assert.equal(anchor.latest()?.rootHash, 'r8');
    } finally { anchor.close(); rmSync(dir, { recursive: true, force: true }); }
  });

  it('fails a pending record when the anchor is closed instead of leaving it hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-anchor-'));
    const anchor = SqliteCheckpointAnchor.open(join(dir, 'a.sqlite'), 'origin-a');
    try {
      const pending = anchor.advanceOffThread(cp(2, 'r2'));
      anchor.close();
      await assert.rejects(pending, /closed before the checkpoint was recorded/);
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
