/**
 * `gatehouse fl`: federated learning from the command line, against a node's partner API
 * (the /v1/fl routes, src/server/fl-routes.ts), and `gatehouse fl demo`: step 3 of scenario 2
 * on this machine — three bank nodes as processes, a fraud model trained with secure
 * aggregation and DP, the audit on every node, then the agreement ends and the model is shredded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { COMMANDS, parseOptions } from './commands.ts';
import { errorFromBody, UsageError } from './exit.ts';
import { formatTable } from './table.ts';
import { GatehouseError } from '../errors.ts';
import { bearerHeader } from '../identity/credentials.ts';
import { BANK_KEYS, createBanks } from '../fl/node/scenario.ts';
import { FRAUD_FEATURES } from '../fl/models/synthetic.ts';

type Out = NodeJS.WritableStream;
const NODE_PROCESS = new URL('../node/fl-process.ts', import.meta.url).pathname;

async function api<T>(url: string, key: string | undefined, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, url), { method, headers: { ...(key ? { authorization: bearerHeader(key) } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : null, signal: AbortSignal.timeout(120_000) });
  } catch (err) {
    throw new GatehouseError('UNAVAILABLE', `cannot reach ${url}: ${(err as Error).message}`, { hint: 'start the node, or set --url (or GATEHOUSE_URL)' });
  }
  const json = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
  if (!res.ok) throw errorFromBody(json.error, res.status);
  return json as T;
}

const fmt = (x: number | null | undefined, d = 4): string => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');

function progressTable(rounds: readonly any[]): string {
  return formatTable(['round', 'participants', 'dropouts', 'accuracy', 'loss', 'ε'], rounds.map((r) => [String(r.round), r.participants.join(','), r.dropouts.join(',') || '-', fmt(r.accuracy), fmt(r.testLoss), r.epsilon ? fmt(r.epsilon, 3) : '-']));
}

async function waitFor(url: string, key: string | undefined, job: string, out: Out | null): Promise<any> {
  let shown = 0;
  for (;;) {
    const s = await api<any>(url, key, 'GET', `/v1/fl/jobs/${encodeURIComponent(job)}`);
    if (out) for (; shown < s.rounds.length; shown++) { const r = s.rounds[shown]; out.write(`  round ${r.round}: ${r.participants.length} participants${r.dropouts.length ? `, dropped ${r.dropouts.join(',')}` : ''}, accuracy ${fmt(r.accuracy)}, loss ${fmt(r.testLoss)}${r.epsilon ? `, ε ${fmt(r.epsilon, 3)}` : ''}\n`); }
    if (s.state !== 'running') return s;
    await new Promise((r) => setTimeout(r, 250));
  }
}

function configOf(v: Record<string, any>): Record<string, unknown> {
  const fromFile = v.config ? JSON.parse(readFileSync(v.config, 'utf8')) as Record<string, unknown> : {};
  const num = (k: string) => (v[k] === undefined ? undefined : Number(v[k]));
  const c: Record<string, unknown> = { ...fromFile };
  if (v.features) c.features = String(v.features).split(',');
  if (v.rounds) c.rounds = num('rounds');
  if (v.model) c.model = v.model === 'mlp' ? { kind: 'mlp', hidden: num('hidden') ?? 8 } : { kind: 'logistic' };
  if (v.algorithm) c.algorithm = v.algorithm;
  if (v.clip) c.clip = num('clip');
  if (v.degree || v.threshold) c.aggregation = { mode: 'secagg', degree: num('degree') ?? 2, threshold: num('threshold') ?? 2 };
  if (v.ckks) c.aggregation = { mode: 'ckks', keyAuthority: v.ckks };
  if (v.robust) c.aggregation = { mode: 'robust', rule: v.robust, byzantine: num('byzantine') ?? 1 };
  if (v['dp-noise']) c.dp = { noiseMultiplier: num('dp-noise'), delta: num('dp-delta') ?? 1e-6 };
  if (!c.features) throw new UsageError('give the features the model reads: --features a,b,c (or --config FILE)', { hint: 'gatehouse fl start --help' });
  return c;
}

function startNode(wsDir: string): Promise<{ child: ChildProcess; http: number; federation: number }> {
  const child = spawn(process.execPath, [NODE_PROCESS, wsDir, '--demo'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    createInterface({ input: child.stdout! }).once('line', (line) => {
      const info = JSON.parse(line) as { http?: number; federation?: number; error?: { message: string } };
      if (info.error) rej(new Error(info.error.message)); else res({ child, http: info.http!, federation: info.federation! });
    });
    child.once('exit', (code) => rej(new Error(`the node for ${wsDir} exited (${code})`)));
  });
}

async function demo(v: Record<string, any>, out: Out): Promise<number> {
  const say = (s: string): void => { out.write(`${s}\n`); };
  const dir = typeof v.dir === 'string' ? resolve(v.dir) : mkdtempSync(join(tmpdir(), 'gatehouse-fl-'));
  const banks = await createBanks(dir);
  say(`Scenario 2, step 3: three banks train a fraud model (workspaces in ${dir})`);
  const nodes = await Promise.all(banks.map((b) => startNode(b.wsDir)));
  const stop = (): void => { for (const n of nodes) n.child.kill('SIGTERM'); };
  try {
    const url = (i: number) => `http://127.0.0.1:${nodes[i]!.http}`;
    const key = (i: number, who: 'operator' | 'admin' | 'auditor') => BANK_KEYS[banks[i]!.nodeId]![who];
    say(formatTable(['node', 'region', 'partner HTTP', 'node listener (mTLS)', 'pinned key'], banks.map((b, i) => [b.nodeId, b.region, url(i), `https://127.0.0.1:${nodes[i]!.federation}`, b.identity.publicKey])));
    say('\n▶ bank-a (coordinator) records the consortium agreement the model is kept under');
    await api(url(0), key(0, 'admin'), 'POST', '/v1/governance/vendors', { name: 'fraud-consortium' });
    const { agreement } = await api<any>(url(0), key(0, 'admin'), 'POST', '/v1/governance/agreements', { kind: 'DPA', title: 'Fraud model consortium', partner: 'fraud-consortium', effectiveFrom: new Date().toISOString(), endsOn: null, datasets: ['transactions'], purposes: ['model-training'] });
    say(`  agreement ${agreement.id}`);
    say('\n▶ each bank\'s operator joins job fraud-model on its own node, with a lifetime budget ε=8, δ=1e-6 for its transactions');
    for (let i = 0; i < 3; i++) {
      const j = await api<any>(url(i), key(i, 'operator'), 'POST', '/v1/fl/participations', { job: 'fraud-model', coordinator: 'bank-a', dataset: 'transactions', label: 'is_fraud', budget: { epsilon: 8, delta: 1e-6 } });
      say(`  ${banks[i]!.nodeId}: joined (budget ρ=${fmt(j.capRho, 4)} for ${j.budgetSubject})`);
    }
    const rounds = Number(v.rounds ?? 8);
    say(`\n▶ bank-a starts ${rounds} rounds: logistic regression, FedAvg, SecAgg+ (t=2 of 3), clip 1, distributed discrete Gaussian z=1.5`);
    await api(url(0), key(0, 'operator'), 'POST', '/v1/fl/jobs', { job: 'fraud-model', participants: banks.map((b) => b.nodeId), agreement: agreement.id, config: { features: [...FRAUD_FEATURES], rounds, batchSize: 100_000, learningRate: 1, clip: 1, aggregation: { mode: 'secagg', degree: 2, threshold: 2 }, dp: { noiseMultiplier: 1.5, delta: 1e-6 } } });
    const s = await waitFor(url(0), key(0, 'operator'), 'fraud-model', out);
    if (s.state !== 'finished') say(`  ${s.error?.code}: ${s.error?.message}`);
    say(`\n${progressTable(s.rounds)}`);
    const model = await api<any>(url(0), key(0, 'operator'), 'GET', '/v1/fl/jobs/fraud-model/model');
    say(`\n▶ the model (encrypted artefact ${s.model.artefactId}, labelled with ${agreement.id}); its card:`);
    say(JSON.stringify({ features: model.features, ...model.card, weights: model.weights.map((w: number) => Number(w.toFixed(3))) }, null, 2).split('\n').map((l) => `  ${l}`).join('\n'));
    say('\n▶ every node audited every round (no row and no single update left any bank):');
    const rows: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const e = (await api<any>(url(i), key(i, 'auditor'), 'GET', '/v1/audit/entries?limit=5000')).entries.map((x: any) => x.entry);
      const n = (a: string) => String(e.filter((x: any) => x.action === a).length);
      rows.push([banks[i]!.nodeId, String(e.filter((x: any) => x.action === 'query' && x.purpose === 'model-training').length), n('fl.release'), n('fl.round'), n('fl.model')]);
    }
    say(formatTable(['node', 'governed reads (model-training)', 'fl.release', 'fl.round', 'fl.model'], rows));
    say('\n▶ the consortium ends: bank-a terminates the agreement, and the model is crypto-shredded');
    const t = await api<any>(url(0), key(0, 'admin'), 'POST', '/v1/governance/agreements/terminate', { id: agreement.id, reason: 'consortium dissolved' });
    say(`  destroyed: ${t.destroyed.join(', ')}`);
    try { await api(url(0), key(0, 'operator'), 'GET', '/v1/fl/jobs/fraud-model/model'); } catch (err) { say(`  reading the model now: ${(err as GatehouseError).code ?? 'error'} — ${(err as Error).message}`); }
    if (v.keep) {
      say('\nThe nodes keep running (Ctrl-C stops them).');
      await new Promise<void>((r) => process.once('SIGINT', () => r()));
    }
  } finally {
    stop();
  }
  return 0;
}

export async function flCommand(argv: string[], out: Out): Promise<number> {
  const { values: v, positionals } = parseArgs({ args: argv, options: parseOptions(COMMANDS.fl!.options), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  const sub = positionals[0];
  const url = v.url ?? process.env.GATEHOUSE_URL ?? 'http://127.0.0.1:8080';
  const key = v.key ?? process.env.GATEHOUSE_API_KEY;
  const need = (k: string) => { if (!v[k]) throw new UsageError(`give --${k}`, { hint: `gatehouse fl ${sub} --help` }); return String(v[k]); };
  switch (sub) {
    case 'demo': return demo(v, out);
    case 'join': {
      const budget = v.epsilon ? { epsilon: Number(v.epsilon), delta: Number(v.delta ?? 1e-6) } : undefined;
      if (v['key-authority']) {
        const r = await api<any>(url, key, 'POST', '/v1/fl/participations', { job: need('job'), coordinator: need('coordinator'), keyAuthority: true });
        out.write(v.json ? `${JSON.stringify(r)}\n` : `${r.node} is the CKKS key authority of ${r.job} (coordinator ${r.coordinator})\n`);
        return 0;
      }
      const r = await api<any>(url, key, 'POST', '/v1/fl/participations', { job: need('job'), coordinator: need('coordinator'), dataset: need('dataset'), label: need('label'), ...(v.holdout ? { holdout: Number(v.holdout) } : {}), ...(v['trust-coordinator'] ? { trustCoordinator: true } : {}), ...(budget ? { budget } : {}) });
      out.write(v.json ? `${JSON.stringify(r)}\n` : `joined ${r.job} (coordinator ${r.coordinator}) as ${r.node}; budget subject ${r.budgetSubject}${r.capRho ? `, ρ cap ${r.capRho}` : ''}\n`);
      return 0;
    }
    case 'start': {
      const r = await api<any>(url, key, 'POST', '/v1/fl/jobs', { job: need('job'), participants: need('participants').split(','), agreement: need('agreement'), config: configOf(v) });
      if (!v.wait) { out.write(v.json ? `${JSON.stringify(r)}\n` : `started ${r.job}; follow it with: gatehouse fl status --job ${r.job} --wait\n`); return 0; }
      const s = await waitFor(url, key, r.job, v.json ? null : out);
      out.write(v.json ? `${JSON.stringify(s)}\n` : `${s.state}${s.error ? `: ${s.error.message}` : ''}\n`);
      return s.state === 'finished' ? 0 : 1;
    }
    case 'status': {
      const s = v.wait ? await waitFor(url, key, need('job'), null) : await api<any>(url, key, 'GET', `/v1/fl/jobs/${encodeURIComponent(need('job'))}`);
      out.write(v.json ? `${JSON.stringify(s)}\n` : `${s.job}: ${s.state}${s.error ? ` (${s.error.message})` : ''}\n${progressTable(s.rounds)}\n`);
      return 0;
    }
    case 'model': {
      const m = await api<any>(url, key, 'GET', `/v1/fl/jobs/${encodeURIComponent(need('job'))}/model`);
      const text = `${JSON.stringify(m, null, 2)}\n`;
      if (v.out) { writeFileSync(v.out, text, { mode: 0o600 }); out.write(`wrote ${v.out}\n`); } else out.write(text);
      return 0;
    }
    default:
      throw new UsageError('give a sub-command: start, join, status, model or demo', { hint: 'gatehouse fl --help' });
  }
}
