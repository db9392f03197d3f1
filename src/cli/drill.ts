/**
 * `gatehouse drill exfiltration [--patients N] [--json]`: an incident-response drill against
 * a throwaway copy of the demo. A contractor (Keystone Mutual's analyst) works normally, then
 * exfiltrates claims slowly — many small row-level queries, each under every per-query cap.
 * The drill shows, and checks, each link of the chain: detection (slow-exfiltration rule),
 * the alert and its signed webhook to the on-call receiver, the automatic suspension (and its
 * audit entry), the contractor refused, the auditor's report of what was taken, the incident,
 * the trace of a leaked 10 % subset back to the contractor and the query, and an
 * administrator lifting the suspension. It prints the timeline; the exit code is 0 only if
 * every step held.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CellValue } from '../model/result.ts';
import { verifyWebhookSignature } from '../monitoring/webhooks.ts';
import { mulberry32 } from '../monitoring/synthetic.ts';
import { COMMANDS, parseOptions } from './commands.ts';

export interface DrillStep {
  readonly step: string;
  readonly atMs: number;
  readonly ok: boolean;
  readonly detail: string;
}

const KEYS = { rhea: 'drill-key-rhea-0123456789abcdef', ivan: 'drill-key-ivan-0123456789abcdef', ada: 'drill-key-ada-0123456789abcdef0', audrey: 'drill-key-audrey-0123456789abcd', olivia: 'drill-key-olivia-0123456789abcd' } as const;
const SECRET_ENV = 'GATEHOUSE_DRILL_WEBHOOK_SECRET';

export async function runExfiltrationDrill(options: { patients?: number; log?: (s: DrillStep) => void } = {}): Promise<DrillStep[]> {
  const steps: DrillStep[] = [];
  const t0 = performance.now();
  const step = (name: string, ok: boolean, detail: string): void => {
    const s = { step: name, atMs: Math.round(performance.now() - t0), ok, detail };
    steps.push(s);
    options.log?.(s);
  };
  const dir = mkdtempSync(join(tmpdir(), 'gh-drill-'));
  const secret = randomBytes(24).toString('base64url');
  process.env[SECRET_ENV] = secret;
  const hooks: { body: string; signature: string }[] = [];
  const receiver: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { hooks.push({ body, signature: String(req.headers['gatehouse-signature'] ?? '') }); res.writeHead(204).end(); });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/oncall`;
  const { createDemoWorkspace } = await import('../demo/workspace.ts');
  const { startNode } = await import('../node/start.ts');
  const ws = join(dir, 'ws');
  await createDemoWorkspace(ws, { patients: options.patients ?? 400, keys: KEYS });
  writeFileSync(join(ws, 'monitoring.yaml'), [
    'monitoring:',
    '  contacts:',
    `    - { name: security-oncall, webhook: "${hookUrl}", secretEnv: ${SECRET_ENV} }`,
    '  rules:',
    '    slow-exfiltration: { windowMinutes: 60, rows: 150, maxRowsPerQuery: 100, contact: security-oncall, respond: suspend-sessions }',
    '  leakTracing:',
    '    claims: { vary: [amount_billed, amount_paid], canaries: 2 }',
    '',
  ].join('\n'));
  const node = await startNode({ workspaceDir: ws, auditDir: join(dir, 'audit'), demo: true, engineOptions: { poolSize: 2 }, http: null, wire: null, tls: null });
  const gh = node.gatehouse;
  const monitoring = gh.monitoring();
  const as = (who: keyof typeof KEYS) => ({ credential: KEYS[who], source: '10.20.0.7', channel: 'drill' });
  const ask = (sql: string) => gh.query({ ...as('ivan'), sql, purpose: 'claims-processing' });
  try {
    step('start', true, `demo node up with monitoring: slow-exfiltration (150 rows in 60 min, queries ≤ 100 rows) → alert security-oncall, suspend; claims watermarked`);

    for (const sql of ['SELECT payer, count(*) AS n FROM claims GROUP BY payer', 'SELECT status, count(*) AS n FROM claims GROUP BY status', 'SELECT region, sum(amount_paid) AS paid FROM claims GROUP BY region']) await ask(sql);
    step('routine work', monitoring.monitor.alerts.list({ principal: 'ivan' }).length === 0, 'ivan runs three aggregate reports: no alert');

    const taken: CellValue[][] = [];
    const auditIds: string[] = [];
    let detectedAt = -1;
    let queries = 0;
    let refused: string | null = null;
    let largest = 0;
    for (let lo = 0; lo < 100_000 && queries < 60; lo += 40) {
      let r;
      try {
        r = await ask(`SELECT claim_id, payer, status, amount_billed, amount_paid FROM claims WHERE claim_id >= ${lo} AND claim_id < ${lo + 40}`);
      } catch (err) {
        refused = (err as { code?: string }).code ?? 'error';
        break;
      }
      queries++;
      if (r.rows.length > 0) { taken.push(...r.rows.map((x) => [...x])); auditIds.push(r.governance.auditId); }
      largest = Math.max(largest, r.rows.length);
      if (detectedAt < 0 && monitoring.monitor.alerts.list({ principal: 'ivan' }).some((a) => a.rule === 'slow-exfiltration')) detectedAt = queries;
    }
    step('slow exfiltration', queries >= 2 && taken.length > 0 && largest <= 100, `ivan pages through claims 40 ids at a time: ${queries} queries, ${taken.length} rows, at most ${largest} per query (row cap 1000)`);
    const alert = monitoring.monitor.alerts.list({ principal: 'ivan' }).find((a) => a.rule === 'slow-exfiltration');
    step('detection', alert !== undefined && detectedAt > 0, alert ? `alert ${alert.id} after query ${detectedAt}: ${alert.summary}` : 'no alert');
    step('suspension', refused === 'POLICY_DENIED', `the next query was refused (${refused ?? 'not refused'}): automatic response "${alert?.responses[0]?.kind ?? 'none'}"`);

    await monitoring.monitor.tick();
    const hook = hooks.find((h) => h.body.includes(alert?.id ?? '\u0000'));
    const verified = hook !== undefined && verifyWebhookSignature(secret, hook.signature, hook.body, Math.floor(Date.now() / 1000));
    step('webhook', verified, hook ? `security-oncall received the alert, signature ${verified ? 'verified' : 'INVALID'}` : 'no webhook arrived');

    let responseEntry = false;
    for (let i = 0; i < 50 && !responseEntry; i++) {
      responseEntry = (await node.audit.search({})).some((h) => h.entry.action === 'monitoring.response.suspend-sessions');
      if (!responseEntry) await new Promise((r) => setTimeout(r, 20));
    }
    step('audit', responseEntry, 'the suspension has its own audit entry (monitoring.response.suspend-sessions)');

    const report = await monitoring.activity(as('audrey'));
    const x = report.extraction.find((e) => e.principal === 'ivan' && e.dataset === 'claims');
    step('report', x !== undefined && x.rowsReleased >= taken.length, x ? `auditor's view: ivan took ${x.rowsReleased} claims rows in ${x.requests} requests for ${x.purposes.join(', ')}; columns seen unmasked: ${x.columnsUnmasked.join(', ')}` : 'ivan missing from the report');
    if (alert) await monitoring.changeAlert(as('audrey'), alert.id, 'confirm');
    const incident = monitoring.monitor.incidents.list((i) => i.alertId === alert?.id)[0];
    step('incident', incident !== undefined, incident ? `auditor confirmed the alert: incident ${incident.id}${incident.agreementId ? '' : ' (no SLA agreement with keystone-mutual in the demo: no clock)'}` : 'no incident');

    // The leak: a shuffled subset — a tenth of what was taken, at least 20 rows (seeded, so a run is reproducible).
    const rnd = mulberry32(21);
    const shuffled = [...taken];
    for (let i = shuffled.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]; }
    const leaked = shuffled.slice(0, Math.max(20, Math.ceil(taken.length / 10)));
    const csv = ['claim_id,payer,status,amount_billed,amount_paid', ...leaked.map((r) => r.map((c) => (c === null ? '' : String(c))).join(','))].join('\n');
    const trace = await monitoring.trace(as('audrey'), csv);
    const best = trace.candidates[0];
    step('trace', best?.principal === 'ivan' && best.confidence >= 0.99 && auditIds.includes(best.auditId ?? ''), `a leaked CSV of ${leaked.length} of the ${taken.length} rows, shuffled: ${trace.verdict}`);

    await monitoring.liftHold(as('olivia'), 'ivan');
    await ask('SELECT payer, count(*) AS n FROM claims GROUP BY payer');
    step('lift', true, 'an administrator lifted the suspension (audited); ivan can query again');
  } catch (err) {
    step('error', false, (err as Error).message);
  } finally {
    await node.close();
    await new Promise((r) => receiver.close(r));
    delete process.env[SECRET_ENV];
    rmSync(dir, { recursive: true, force: true });
  }
  return steps;
}

export async function cmdDrill(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: parseOptions(COMMANDS.drill!.options), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  if (positionals[0] !== 'exfiltration') {
    const { UsageError } = await import('./exit.ts');
    throw new UsageError('the drill to run: gatehouse drill exfiltration', { hint: 'gatehouse drill --help' });
  }
  const patients = values.patients !== undefined ? Number(values.patients) : undefined;
  if (!values.json) out.write('Exfiltration drill against a throwaway demo (this takes a few seconds)…\n');
  const steps = await runExfiltrationDrill({ ...(patients ? { patients } : {}), ...(values.json ? {} : { log: (s) => out.write(`  ${s.ok ? '✓' : '✗'} ${(`${(s.atMs / 1000).toFixed(2)} s`).padStart(8)}  ${s.step}\n`) }) });
  if (values.json) out.write(`${JSON.stringify({ ok: steps.every((s) => s.ok), steps }, null, 2)}\n`);
  else out.write(`\nTimeline\n${steps.map((s) => `${(`${(s.atMs / 1000).toFixed(2)} s`).padStart(8)}  ${s.ok ? '✓' : '✗'} ${s.step.padEnd(18)} ${s.detail}`).join('\n')}\n`);
  return steps.every((s) => s.ok) ? 0 : 1;
}
