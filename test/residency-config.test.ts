/**
 * The residency sections of gatehouse.yaml (refused with their lines) and what Cedar sees of
 * residency: the same principal and dataset are decided differently when the request entered
 * at this node and when a node of another region forwarded it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { schemaWithResidency } from '../src/federation/schema.ts';
import { PolicyEngine } from '../src/policy/engine.ts';
import { readWorkspaceFiles } from '../src/workspace/load.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseResidency } from '../src/federation/residency-config.ts';
import { forwardedChannel, residencyContext } from '../src/federation/residency-context.ts';
import { createScenario, scenarioYaml, SCENARIO_KEYS, type ScenarioNode } from '../src/residency/scenario.ts';
import { startNode, type GatehouseNode } from '../src/node/start.ts';

const PEER = { nodeId: 'us-east-1', region: 'us-east', jurisdiction: 'US', port: 7001, publicKey: 'ed25519:' + Buffer.alloc(32, 7).toString('base64url') };
const EU = { nodeId: 'eu-west-1', region: 'eu-west' as const, jurisdiction: 'EU', port: 7000 };

/** The 1-based line of the first line containing `needle` at or after the line that is exactly `after`. */
function lineOf(text: string, needle: string, after?: string): number {
  const lines = text.split('\n');
  const start = after === undefined ? 0 : lines.indexOf(after);
  assert.ok(start >= 0);
  return lines.findIndex((l, i) => i >= start && l.includes(needle)) + 1;
}

describe('residency sections of gatehouse.yaml', () => {
  test('the scenario workspace parses: region, pinned peer, local and remote datasets', () => {
    const { config, problems } = parseResidency(scenarioYaml(EU, [PEER]));
    assert.deepEqual(problems, []);
    assert.equal(config?.region, 'eu-west');
    assert.deepEqual(config?.datasets.get('eu_patients'), { storedIn: 'eu-west', processIn: ['eu-west'] });
    assert.deepEqual(config?.remote.get('patients'), ['us-east']);
    assert.equal(config?.federation.peers[0]?.nodeId, 'us-east-1');
  });

  test('a dataset that may be processed only elsewhere is refused at the line of its source here', () => {
    const text = scenarioYaml(EU, [PEER]).replace('eu_patients: { storedIn: eu-west, processIn: [eu-west] }', 'eu_patients: { storedIn: eu-west, processIn: [eu-west, eu-central] }')
      .replace('patients: { storedIn: eu-west, processIn: [eu-west] }', 'patients: { storedIn: us-east, processIn: [us-east] }');
    const { config, problems } = parseResidency(text);
    assert.equal(config, null);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]!.line, lineOf(text, 'source:', '  patients:'));
    assert.match(problems[0]!.message, /would store dataset "patients" in eu-west, but it may be stored only in us-east/);
  });

  test('a held dataset without residency, a remote region without a pinned peer and a missing region section are each refused with their line', () => {
    const noResidency = scenarioYaml(EU, [PEER]).replace('    eu_patients: { storedIn: eu-west, processIn: [eu-west] }\n', '');
    const r1 = parseResidency(noResidency);
    assert.equal(r1.problems[0]!.line, lineOf(noResidency, '  eu_patients:'));
    assert.match(r1.problems[0]!.message, /declares no residency/);

    const unreachable = scenarioYaml(EU, [PEER]).replace('patients: { regions: [us-east] }', 'patients: { regions: [ap-south] }');
    const r2 = parseResidency(unreachable);
    assert.match(r2.problems[0]!.message, /no peer in region ap-south is pinned/);
    assert.equal(r2.problems[0]!.line, lineOf(unreachable, 'ap-south'));

    const noRegion = scenarioYaml(EU, [PEER]).replace(/region:\n  node: eu-west-1\n  region: eu-west\n  jurisdiction: EU\n/, '');
    assert.match(parseResidency(noRegion).problems[0]!.message, /^region: is required/);
  });

  test('a workspace without any residency section is not federated and nothing applies', () => {
    assert.deepEqual(parseResidency('version: 1\nname: x\ndatasets: {}\n'), { config: null, problems: [] });
    const ctx = residencyContext(null, 'patients', 'http');
    assert.equal(ctx.forwarded, false);
    assert.deepEqual(ctx.datasetResidency, []);
  });

  test('only the federation channel marks a request as forwarded, with the origin region it names', () => {
    const { config } = parseResidency(scenarioYaml(EU, [PEER]));
    assert.deepEqual(residencyContext(config, 'eu_patients', forwardedChannel('us-east')), {
      nodeRegion: 'eu-west', nodeJurisdiction: 'EU', originRegion: 'us-east', forwarded: true, datasetResidency: ['eu-west'], datasetStoredIn: 'eu-west',
    });
    assert.equal(residencyContext(config, 'eu_patients', 'http').originRegion, 'eu-west');
  });
});

