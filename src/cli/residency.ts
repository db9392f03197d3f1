/**
 * `gatehouse residency demo`: scenario 4 of SCENARIOS.md on this machine. Creates an eu-west
 * and a us-east workspace (src/residency/scenario.ts), starts each node as its own process
 * (partner HTTP and the mutual-TLS node listener on loopback ports), and walks through what
 * crosses the border and what does not, then stops both nodes (unless --keep).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { COMMANDS, parseOptions } from './commands.ts';
import { EXIT, UsageError } from './exit.ts';
import { formatTable } from './table.ts';
import { createScenario, SCENARIO_KEYS } from '../residency/scenario.ts';

type Out = NodeJS.WritableStream;

interface Started { readonly child: ChildProcess; readonly http: number; readonly federation: number }

const NODE_PROCESS = new URL('../node/residency-process.ts', import.meta.url).pathname;

function start(wsDir: string): Promise<Started> {
  const child = spawn(process.execPath, [NODE_PROCESS, wsDir, '--demo'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const info = JSON.parse(line) as { http?: number; federation?: number; error?: { message: string } };
      if (info.error) rej(new Error(info.error.message)); else res({ child, http: info.http!, federation: info.federation! });
    });
    child.once('exit', (code) => rej(new Error(`the node for ${wsDir} exited (${code})`)));
  });
}

async function ask(port: number, key: string, sql: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/residency/query`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql, purpose: 'research' }) });
  return { status: r.status, body: await r.json() };
}

async function entries(port: number): Promise<{ auditId: string; entry: { action: string; decision: string; channel: string; reasons: string[] } }[]> {
  const r = await fetch(`http://127.0.0.1:${port}/v1/audit/entries?limit=1000`, { headers: { authorization: `Bearer ${SCENARIO_KEYS.audrey}` } });
  return ((await r.json()) as { entries: never[] }).entries;
}

export async function residencyCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: parseOptions(COMMANDS.residency!.options), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  if (positionals[0] !== 'demo') throw new UsageError('give a sub-command: demo', { hint: 'gatehouse residency --help' });
  const dir = typeof values.dir === 'string' ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'gatehouse-residency-'));
  const say = (s: string): void => { out.write(`${s}\n`); };
  const { eu, us } = await createScenario(dir);
  say(`Scenario 4: a multinational keeps data in its jurisdictions (workspaces in ${dir})`);
  const [euNode, usNode] = await Promise.all([start(eu.wsDir), start(us.wsDir)]);
  const stop = (): void => { for (const n of [euNode, usNode]) n.child.kill('SIGTERM'); };
  try {
    say(formatTable(['node', 'region', 'partner HTTP', 'node listener (mTLS)', 'key'], [
      [eu.nodeId, 'eu-west', `http://127.0.0.1:${euNode.http}`, `https://127.0.0.1:${euNode.federation}`, eu.identity.publicKey],
      [us.nodeId, 'us-east', `http://127.0.0.1:${usNode.http}`, `https://127.0.0.1:${usNode.federation}`, us.identity.publicKey],
    ]));
    const step = async (title: string, who: keyof typeof SCENARIO_KEYS, sql: string): Promise<{ status: number; body: any }> => {
      say(`\n▶ ${title}\n  ${who} on us-east: ${sql}`);
      const r = await ask(usNode.http, SCENARIO_KEYS[who], sql);
      if (r.status === 200) {
        say(`  route ${r.body.residency.route} via ${r.body.residency.parts.map((p: { region: string; node: string }) => `${p.region} (${p.node})`).join(' + ')}, request ${r.body.residency.requestId}`);
        say(formatTable(r.body.columns.map((c: { name: string }) => c.name), r.body.rows).split('\n').map((l) => `  ${l}`).join('\n'));
        say(`  obligations: ${r.body.governance.obligationsApplied.join('; ')}`);
      } else {
        say(`  refused ${r.body.error.code}: ${r.body.error.message}`);
      }
      return r;
    };
    const routed = await step('A US analyst\'s aggregate over EU data runs on the EU node; only groups of ≥ 5 patients come back', 'ursula', 'SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition');
    await step('Raw EU rows: the EU policy for forwarded requests allows aggregates only', 'ursula', 'SELECT patient_id, condition FROM eu_patients');
    await step('Raw EU rows under a careless grant: the border rule still keeps them in the EU', 'carl', 'SELECT patient_id, condition FROM eu_patients');
    await step('One dataset in two regions: each region computes its partial count and sum; they are added here', 'ursula', 'SELECT condition, count(*) AS n, sum(cost) AS total FROM patients GROUP BY condition');
    await step('An average cannot be combined from partials safely: refused (ask for sum and count)', 'ursula', 'SELECT condition, avg(cost) AS mean FROM patients GROUP BY condition');

    say('\n▶ A misconfiguration that would copy EU rows to the US is refused at load');
    const bad = join(dir, 'us-east-misconfigured');
    // The workspace files only: the running node's audit log and state change under a copy
    // (files written beside and renamed over), and loading a workspace needs neither.
    const live = new Set(['audit', 'state'].map((d) => join(us.wsDir, d)));
    cpSync(us.wsDir, bad, { recursive: true, filter: (src) => !live.has(src) });
    const yamlFile = join(bad, 'gatehouse.yaml');
    writeFileSync(yamlFile, readFileSync(yamlFile, 'utf8')
      .replace('    eu_patients: { regions: [eu-west] }\n', '')
      .replace('  remote:\n', '    eu_patients: { storedIn: eu-west, processIn: [eu-west] }\n  remote:\n')
      .replace('\nobligations:', '  eu_patients:\n    source: { csv: data/patients.csv }\n    classification: regulated\n    columns:\n      patient_id: { type: BIGINT, classification: confidential }\n\nobligations:'));
    const { loadWorkspace } = await import('../workspace/validate.ts');
    try { await loadWorkspace(bad); say('  (unexpectedly loaded)'); } catch (e) { say(`  ${(e as Error).message.split('\n').join('\n  ')}`); }

    if (routed.status === 200) {
      const id = routed.body.residency.requestId as string;
      say(`\n▶ One request across two logs: request ${id}`);
      for (const [name, n] of [['us-east', usNode], ['eu-west', euNode]] as const) {
        const all = await entries(n.http);
        // One entry per node: the forward step here, the governed query there.
        for (const e of all.filter((x) => x.entry.reasons.includes(`request ${id}`))) say(`  ${name} #${e.auditId} ${e.entry.action} ${e.entry.decision} (${e.entry.channel}): ${e.entry.reasons.join(' · ')}`);
      }
    }
    if (values.keep === true) {
      say(`\nNodes keep running; query the us-east node with:\n  curl -s -H 'authorization: Bearer ${SCENARIO_KEYS.ursula}' -H 'content-type: application/json' -d '{"sql":"SELECT condition, count(*) AS n FROM eu_patients GROUP BY condition","purpose":"research"}' http://127.0.0.1:${usNode.http}/v1/query\n(/v1/residency/query answers the same and reports the route)\nStop with Ctrl-C.`);
      await new Promise<void>((r) => { process.once('SIGINT', () => r()); process.once('SIGTERM', () => r()); });
    }
  } finally {
    stop();
  }
  return EXIT.ok;
}
