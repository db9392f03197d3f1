/**
 * A revocation must not wait for an unrelated fix (issue 13, "Reloads"). An operator
 * removes an API key from gatehouse.yaml while a dataset file is missing: the key stops
 * working at once, the missing file is reported with its line, and the rest of the edit
 * (a new principal) waits. When the file comes back, the whole edit applies by itself —
 * the node retries, no further edit or SIGHUP is needed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDemoWorkspace } from './helpers/demo-data.ts';
import { apiKeyDigest } from '../src/identity/digest.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';
import { loadWorkspace } from '../src/workspace/validate.ts';
import { KEYS, PURPOSE, type Who } from './helpers/workspace.ts';

const NEWBIE_KEY = 'test-key-newbie-0123456789abcdef';
let dir: string;
let ws: string;
let node: GatehouseNode;
const notes: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-reload-revoke-'));
  ws = join(dir, 'ws');
  await createTestDemoWorkspace(ws, { patients: 200, keys: KEYS });
  node = await startNode({
    workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true, engineOptions: { poolSize: 1 }, reloadOnChange: true,
    notify: (line, err) => { notes.push(`${line}\n${(err as Error | undefined)?.message ?? ''}`); },
  });
});
after(async () => {
  await node.close();
  rmSync(dir, { recursive: true, force: true });
});

const ask = (credential: string, who: Who, sql = 'SELECT count(*) FROM encounters') =>
  node.gatehouse.query({ credential, sql, purpose: PURPOSE[who], source: '127.0.0.1', channel: 'test' });

/** 'OK', or the error code the request failed with. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try { await p; return 'OK'; } catch (err) { return (err as { code?: string }).code ?? 'NO_CODE'; }
}

/** Polls until `check` holds (the watcher debounces, then reloads; retries back off from 1 s). */
async function eventually(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await check()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what} within ${ms} ms`);
}

describe('a revocation applies while another part of the workspace is invalid', () => {
  const yamlPath = (): string => join(ws, 'gatehouse.yaml');
  const claims = (): string => join(ws, 'data', 'claims.parquet');

  it('serves the key before the edit', async () => {
    await ask(KEYS.ada, 'ada');
    assert.equal(await codeOf(ask(NEWBIE_KEY, 'ada')), 'AUTH_INVALID');
  });

  it('stops the removed key at once although a dataset file is missing, and reports the file with its line', async () => {
    renameSync(claims(), `${claims()}.away`);
    const yaml = readFileSync(yamlPath(), 'utf8');
    const edited = yaml
      .replace(`apiKeySha256: [${apiKeyDigest(KEYS.ada)}]`, 'apiKeySha256: []')
      .replace('principals:\n', `principals:\n  newbie:\n    groups: [internal-analysts]\n    attributes: { org: st-avery, region: us-east }\n    apiKeySha256: [${apiKeyDigest(NEWBIE_KEY)}]\n`);
    assert.notEqual(edited, yaml);
    writeFileSync(yamlPath(), edited);
    const took = await eventually('the removed key is refused', async () => (await codeOf(ask(KEYS.ada, 'ada'))) === 'AUTH_INVALID');
    assert.ok(took < 5_000, `took ${took} ms`);
    // The rest of the edit waits for the whole workspace to be valid.
    assert.equal(await codeOf(ask(NEWBIE_KEY, 'ada')), 'AUTH_INVALID');
    // Everyone else is served as before.
    await ask(KEYS.rhea, 'rhea', 'SELECT count(*) FROM patients');
    const report = notes.find((n) => n.includes('partly applied'));
    assert.ok(report, notes.join('\n---\n'));
    assert.match(report, /gatehouse\.yaml:\d+: datasets\.claims\.source\.parquet: file not found/);
    assert.match(report, /1 API key\(s\) of principal "ada" removed/);
  });

  it('applies the whole edit by itself once the file is back, without another edit', async () => {
    renameSync(`${claims()}.away`, claims());
    const full = (await loadWorkspace(ws)).workspace.policyVersion;
    await eventually('the whole workspace applies', async () => node.gatehouse.policyVersion === full);
    await ask(NEWBIE_KEY, 'ada');
    assert.equal(await codeOf(ask(KEYS.ada, 'ada')), 'AUTH_INVALID');
    await ask(KEYS.ivan, 'ivan', 'SELECT count(*) FROM claims');
    assert.ok(notes.some((n) => n.startsWith(`workspace reloaded: policy version ${full}`)));
  });

  it('removes a dataset from the catalog while a policy file is broken, and keeps the policies in force', async () => {
    const yaml = readFileSync(yamlPath(), 'utf8');
    writeFileSync(join(ws, 'policies', 'broken.cedar'), 'permit (principal, action, resource) when { this is not cedar };\n');
    const start = yaml.indexOf('\n  claims:\n');
    const end = yaml.indexOf('\n\n', start + 1);
    writeFileSync(yamlPath(), yaml.slice(0, start) + yaml.slice(end));
    const code = (): Promise<string> => codeOf(ask(KEYS.ivan, 'ivan', 'SELECT count(*) FROM claims'));
    await eventually('claims leaves the catalog', async () => (await code()) !== 'OK');
    assert.notEqual(await code(), 'INTERNAL');
    // The broken policy file did not replace the policy set: the others are decided as before.
    await ask(KEYS.rhea, 'rhea', 'SELECT count(*) FROM patients');
    const report = notes.filter((n) => n.includes('partly applied')).at(-1)!;
    assert.match(report, /dataset "claims" removed/);
    assert.doesNotMatch(report, /policy set replaced/);
  });
});
