/**
 * Residency (issue 20, scenario 4): an eu-west and a us-east node, each its own process on
 * loopback ports, talking mutual TLS with pinned keys. Queries travel to the data, only
 * what may cross comes back, split aggregates equal the single-node answer, a partition
 * fails the whole answer naming the region, and both audit logs share the request id.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FederationClient, loadNodeIdentity, initNodeIdentity, parseFederationSection, PeerRegistry } from '../src/federation/index.ts';
import { GatehouseError } from '../src/errors.ts';
import { startNode } from '../src/node/start.ts';
import { createScenario, scenarioYaml, SCENARIO_KEYS, type ScenarioNode } from '../src/residency/scenario.ts';

const NODE_PROCESS = new URL('../src/node/residency-process.ts', import.meta.url).pathname;

interface Running { readonly child: ChildProcess; readonly http: number; readonly federation: number }

function startProcess(wsDir: string, env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [NODE_PROCESS, wsDir, '--demo'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const info = JSON.parse(line) as { http?: number; federation?: number; error?: { message: string } };
      if (info.error) reject(new Error(info.error.message));
      else resolve({ child, http: info.http!, federation: info.federation! });
    });
    child.once('exit', (code) => reject(new Error(`node exited with ${code}`)));
  });
}

async function post(node: Running, key: string, sql: string, path = '/v1/residency/query'): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://127.0.0.1:${node.http}${path}`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql, purpose: 'research' }),
  });
  return { status: r.status, body: await r.json() };
}

async function auditEntries(node: Running, action: string): Promise<{ auditId: string; entry: { decision: string; reasons: string[]; channel: string; datasets: string[]; errorCode: string | null } }[]> {
  const r = await fetch(`http://127.0.0.1:${node.http}/v1/audit/entries?action=${encodeURIComponent(action)}&limit=1000`, { headers: { authorization: `Bearer ${SCENARIO_KEYS.audrey}` } });
  assert.equal(r.status, 200);
  return ((await r.json()) as { entries: never[] }).entries;
}

type Entry = { auditId: string; entry: { action: string; decision: string; reasons: string[]; channel: string; datasets: string[]; errorCode: string | null } };

/** Every entry of one node's log that carries this request id. */
async function entriesOf(node: Running, requestId: string): Promise<Entry[]> {
  const r = await fetch(`http://127.0.0.1:${node.http}/v1/audit/entries?limit=1000`, { headers: { authorization: `Bearer ${SCENARIO_KEYS.audrey}` } });
  assert.equal(r.status, 200);
  return ((await r.json()) as { entries: Entry[] }).entries.filter((e) => e.entry.reasons.includes(`request ${requestId}`));
}

const sorted = (rows: unknown[][]): string => JSON.stringify([...rows].map((r) => JSON.stringify(r)).sort());

