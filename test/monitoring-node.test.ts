/**
 * Monitoring on a running demo node: the four live questions over HTTP (JSON and a real
 * server-sent-events stream), scoped so a partner sees only itself; an automatic suspension
 * written in the workspace refuses the partner at once, is audited, and only an
 * administrator lifts it; /metrics exposes the request counters and latency histograms.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { main } from '../src/cli/main.ts';
import { codeOf, demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let fx: ServerFixture;
let app: FastifyInstance;
const auth = (who: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[who]}` });

before(async () => {
  fx = await demoFixture({
    patients: 300, http: true,
    edit: (ws) => writeFileSync(join(ws, 'monitoring.yaml'), [
      'monitoring:',
      '  recentMinutes: 30',
      '  rules:',
      '    repeated-denials: { count: 3, windowMinutes: 10, respond: suspend-sessions }',
      '  incidents:',
      '    owner: security-team',
      '    terms: { keystone-mutual: { responseMinutes: 60, remediationMinutes: 240 } }',
      '',
    ].join('\n')),
  });
  app = fx.http.app;
});
after(async () => { await fx.close(); });

async function entries(action: string) {
  return (await fx.log.search({})).filter((h) => h.entry.action === action);
}

describe('the four live questions', () => {
  it('tells an auditor who queried, for what purpose, and how many rows of which columns they took', async () => {
    await fx.query('ivan', 'SELECT payer, count(*) AS n FROM claims GROUP BY payer');
    const rowLevel = await fx.query('ivan', 'SELECT claim_id, patient_id, payer FROM claims');
    const distinctPatients = new Set(rowLevel.rows.map((r) => r[1])).size;
    await fx.query('rhea', 'SELECT count(*) AS n FROM patients').catch(() => undefined);
    const res = await app.inject({ url: '/v1/activity', headers: auth('audrey') });
    assert.equal(res.statusCode, 200, res.body);
    const a = res.json();
    assert.equal(a.scope, 'all');
    const ivan = a.who.recent.find((r: { principal: string }) => r.principal === 'ivan');
    assert.ok(ivan, 'ivan queried in the last 30 minutes');
    assert.equal(ivan.purpose, 'claims-processing');
    assert.equal(ivan.org, 'keystone-mutual');
    const x = a.extraction.find((e: { principal: string; dataset: string }) => e.principal === 'ivan' && e.dataset === 'claims');
    assert.ok(x.rowsReleased > 0);
    assert.deepEqual(x.purposes, ['claims-processing']);
    assert.ok(x.columnsUnmasked.includes('payer'));
    assert.equal(x.unitsReleased, distinctPatients, 'distinct patients released in row-level results');
    assert.ok(distinctPatients > 1 && distinctPatients <= x.rowsReleased);
    assert.ok(a.who.serviceKeys.some((k: { principal: string }) => k.principal === 'ivan'));
    assert.ok(a.conditions.some((c: { principal: string }) => c.principal === 'rhea'));
  });

  it('shows a partner only its own activity, and audits every look', async () => {
    const res = await app.inject({ url: '/v1/activity', headers: auth('ivan') });
    assert.equal(res.statusCode, 200);
    const a = res.json();
    assert.equal(a.scope, 'self');
    const principals = new Set([...a.who.recent, ...a.extraction, ...a.conditions, ...a.who.serviceKeys].map((r: { principal: string }) => r.principal));
    assert.deepEqual([...principals], ['ivan']);
    assert.ok((await entries('monitoring.activity')).length >= 2);
    assert.equal((await app.inject({ url: '/v1/activity' })).statusCode, 401);
  });

  it('streams requests live to an auditor over server-sent events, and only its own to a partner', async () => {
    const open = async (who: keyof typeof KEYS) => {
      const ctl = new AbortController();
      const res = await fetch(`${fx.http.url}/v1/activity`, { headers: { ...auth(who), accept: 'text/event-stream' }, signal: ctl.signal });
      assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      const reader = res.body!.getReader();
      let text = '';
      const until = async (pred: (t: string) => boolean, ms = 5000): Promise<string> => {
        const deadline = Date.now() + ms;
        while (!pred(text)) {
          if (Date.now() > deadline) throw new Error(`stream did not show the event: ${text.slice(0, 500)}`);
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
        }
        return text;
      };
      return { until, close: () => ctl.abort(), get text() { return text; } };
    };
    const audrey = await open('audrey');
    const ivan = await open('ivan');
    await audrey.until((t) => t.includes(': gatehouse activity stream'));
    await ivan.until((t) => t.includes(': gatehouse activity stream'));
    await fx.query('ada', 'SELECT count(*) AS n FROM claims');
    await fx.query('ivan', 'SELECT count(*) AS n FROM claims');
    const ivanQuery = /"principal":"ivan","at":"[^"]+","auditId":"[^"]+","action":"query"/;
    const seen = await audrey.until((t) => ivanQuery.test(t) && t.includes('"principal":"ada"'));
    const ev = seen.split('\n\n').find((b) => b.startsWith('event: request') && b.includes('"principal":"ivan"') && b.includes('"action":"query"'))!;
    const data = JSON.parse(ev.split('\ndata: ')[1]!);
    assert.equal(data.action, 'query');
    assert.equal(data.decision, 'allow');
    const own = await ivan.until((t) => ivanQuery.test(t));
    assert.ok(!own.includes('"principal":"ada"'), 'a partner never sees another principal on its stream');
    audrey.close(); ivan.close();
  });
});

describe('automatic responses', () => {
  it('suspends a partner after repeated denials, audits it, and only an administrator lifts it', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await codeOf(fx.query('ivan', `SELECT count(*) AS n FROM claims WHERE ${i} = ${i}`, 'marketing')), 'POLICY_DENIED');
    // The hold is in force before the next request: ivan's permitted query is now refused.
    const refused = fx.query('ivan', 'SELECT count(*) AS n FROM claims');
    await assert.rejects(refused, (e: Error & { code?: string }) => e.code === 'POLICY_DENIED' && /suspended/.test(e.message));
    const alerts = (await app.inject({ url: '/v1/alerts', headers: auth('audrey') })).json().alerts;
    const alert = alerts.find((x: { rule: string; principal: string }) => x.rule === 'repeated-denials' && x.principal === 'ivan');
    assert.equal(alert.responses[0].kind, 'suspend-sessions');
    // The response is audited with its own entry, naming the alert.
    let audited: Awaited<ReturnType<typeof entries>> = [];
    for (let i = 0; i < 50 && audited.length === 0; i++) { audited = await entries('monitoring.response.suspend-sessions'); if (!audited.length) await new Promise((r) => setTimeout(r, 20)); }
    assert.equal(audited.length, 1);
    assert.ok(audited[0]!.entry.reasons.some((r) => r.includes(alert.id)));
    // An auditor may see and acknowledge the alert but not lift the suspension.
    assert.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${alert.id}/acknowledge`, headers: auth('audrey') })).statusCode, 200);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/monitoring/holds/ivan/lift', headers: auth('audrey') })).statusCode, 403);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/monitoring/holds/ivan/lift', headers: auth('ivan') })).statusCode, 403);
    const lift = await app.inject({ method: 'POST', url: '/v1/monitoring/holds/ivan/lift', headers: auth('olivia') });
    assert.equal(lift.statusCode, 200, lift.body);
    assert.equal(lift.json().lifted, 'suspend-sessions');
    await fx.query('ivan', 'SELECT count(*) AS n FROM claims');
    const lifts = await entries('monitoring.response.lift');
    assert.deepEqual(lifts.map((h) => h.entry.decision), ['deny', 'deny', 'allow'], 'the two refused attempts and the lift are all audited');
    // The partner's own view of its alerts has it, and only it.
    const mine = (await app.inject({ url: '/v1/alerts', headers: auth('ivan') })).json().alerts;
    assert.ok(mine.length >= 1 && mine.every((x: { principal: string }) => x.principal === 'ivan'));
  });
});

describe('gatehouse activity', () => {
  const sink = () => { let text = ''; const w = new Writable({ write(c, _e, cb) { text += String(c); cb(); } }); return { w, get text() { return text; } }; };

  it('prints the four questions as tables for an auditor', async () => {
    await fx.query('ivan', 'SELECT payer, count(*) AS n FROM claims GROUP BY payer');
    const out = sink();
    assert.equal(await main(['activity', '--url', fx.http.url, '--key', KEYS.audrey], out.w), 0, out.text);
    for (const heading of ['WHO — requests in the last minutes', 'WHO — access held now', 'CONDITIONS', 'PURPOSE AND EXTRACTION', 'ALERTS —']) assert.ok(out.text.includes(heading), heading);
    assert.match(out.text, /ivan\s+│ claims\s+│ claims-processing/);
    const json = sink();
    assert.equal(await main(['activity', '--url', fx.http.url, '--key', KEYS.ivan, '--json'], json.w), 0);
    assert.equal(JSON.parse(json.text).scope, 'self');
  });

  it('--watch follows requests live until stopped', async () => {
    const child = spawn(process.execPath, ['bin/gatehouse.ts', 'activity', '--watch', '--json', '--url', fx.http.url, '--key', KEYS.audrey], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let text = '';
      child.stdout.on('data', (c) => { text += String(c); });
      const wait = async (pred: () => boolean) => { for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 25)); assert.ok(pred(), text.slice(0, 400)); };
      await wait(() => text.includes('"scope":"all"'));
      // The stream opens after the snapshot: query until the watcher shows a request live.
      const shown = () => text.split('\n').some((l) => l.includes('"event":"request"') && l.includes('"principal":"ada"') && l.includes('"action":"query"'));
      for (let i = 0; i < 50 && !shown(); i++) { await fx.query('ada', 'SELECT count(*) AS n FROM claims'); await new Promise((r) => setTimeout(r, 100)); }
      assert.ok(shown(), text.slice(-400));
    } finally { child.kill(); }
  });
});

describe('operations', () => {
  it('exposes Prometheus metrics: requests by outcome and channel, latency by stage, alerts and the audit log', async () => {
    const res = await app.inject({ url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    const m = res.body;
    assert.match(m, /gatehouse_requests_total\{outcome="allow",channel="test"\} \d+/);
    assert.match(m, /gatehouse_requests_total\{outcome="deny",channel="test"\} \d+/);
    assert.match(m, /gatehouse_request_duration_seconds_bucket\{le="[^"]+",stage="http"\} \d+/);
    for (const stage of ['monitor', 'authenticate', 'operation', 'audit']) assert.match(m, new RegExp(`gatehouse_request_duration_seconds_count\\{stage="${stage}"\\} [1-9]`), stage);
    assert.match(m, /gatehouse_alerts_total\{rule="repeated-denials"\} [1-9]/);
    assert.match(m, /gatehouse_audit_log_entries [1-9]/);
    assert.ok(!m.includes('ivan') && !m.includes(KEYS.ivan), 'no principal and no key in a metric');
  });
});

describe('incidents under the partner\'s SLA', () => {
  // Last: registering the partner turns contractor governance on for it (grants are then required).
  it('a confirmed alert opens an incident on the SLA clock; a missed deadline becomes an owned finding', async () => {
    await fx.gh.governanceStore.vendors.register({ name: 'keystone-mutual', by: 'olivia' });
    await fx.gh.governanceStore.agreements.create({
      kind: 'SLA', title: 'Keystone service levels', parties: { ours: 'st-avery', partner: 'keystone-mutual' }, effectiveFrom: '2026-01-01', endsOn: null,
      datasets: ['claims'], purposes: ['claims-processing'], by: 'olivia',
    }, { knownDatasets: ['claims', 'patients'] });
    const alert = (await app.inject({ url: '/v1/alerts', headers: auth('audrey') })).json().alerts.find((x: { rule: string; principal: string }) => x.rule === 'repeated-denials' && x.principal === 'ivan');
    assert.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${alert.id}/confirm`, headers: auth('ivan') })).statusCode, 403, 'the subject of an alert cannot confirm it');
    assert.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${alert.id}/confirm`, headers: auth('audrey') })).statusCode, 200);
    assert.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${alert.id}/confirm`, headers: auth('audrey') })).statusCode, 409);
    const incident = (await app.inject({ url: '/v1/incidents', headers: auth('audrey') })).json().incidents.find((i: { alertId: string }) => i.alertId === alert.id);
    assert.ok(incident.agreementId, 'the clock runs under the SLA agreement in force');
    assert.equal(Date.parse(incident.respondBy) - Date.parse(incident.openedAt), 60 * 60_000);
    const monitoring = fx.gh.monitoring();
    const opened = Date.parse(incident.openedAt);
    assert.equal(await monitoring.checkSlaDeadlines(new Date(opened + 59 * 60_000)), 0);
    assert.equal(await monitoring.checkSlaDeadlines(new Date(opened + 61 * 60_000)), 1);
    assert.equal(await monitoring.checkSlaDeadlines(new Date(opened + 62 * 60_000)), 0, 'a deadline is reported once');
    const findings = await fx.gh.governanceStore.findings.list({});
    const breach = findings.find((f) => f.title.includes(incident.id));
    assert.ok(breach && breach.owner === 'security-team' && /missed its response deadline/.test(breach.title));
    assert.equal((await entries('monitoring.incident.sla-breach')).length, 1);
    // Remediated in time: no remediation breach.
    assert.equal((await app.inject({ method: 'POST', url: `/v1/incidents/${incident.id}/remediate`, headers: auth('audrey'), payload: { note: 'keys rotated, contractor offboarded' } })).statusCode, 200);
    assert.equal(await monitoring.checkSlaDeadlines(new Date(opened + 300 * 60_000)), 0);

    // The compliance report lists the incident with its SLA clock and the missed deadline, in every form.
    const report = (await app.inject({ url: '/v1/governance/report?format=json', headers: auth('audrey') })).json();
    const body = typeof report.body === 'string' ? JSON.parse(report.body) : report.body;
    const section = body.sections.find((x: { id: string }) => x.id === 'incidents');
    const row = section.rows.find((r: { cells: unknown[] }) => r.cells[0] === incident.id);
    assert.ok(row, 'the incident is in the report');
    const cell = (key: string) => row.cells[section.columns.findIndex((c: { key: string }) => c.key === key)];
    assert.equal(cell('rule'), 'repeated-denials');
    assert.equal(cell('partner'), 'keystone-mutual');
    assert.equal(cell('agreement'), incident.agreementId);
    assert.equal(cell('respondBy'), incident.respondBy);
    assert.equal(cell('remediateBy'), incident.remediateBy);
    assert.equal(cell('status'), 'remediated');
    assert.match(String(cell('breaches')), new RegExp(`response deadline missed: finding ${breach.id} \\(security-team\\)`));
    assert.equal(row.flag, 'alert', 'a breached incident is highlighted');
    assert.equal(body.figures.find((f: { label: string }) => f.label === 'SLA breaches').value, 1);
    assert.match(body.summary, /1 security incident was opened or worked; 1 SLA deadline was missed/);
    const csv = (await app.inject({ url: '/v1/governance/report?format=csv&section=incidents', headers: auth('audrey') })).body;
    assert.match(csv.split('\r\n')[0]!, /^Incident,Detected by,Partner,Opened,SLA agreement,Respond by/);
    assert.ok(csv.includes(incident.id) && csv.includes(incident.respondBy) && csv.includes(breach.id));
    const html = (await app.inject({ url: '/v1/governance/report?format=html', headers: auth('audrey') })).body;
    assert.ok(html.includes('Incidents and SLA clocks') && html.includes(incident.id) && html.includes(breach.id));
  });
});

describe('reloading the monitoring section', () => {
  it('applies an edited section within seconds, and keeps it when the next edit is invalid', async () => {
    const file = join(fx.wsDir, 'monitoring.yaml');
    const monitor = fx.gh.monitoring().monitor;
    const waitFor = async (pred: () => boolean) => { for (let i = 0; i < 60 && !pred(); i++) await new Promise((r) => setTimeout(r, 100)); return pred(); };
    writeFileSync(file, 'monitoring:\n  recentMinutes: 45\n  rules:\n    repeated-denials: { count: 4 }\n');
    assert.ok(await waitFor(() => monitor.config.recentMinutes === 45), 'the edit was applied');
    // The node's 1 s tick (src/operations/monitoring/attach.ts) rereads a changed section and then
    // calls monitor.tick(): a tick counted after the write has seen the invalid edit. Counted by
    // wrapping the real method, instead of sleeping 2.5 s.
    let ticks = 0;
    const tick = monitor.tick;
    monitor.tick = function (this: typeof monitor) { ticks++; return tick.call(this); };
    try {
      writeFileSync(file, 'monitoring:\n  recentMinutes: 45\n  rules:\n    repeated-denials: { count: 4, respond: delete-the-partner }\n');
      const seen = ticks + 1;
      assert.ok(await waitFor(() => ticks >= seen), 'a tick ran after the invalid edit');
    } finally { monitor.tick = tick; }
    assert.equal(monitor.config.rules['repeated-denials'].count, 4);
    assert.equal(monitor.config.rules['repeated-denials'].respond, null, 'an invalid edit changes nothing');
  });
});