describe('docs/workspace.schema.json and the residency sections', () => {
  const schemaText = readFileSync(new URL('../docs/workspace.schema.json', import.meta.url), 'utf8');
  const validate = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true }).compile(JSON.parse(schemaText) as object);

  test('the committed schema lists region, federation and residency as scripts/workspace-schema.ts writes them', () => {
    assert.equal(schemaWithResidency(schemaText), schemaText, 'run: npx node scripts/workspace-schema.ts');
  });

  test('a scenario workspace is valid for the schema, and misplaced keys and malformed pins are not', () => {
    const doc = parse(scenarioYaml(EU, [PEER])) as Record<string, any>;
    assert.ok(validate(doc), JSON.stringify(validate.errors));
    for (const [what, spoil] of [
      ['an unknown key under region', (d: Record<string, any>) => { d.region.zone = 'a'; }],
      ['a peer key that is not an ed25519 pin', (d: Record<string, any>) => { d.federation.peers[0].publicKey = 'rsa:abc'; }],
      ['a peer reached over plain http', (d: Record<string, any>) => { d.federation.peers[0].url = 'http://127.0.0.1:7001'; }],
      ['a remote dataset without regions', (d: Record<string, any>) => { d.residency.remote.patients = {}; }],
    ] as const) {
      const bad = structuredClone(doc);
      spoil(bad);
      assert.equal(validate(bad), false, what);
      assert.ok(parseResidency(JSON.stringify(bad)).problems.length > 0, `the loader refuses ${what} too`);
    }
  });
});

describe('a loaded workspace and its residency', () => {
  test('the policy engine decides with the residency read from the same text as the rest of the workspace, not with the file as it is later', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-residency-race-'));
    try {
      const { eu } = await createScenario(dir);
      const files = readWorkspaceFiles(eu.wsDir);
      assert.ok(files.workspace, JSON.stringify(files.problems));
      assert.equal(files.workspace.residency?.config?.region, 'eu-west');
      // The file changes between the read and the compile (an edit during a reload).
      const yamlFile = join(eu.wsDir, 'gatehouse.yaml');
      writeFileSync(yamlFile, readFileSync(yamlFile, 'utf8').replace('  region: eu-west\n', '  region: ap-south\n'));
      const { engine, problems } = PolicyEngine.compile(files.workspace);
      assert.deepEqual(problems, []);
      assert.equal(engine?.residency?.region, 'eu-west');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Cedar decides with the regions', () => {
  let dir: string;
  let eu: ScenarioNode;
  let node: GatehouseNode;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-residency-cedar-'));
    ({ eu } = await createScenario(dir));
    node = await startNode({ workspaceDir: eu.wsDir, auditDir: join(eu.wsDir, 'audit'), demo: true, engineOptions: { poolSize: 1 } });
  });
  after(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ask = (channel: string, sql: string) => node.gatehouse.query({ credential: SCENARIO_KEYS.erik, sql, purpose: 'research', source: '127.0.0.1', channel });

  test('the same analyst reads rows in her own region but only aggregates of at least 5 when the request comes from another region', async () => {
    const local = await ask('http', 'SELECT patient_id, condition FROM eu_patients LIMIT 3');
    assert.equal(local.rows.length, 3);
    assert.deepEqual(local.governance.policies, ['own-region']);
    await assert.rejects(ask(forwardedChannel('us-east'), 'SELECT patient_id, condition FROM eu_patients LIMIT 3'), (e: { code: string }) => e.code === 'OBLIGATION_VIOLATION');
    const agg = await ask(forwardedChannel('us-east'), 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition');
    assert.deepEqual(agg.governance.policies, ['cross-border-aggregates']);
    assert.ok(agg.governance.obligationsApplied.some((o) => o.startsWith('aggregationOnly:eu_patients')));
  });
});