describe('residency across an eu-west and a us-east node', () => {
  let dir: string;
  let eu: ScenarioNode, us: ScenarioNode;
  let euNode: Running, usNode: Running;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-residency-'));
    ({ eu, us } = await createScenario(dir));
    [euNode, usNode] = await Promise.all([startProcess(eu.wsDir), startProcess(us.wsDir, { GATEHOUSE_FEDERATION_TIMEOUT_MS: '1500' })]);
    // The EU engine's first query is slow on a loaded machine; warm it so the forwarding
    // timeout (short, for the partition test) measures the link, not a cold start.
    assert.equal((await post(euNode, SCENARIO_KEYS.ursula, 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition')).status, 200);
  });

  after(async () => {
    for (const n of [euNode, usNode]) if (n) { n.child.kill('SIGCONT'); n.child.kill('SIGTERM'); }
    await Promise.all([euNode, usNode].filter(Boolean).map((n) => new Promise((r) => { if (n.child.exitCode !== null) r(null); else n.child.once('exit', r); })));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a US analyst\'s aggregate over EU data sent to the ordinary /v1/query runs on the EU node, with one entry per node under one request id', async () => {
    const r = await post(usNode, SCENARIO_KEYS.ursula, 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition', '/v1/query');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.governance.obligationsApplied.some((o: string) => o.startsWith('aggregationOnly:eu_patients')), 'the EU policy for forwarded requests applied');
    assert.equal(r.body.rows.reduce((n: number, row: [string, number]) => n + row[1], 0), 60);
    // The caller's receipt is the entry node's forward entry; it names the request id.
    const forward = (await auditEntries(usNode, 'residency.forward')).find((e) => e.auditId === r.body.governance.auditId);
    assert.ok(forward, 'the entry node logged what it forwarded');
    assert.equal(forward.entry.decision, 'allow');
    assert.ok(forward.entry.reasons.some((x) => x.startsWith('forwarded to node eu-west-1 in eu-west')));
    const id = forward.entry.reasons.find((x) => x.startsWith('request '))!.slice('request '.length);
    const onUs = await entriesOf(usNode, id);
    const onEu = await entriesOf(euNode, id);
    assert.deepEqual(onUs.map((e) => e.entry.action), ['residency.forward'], 'one entry on the entry node');
    assert.deepEqual(onEu.map((e) => e.entry.action), ['query'], 'one entry on the data node');
    const executed = onEu[0]!.entry;
    assert.equal(executed.channel, 'federation:us-east');
    assert.equal(executed.decision, 'allow');
    assert.ok(executed.reasons.includes('forwarded by node us-east-1 (us-east, pinned key)'), JSON.stringify(executed.reasons));
    assert.ok(executed.reasons.some((x) => x.includes('released to node us-east-1 in us-east: eu_patients: aggregation-only (min 5 distinct patient_id)')), JSON.stringify(executed.reasons));
    assert.ok(forward.entry.reasons.includes(`released there as entry ${onEu[0]!.auditId}`), 'the forward entry links the data node\'s entry');
  });

  test('a result answered in another region is not saved here: save is refused before anything travels', async () => {
    const r = await fetch(`http://127.0.0.1:${usNode.http}/v1/query`, {
      method: 'POST', headers: { authorization: `Bearer ${SCENARIO_KEYS.ursula}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition', purpose: 'research', save: true }),
    });
    const body = await r.json() as { error: { code: string; message: string } };
    assert.equal(r.status, 400);
    assert.equal(body.error.code, 'REQUEST_INVALID');
    assert.match(body.error.message, /cannot be saved here/);
  });

  test('/v1/residency/query reports how the query travelled', async () => {
    const r = await post(usNode, SCENARIO_KEYS.ursula, 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.residency.route, 'remote');
    assert.deepEqual(r.body.residency.parts.map((p: { region: string }) => p.region), ['eu-west']);
    const local = await post(euNode, SCENARIO_KEYS.ursula, 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition');
    assert.equal(local.body.residency?.route, 'local', JSON.stringify(local.body));
  });

  test('raw EU rows are refused by the policy for forwarded requests, naming the aggregation rule', async () => {
    const r = await post(usNode, SCENARIO_KEYS.ursula, 'SELECT patient_id, condition FROM eu_patients');
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'OBLIGATION_VIOLATION');
    assert.match(r.body.error.message, /allows only aggregate queries/);
  });

  test('raw EU rows never leave the EU even under a careless grant: the border rule refuses and names itself', async () => {
    const r = await post(usNode, SCENARIO_KEYS.carl, 'SELECT patient_id, condition, cost FROM eu_patients');
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'RESIDENCY_RAW_ROWS');
    assert.match(r.body.error.message, /raw rows never leave their region/);
    assert.ok(!JSON.stringify(r.body).includes('100001') && !/"rows"/.test(JSON.stringify(r.body)));
    const denied = (await auditEntries(euNode, 'query')).filter((e) => e.entry.decision === 'deny' && e.entry.errorCode === 'RESIDENCY_RAW_ROWS');
    assert.ok(denied.length >= 1, 'the EU node logged the refused release');
    assert.ok(denied.every((e) => e.entry.channel === 'federation:us-east' && e.entry.reasons.includes('forwarded by node us-east-1 (us-east, pinned key)')));
    // Aggregating over the careless grant is still raw (no k threshold): refused too.
    const counts = await post(usNode, SCENARIO_KEYS.carl, 'SELECT country, count(*) AS n FROM eu_patients GROUP BY country');
    assert.equal(counts.body.error?.code, 'RESIDENCY_RAW_ROWS');
  });

  test('masked columns may cross under the careless grant, and arrive masked', async () => {
    const r = await post(usNode, SCENARIO_KEYS.carl, 'SELECT name FROM eu_patients LIMIT 3');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.rows.length, 3);
    for (const [name] of r.body.rows as [unknown][]) assert.ok(name === null || !String(name).includes('Patient'), 'no real name crossed');
  });

  test('a split aggregate over both regions equals the answer of one node holding all the rows', async () => {
    const sql = 'SELECT condition, count(*) AS n, sum(cost) AS total FROM patients GROUP BY condition';
    const split = await post(usNode, SCENARIO_KEYS.ursula, sql);
    assert.equal(split.status, 200, JSON.stringify(split.body));
    assert.equal(split.body.residency.route, 'split');
    assert.deepEqual(split.body.residency.parts.map((p: { region: string }) => p.region).sort(), ['eu-west', 'us-east']);
    assert.equal(split.body.residency.complete, true);
    // One entry on each node: here the US partial's query entry names the EU partial it added.
    const id: string = split.body.residency.requestId;
    const [onUs, onEu] = [await entriesOf(usNode, id), await entriesOf(euNode, id)];
    assert.deepEqual(onUs.map((e) => e.entry.action), ['query']);
    assert.deepEqual(onEu.map((e) => e.entry.action), ['query']);
    assert.ok(onUs[0]!.entry.reasons.includes(`partial from eu-west (node eu-west-1, entry ${onEu[0]!.auditId})`), JSON.stringify(onUs[0]!.entry.reasons));
    assert.equal(split.body.governance.auditId, onUs[0]!.auditId);
    // One node with both partitions' rows in one file, the same policy, no federation.
    const one = join(dir, 'one');
    const { cpSync } = await import('node:fs');
    // The running node's log and state are being written: copy the workspace without them.
    cpSync(us.wsDir, one, { recursive: true, filter: (src) => !/^[\\/](audit|state)([\\/]|$)/.test(src.slice(us.wsDir.length)) });
    const euRows = readFileSync(join(eu.wsDir, 'data', 'patients.csv'), 'utf8').split('\n').slice(1).join('\n');
    writeFileSync(join(one, 'data', 'patients.csv'), readFileSync(join(us.wsDir, 'data', 'patients.csv'), 'utf8') + euRows);
    writeFileSync(join(one, 'gatehouse.yaml'), scenarioYaml({ nodeId: 'us-east-9', region: 'us-east', jurisdiction: 'US', port: 0 }, []));
    const single = await startNode({ workspaceDir: one, auditDir: join(one, 'audit'), demo: true, engineOptions: { poolSize: 1 }, federation: null });
    try {
      const expected = await single.gatehouse.query({ credential: SCENARIO_KEYS.ursula, sql, purpose: 'research', source: '127.0.0.1', channel: 'test' });
      assert.equal(sorted(split.body.rows), sorted(expected.rows as unknown[][]));
      assert.equal(expected.rows.reduce((n, row) => n + Number(row[1]), 0), 150);
    } finally {
      await single.close();
    }
  });

  test('aggregates that cannot be combined across regions are refused, naming the part', async () => {
    for (const [sql, part] of [
      ['SELECT condition, avg(cost) AS a FROM patients GROUP BY condition', 'avg'],
      ['SELECT max(cost) AS m FROM patients', 'max'],
      ['SELECT condition, count(*) AS n FROM patients GROUP BY condition HAVING count(*) > 3', 'HAVING'],
      ['SELECT count(DISTINCT country) AS n FROM patients', 'DISTINCT'],
    ] as const) {
      const r = await post(usNode, SCENARIO_KEYS.ursula, sql);
      assert.equal(r.body.error?.code, 'RESIDENCY_NOT_SPLITTABLE', sql);
      assert.ok(r.body.error.message.includes(part), `${sql}: ${r.body.error.message}`);
    }
  });

  test('a node whose key is not pinned is refused, even under a pinned node\'s id, and nothing runs', async () => {
    const euPeers = new PeerRegistry(parseFederationSection({ peers: [{ node: 'eu-west-1', region: 'eu-west', jurisdiction: 'EU', url: `https://127.0.0.1:${euNode.federation}`, publicKey: eu.identity.publicKey }] }).config!.peers);
    const impostor = await initNodeIdentity(join(dir, 'impostor'), { nodeId: 'us-east-1', region: 'us-east', jurisdiction: 'US' });
    const before = (await auditEntries(euNode, 'query')).length;
    const client = new FederationClient({ identity: impostor, peers: euPeers, timeoutMs: 3000 });
    const body = { credential: SCENARIO_KEYS.ursula, sql: 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition', purpose: 'research', source: '127.0.0.1' };
    await assert.rejects(client.call('eu-west-1', 'query', body), (e: GatehouseError) => e.code === 'UNAVAILABLE' || e.code === 'AUTH_INVALID');
    client.close();
    // The real us-east key claiming the EU region (to pass as an EU-internal request) is refused by the pin.
    const real = loadNodeIdentity(us.stateDir);
    const liar = new FederationClient({ identity: { ...real, region: 'eu-west' }, peers: euPeers, timeoutMs: 3000 });
    await assert.rejects(liar.call('eu-west-1', 'query', body), (e: GatehouseError) => e.detail === 'NODE_REGION_MISMATCH' && /pinned to "us-east"/.test(e.message));
    liar.close();
    assert.equal((await auditEntries(euNode, 'query')).length, before, 'no query ran for either');
  });

  test('a partition mid-query fails the whole split answer naming the region and dataset, and the region answers again once healed', async () => {
    const sql = 'SELECT condition, count(*) AS n, sum(cost) AS total FROM patients GROUP BY condition';
    euNode.child.kill('SIGSTOP');
    let r: { status: number; body: any };
    try {
      r = await post(usNode, SCENARIO_KEYS.ursula, sql);
    } finally {
      euNode.child.kill('SIGCONT');
    }
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'REGION_UNREACHABLE');
    assert.match(r.body.error.message, /region eu-west cannot be reached.*patients/);
    assert.ok(!('rows' in r.body), 'no partial answer');
    // The US partial's entry is the request's one entry here, and it records the failure.
    const failed = (await auditEntries(usNode, 'query')).filter((e) => e.entry.errorCode === 'REGION_UNREACHABLE');
    assert.ok(failed.some((e) => e.entry.reasons.some((x) => x.startsWith('request ')) && e.entry.reasons.some((x) => x.includes('eu-west'))));
    const healed = await post(usNode, SCENARIO_KEYS.ursula, sql);
    assert.equal(healed.status, 200, JSON.stringify(healed.body));
  });
});

describe('a workspace that would store EU data in the US', () => {
  test('is refused at load, pointing at the line of the offending source', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-residency-bad-'));
    try {
      const { us } = await createScenario(dir);
      const yamlFile = join(us.wsDir, 'gatehouse.yaml');
      // A copy of the EU rows declared as a local dataset of the US node.
      const copy = `  eu_patients:\n    source: { csv: data/patients.csv }\n    classification: regulated\n    purposes: [research]\n    columns:\n      patient_id: { type: BIGINT, classification: confidential }\n`;
      const text = readFileSync(yamlFile, 'utf8')
        .replace('    eu_patients: { regions: [eu-west] }\n', '')
        .replace('\nobligations:', `${copy}\nobligations:`)
        .replace('  remote:\n', '    eu_patients: { storedIn: eu-west, processIn: [eu-west] }\n  remote:\n');
      writeFileSync(yamlFile, text);
      const sourceLine = text.split('\n').findIndex((l, i, all) => l.includes('source: { csv: data/patients.csv }') && all[i - 1] === '  eu_patients:') + 1;
      await assert.rejects(startProcess(us.wsDir), (e: Error) => {
        assert.match(e.message, new RegExp(`gatehouse.yaml:${sourceLine}: datasets\\.eu_patients\\.source: would store dataset "eu_patients" in us-east, but it may be stored only in eu-west`));
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
