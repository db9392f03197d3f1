/**
 * A one-shot CLI command (`--workspace DIR`) on a federated workspace runs a node without
 * listeners for the length of the command. It must not take the node-to-node port that
 * gatehouse.yaml configures: a served node of the same workspace normally holds it, and the
 * command would fail with "port in use" (or, worse, briefly answer for that node).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../src/cli/main.ts';
import { createScenario, SCENARIO_KEYS, type ScenarioNode } from '../src/residency/scenario.ts';

let dir: string;
let eu: ScenarioNode;
let holder: Server;

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  const s = new PassThrough();
  let out = '';
  s.on('data', (c) => { out += String(c); });
  const code = await main(argv, s);
  return { code, out };
}

before(async () => {
  process.env.GATEHOUSE_KEY_PASSPHRASE ??= 'cli-federated-one-shot-test';
  dir = mkdtempSync(join(tmpdir(), 'gh-cli-fed-'));
  ({ eu } = await createScenario(dir, { euPatients: 20, usPatients: 20 }));
  // The served node's listener: the configured node-to-node port is taken.
  holder = createServer();
  await new Promise<void>((resolve, reject) => { holder.once('error', reject); holder.listen(eu.federationPort, '127.0.0.1', () => resolve()); });
});

after(async () => {
  await new Promise<void>((resolve) => holder.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('a one-shot --workspace command on a federated workspace', () => {
  it('runs while a served node holds the configured node-to-node port, instead of failing to bind it', async () => {
    const key = Object.values(SCENARIO_KEYS)[0]!;
    const { code, out } = await run('datasets', '--workspace', eu.wsDir, '--key', key, '--purpose', 'research');
    assert.equal(code, 0, out);
    assert.match(out, /patients/);
    assert.doesNotMatch(out, /in use|EADDRINUSE/);
  });
});
