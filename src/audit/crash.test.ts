import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TransparencyLog } from './log.ts';
import { openCheckpoint } from './note.ts';
import { MemoryTree, hashLeaf, hashEquals } from './merkle.ts';
import { TEST_PASSPHRASE, tempDir } from './testing/fixtures.ts';

const CHILD = fileURLToPath(new URL('./testing/crash-child.ts', import.meta.url));
const ROUNDS = Number(process.env.AUDIT_CRASH_ROUNDS ?? 12);

/** Runs the child until it has acknowledged something, then SIGKILLs it after a random delay. */
function runAndKill(dir: string): Promise<{ acked: number[]; startSize: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let startSize = -1;
    let buf = '';
    let err = '';
    let armed = false;
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('ready ')) startSize = Number(l.slice(6));
        else if (l.startsWith('ack ')) acked.push(Number(l.slice(4)));
      }
      if (!armed && acked.length > 0) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), 20 + Math.random() * 250);
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}: ${err.slice(0, 2000)}`));
      else resolve({ acked, startSize });
    });
  });
}

test('a writer killed with SIGKILL at random moments loses no acknowledged entry, reuses no index and leaves no gap', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir('gh-audit-crash-'); t.after(cleanup);
  let everAcked = -1;
  let lastCheckpointSize = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const { acked, startSize } = await runAndKill(dir);
    assert.ok(acked.length > 0);
    // Indices continue exactly where the recovered log ended: no reuse, no gap.
    assert.equal(acked[0], startSize, `round ${round}: first ack ${acked[0]} but the log reopened at ${startSize}`);
    for (let i = 1; i < acked.length; i++) assert.equal(acked[i], acked[i - 1]! + 1);
    everAcked = Math.max(everAcked, acked.at(-1)!);

    const log = TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 60_000 });
    try {
      assert.ok(log.size > everAcked, `round ${round}: log has ${log.size} entries, ${everAcked + 1} were acknowledged`);
      // The newest checkpoint verifies, never shrinks, and matches the stored entries.
      const note = log.latestCheckpoint();
      if (note) {
        const cp = openCheckpoint(note, log.verifiers());
        assert.ok(cp.size >= lastCheckpointSize);
        lastCheckpointSize = cp.size;
        assert.ok(hashEquals(log.rootAt(cp.size), cp.root));
      }
      // Every entry carries its own index (spot-check the tail and a sample).
      for (const i of [0, Math.floor(log.size / 2), log.size - 1]) assert.equal(log.leaf(i).index, i);
    } finally {
      await log.close();
    }
  }
  // Finally, rebuild the whole tree from the entries and compare with the stored root.
  const log = TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE });
  try {
    const leaves: Buffer[] = [];
    for await (const { index, bytes } of log.scan()) { assert.equal(index, leaves.length); leaves.push(hashLeaf(bytes)); }
    assert.equal(leaves.length, log.size);
    assert.ok(hashEquals(new MemoryTree(leaves).root(), log.rootAt(log.size)));
    const cp = openCheckpoint(await log.checkpoint(), log.verifiers());
    assert.equal(cp.size, log.size);
  } finally {
    await log.close();
  }
});
