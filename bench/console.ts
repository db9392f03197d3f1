/**
 * Console benchmark: `npx node bench/console.ts [--quick]` (writes bench/results/console.json).
 *
 * 1. JavaScript shipped: bytes of console/dist/assets/*.js, raw and gzipped (level 9).
 *    Goal ≤ 300 kB gzipped.
 * 2. First meaningful paint of the workbench on loopback: a fresh browser context (cold
 *    cache) signed in (cookies set as the console sets them) opens /console/#/workbench;
 *    measured from navigation start to the workbench's SQL editor being visible, and the
 *    browser's own first-contentful-paint. Debian's chromium, headless. Goal ≤ 1 s.
 * 3. Log explorer page over a 10⁶-entry log: a real file-backed transparency log of 10⁶
 *    entries (100k with --quick) served by the audit HTTP plugin (src/audit/http.ts) on
 *    loopback, read as the console reads it: GET /v1/audit/entries with limit=50 and the
 *    explorer's filters (none, principal, dataset, decision, a time window near the end of
 *    the log), first page and a page deep in the log. The requests are interleaved
 *    round-robin so machine load hits every kind alike. The plugin's `authorize` grants an
 *    auditor here: the figure is the page itself; the per-request authorization (one
 *    audited read on the one path) is measured by bench/http.ts. Goal ≤ 100 ms per page.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { chromium } from 'playwright-core';
import { TransparencyLog } from '../src/audit/log.ts';
import { auditHttpPlugin } from '../src/audit/http.ts';
import { record } from '../src/audit/testing/fixtures.ts';
import { buildConsole, isStale, jsSize } from '../scripts/console-build.ts';
import { findChromium } from '../scripts/chromium.ts';
import { PASSWORDS, startConsoleNode } from '../test/console-node.ts';
import { isMain, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';

const NAME = 'console';

async function paint(rounds: number): Promise<{ visibleMs: number[]; fcpMs: number[] }> {
  const exe = findChromium();
  if (!exe) throw new Error('chromium is not installed: npx node scripts/chromium.ts install');
  const node = await startConsoleNode({ patients: 2000 });
  const browser = await chromium.launch({ executablePath: exe, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const visibleMs: number[] = []; const fcpMs: number[] = [];
  try {
    const r = await fetch(`${node.url}/console/session`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-gatehouse-csrf': 'sign-in' }, body: JSON.stringify({ principal: 'ivan', password: PASSWORDS.ivan }) });
    if (!r.ok) throw new Error(`sign-in failed: ${r.status}`);
    const url = new URL(node.url);
    const cookies = r.headers.getSetCookie().map((c) => { const [name, value] = c.split(';')[0]!.split('='); return { name: name!, value: value!, domain: url.hostname, path: name === 'gh_refresh' ? '/console/session' : '/' }; });
    for (let i = 0; i < rounds; i++) {
      const ctx = await browser.newContext();
      await ctx.addCookies(cookies);
      await ctx.addInitScript(() => { sessionStorage.setItem('gh_principal', 'ivan'); });
      const page = await ctx.newPage();
      const t0 = performance.now();
      await page.goto(`${node.url}/console/#/workbench`, { waitUntil: 'commit' });
      await page.getByLabel('SQL query').waitFor({ state: 'visible' });
      visibleMs.push(performance.now() - t0);
      const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
      if (fcp >= 0) fcpMs.push(fcp);
      await ctx.close();
    }
  } finally {
    await browser.close();
    await node.close();
  }
  return { visibleMs, fcpMs };
}

async function explorer(entries: number, rounds: number): Promise<Record<string, number[]>> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-console-bench-'));
  const auditLog = TransparencyLog.open(dir, { passphrase: 'bench-only', checkpointIntervalMs: 500 });
  const app = Fastify();
  try {
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 512 }, async () => { while (next < entries) await auditLog.append(record(next++)); }));
    log(NAME, `wrote ${entries} entries in ${Math.round(performance.now() - t0)} ms`);
    await auditLog.checkpoint();
    await app.register(auditHttpPlugin, { log: auditLog, authorize: () => ({ principal: 'auditor', auditor: true }) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/audit/entries`;
    const end = new Date(Date.UTC(2026, 4, 1, 12, 0, 0) + entries * 1000);
    const hourBeforeEnd = new Date(end.getTime() - 3600_000).toISOString();
    const kinds: Record<string, string> = {
      'first page, no filter': 'limit=50',
      'deep page, no filter': `limit=50&fromIndex=${Math.floor(entries * 0.9)}`,
      'principal': 'limit=50&principal=user-3@partner.example',
      'dataset': 'limit=50&dataset=claims',
      'decision deny': 'limit=50&decision=deny',
      'deep page, decision deny': `limit=50&decision=deny&fromIndex=${Math.floor(entries * 0.9)}`,
      'time window (last hour of the log)': `limit=50&from=${encodeURIComponent(hourBeforeEnd)}&to=${encodeURIComponent(end.toISOString())}`,
    };
    const out: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((k) => [k, []]));
    for (let r = 0; r < rounds; r++) {
      for (const [k, q] of Object.entries(kinds)) {
        const t = performance.now();
        const res = await fetch(`${base}?${q}`);
        const body = (await res.json()) as { entries?: unknown[] };
        if (!res.ok || !body.entries || body.entries.length === 0) throw new Error(`${k}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
        out[k]!.push(performance.now() - t);
      }
    }
    return out;
  } finally {
    await app.close();
    await auditLog.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const quick = isQuick();
  if (isStale()) await buildConsole();
  const js = jsSize();
  log(NAME, `JavaScript ${js.raw} B, ${js.gzip} B gzipped`);
  const p = await paint(quick ? 3 : 15);
  const visible = summarize(p.visibleMs, 1); const fcp = summarize(p.fcpMs, 1);
  log(NAME, `workbench visible p50 ${visible.p50} ms (max ${visible.max}), FCP p50 ${fcp.p50} ms`);
  const entries = quick ? 100_000 : 1_000_000;
  const pages = await explorer(entries, quick ? 5 : 30);
  const pageStats = Object.fromEntries(Object.entries(pages).map(([k, v]) => [k, summarize(v, 2)]));
  for (const [k, s] of Object.entries(pageStats)) log(NAME, `page (${k}): p50 ${s.p50} ms, p90 ${s.p90} ms, max ${s.max} ms`);
  const worstP50 = Math.max(...Object.values(pageStats).map((s) => s.p50));
  const result: BenchResult = {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(),
    figures: { jsBytes: js.raw, jsGzipBytes: js.gzip, workbenchVisibleMs: visible, firstContentfulPaintMs: fcp, logEntries: entries, explorerPageMs: pageStats, loadavgAtEnd: loadavg().map((x) => round(x, 2)) },
    goals: {
      'console JavaScript ≤ 300 kB gzipped': { goal: '≤ 300 kB', measured: `${(js.gzip / 1000).toFixed(1)} kB`, met: js.gzip <= 300_000 },
      'first meaningful paint of the workbench ≤ 1 s': { goal: '≤ 1000 ms', measured: `p50 ${visible.p50} ms, max ${visible.max} ms`, met: visible.p50 <= 1000 },
      'log explorer page ≤ 100 ms': { goal: '≤ 100 ms', measured: `worst p50 ${worstP50} ms over ${entries} entries`, met: worstP50 <= 100 },
    },
  };
  log(NAME, `wrote ${writeResult(result)}`);
  console.log(JSON.stringify(result.goals, null, 2));
}
