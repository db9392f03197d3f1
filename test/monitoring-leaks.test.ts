/**
 * Leak tracing: the same rows released to two partners carry different keyed marks, so a
 * leaked extract — reordered, cut to a 10 % subset, rounded, re-saved as CSV — names the
 * partner who received it, with the audit entry; a canary row alone names its partner even
 * when rounding erased the watermark; an extract nobody received, or the unmarked original,
 * names nobody. Then the same on a running node through `gatehouse trace FILE`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { AuditRecord } from '../src/audit/types.ts';
import type { CellValue } from '../src/engine/engine.ts';
import { binomialTail, LeakLedger, parseExtract } from '../src/monitoring/leaks.ts';
import { mulberry32 } from '../src/monitoring/synthetic.ts';
import { main } from '../src/cli/main.ts';
import { demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

const COLUMNS = [{ name: 'claim_id', type: 'BIGINT' }, { name: 'payer', type: 'VARCHAR' }, { name: 'amount_billed', type: 'DOUBLE' }];
const rnd = mulberry32(5);
const ORIGINAL: CellValue[][] = Array.from({ length: 200 }, (_, i) => [100_000 + i, ['Aetna', 'Medicare', 'Cigna', 'Humana'][i % 4]!, Math.round(rnd() * 500_000) / 100]);

function entryFor(principal: string): AuditRecord {
  return { time: '2026-03-02T10:00:00.000Z', principal, source: '10.0.0.1', channel: 'http', action: 'query', purpose: 'claims-processing', datasets: ['claims'], columns: [], decision: 'allow', reasons: [], policyVersion: 'v1', obligations: [], sqlFingerprint: `fp-${principal}`, rowsReturned: 200, resultDigest: null, errorCode: null };
}

function release(ledger: LeakLedger, principal: string, auditId: string, plainScan = true): CellValue[][] {
  const entry = entryFor(principal);
  const marked = ledger.mark({ principal, datasets: ['claims'], plainScan, entry, at: new Date('2026-03-02T10:00:00Z'), columns: COLUMNS, rows: ORIGINAL });
  ledger.bindAudit(entry, auditId);
  marked.commit();
  return marked.rows!.map((r) => [...r]);
}

const shuffle = <T>(xs: T[]): T[] => { const a = [...xs]; for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [a[i], a[j]] = [a[j]!, a[i]!]; } return a; };
const csv = (rows: CellValue[][]): string => ['claim_id,payer,amount_billed', ...rows.map((r) => r.map((c) => (typeof c === 'string' && c.includes(',') ? `"${c}"` : String(c))).join(','))].join('\n');

describe('watermarks and canaries', () => {
  const ledger = new LeakLedger(randomBytes(32), { claims: { vary: ['amount_billed'], canaries: 2 } });
  const ivan = release(ledger, 'ivan', '41');
  const rhea = release(ledger, 'rhea', '42');

  it('marks each partner differently while moving no value by more than one cent, and adds canaries', () => {
    assert.equal(ivan.length, 202);
    assert.notDeepEqual(ivan, rhea);
    const byId = new Map(ORIGINAL.map((r) => [r[0], r[2] as number]));
    const real = ivan.filter((r) => byId.has(r[0]));
    assert.equal(real.length, 200, 'identifiers of canary rows are new');
    for (const r of real) assert.ok(Math.abs((r[2] as number) - byId.get(r[0])!) <= 0.0100001, `moved by ${Math.abs((r[2] as number) - byId.get(r[0])!)}`);
    assert.ok(real.some((r) => r[2] !== byId.get(r[0])), 'some values carry the mark');
  });

  it('names the partner and audit entry of a reordered 10 % subset, rounded and re-saved as CSV', () => {
    const leaked = shuffle(ivan.filter((r) => ORIGINAL.some((o) => o[0] === r[0]))).slice(0, 20)
      .map((r) => [r[0], r[1], Number(((r[2] as number) + 1e-9).toFixed(2))]);
    const t = ledger.trace(parseExtract(csv(leaked)));
    assert.equal(t.candidates[0]!.principal, 'ivan');
    assert.equal(t.candidates[0]!.auditId, '41');
    assert.ok(t.candidates[0]!.confidence >= 0.99, t.verdict);
    assert.match(t.verdict, /most likely released to ivan \(audit entry 41\)/);
    const other = t.candidates.find((c) => c.principal === 'rhea')!;
    assert.equal(other.matchedRows, 20, 'rhea received the same rows…');
    assert.ok(other.confidence < 0.5, '…but not this copy of them');
  });

  it('names the partner from one canary row when rounding to whole units erased the watermark', () => {
    const canaries = rhea.filter((r) => !ORIGINAL.some((o) => o[0] === r[0]));
    assert.equal(canaries.length, 2);
    const real = rhea.filter((r) => ORIGINAL.some((o) => o[0] === r[0]));
    const leaked = shuffle([canaries[0]!, ...real.slice(0, 3)]).map((r) => ({ claim_id: r[0], payer: r[1], amount_billed: Math.round(r[2] as number) }));
    const t = ledger.trace(parseExtract(JSON.stringify(leaked)));
    assert.equal(t.candidates[0]!.principal, 'rhea');
    assert.equal(t.candidates[0]!.canaryRows, 1);
    assert.ok(t.candidates[0]!.confidence > 0.999);
  });

  it('names nobody for rows never released, and nobody with confidence for the unmarked original', () => {
    const never = ORIGINAL.map((r) => [Number(r[0]) + 900_000, r[1], r[2]]);
    const t = ledger.trace(parseExtract(csv(never)));
    assert.equal(t.candidates.length, 0);
    assert.equal(t.verdict, 'no release matches this extract: it names nobody');
    const clean = ledger.trace(parseExtract(csv(shuffle(ORIGINAL).slice(0, 40))));
    assert.ok(clean.candidates.every((c) => c.confidence < 0.99), clean.verdict);
    assert.match(clean.verdict, /^inconclusive/);
  });

  it('adds no canary to a result the query filtered, ordered or limited (it could contradict it)', () => {
    const l = new LeakLedger(randomBytes(32), { claims: { vary: [], canaries: 3 } });
    const entry = entryFor('ivan');
    const rows = l.mark({ principal: 'ivan', datasets: ['claims'], plainScan: false, entry, at: new Date(), columns: COLUMNS, rows: ORIGINAL }).rows!;
    assert.equal(rows.length, 200);
  });

  it('sums the evidence over many small results: two rows from each of ten queries still name their partner', () => {
    const l = new LeakLedger(randomBytes(32), { claims: { vary: ['amount_billed'], canaries: 0 } });
    const leaked: CellValue[][] = [];
    for (let q = 0; q < 10; q++) {
      const slice = ORIGINAL.slice(q * 20, q * 20 + 20);
      for (const who of ['ivan', 'rhea']) {
        const entry = entryFor(who);
        const m = l.mark({ principal: who, datasets: ['claims'], plainScan: false, entry, at: new Date(), columns: COLUMNS, rows: slice });
        l.bindAudit(entry, `${who}-${q}`);
        m.commit();
        if (who === 'ivan') leaked.push(...m.rows!.slice(0, 2).map((r) => [...r]));
      }
    }
    const t = l.trace(parseExtract(csv(shuffle(leaked))));
    assert.equal(t.candidates[0]!.principal, 'ivan');
    assert.equal(t.candidates[0]!.releases.length, 10);
    assert.ok(t.candidates[0]!.confidence >= 0.99, t.verdict);
    assert.match(t.verdict, /and 9 more/);
    assert.ok(t.candidates.find((c) => c.principal === 'rhea')!.confidence < 0.5);
  });

  it('registers nothing until the release is committed (a later protection may refuse it)', () => {
    const l = new LeakLedger(randomBytes(32), { claims: { vary: ['amount_billed'], canaries: 0 } });
    const marked = l.mark({ principal: 'ivan', datasets: ['claims'], plainScan: false, entry: entryFor('ivan'), at: new Date(), columns: COLUMNS, rows: ORIGINAL });
    const leak = parseExtract(csv(marked.rows!.slice(0, 20).map((r) => [...r])));
    assert.equal(l.trace(leak).candidates.length, 0, 'refused: never released, so nothing to trace');
    marked.commit();
    assert.equal(l.trace(leak).candidates[0]!.principal, 'ivan');
  });

  it('computes the chance of agreeing marks exactly', () => {
    assert.equal(binomialTail(10, 10), 2 ** -10);
    assert.equal(binomialTail(4, 0), 1);
    assert.ok(Math.abs(binomialTail(3, 2) - 0.5) < 1e-12);
  });
});

describe('gatehouse trace on a running node', () => {
  let fx: ServerFixture;
  let dir = '';
  before(async () => {
    fx = await demoFixture({ patients: 200, http: true, edit: (ws) => writeFileSync(join(ws, 'monitoring.yaml'), 'monitoring:\n  leakTracing:\n    claims: { vary: [amount_billed, amount_paid], canaries: 2 }\n') });
    dir = mkdtempSync(join(tmpdir(), 'gh-trace-'));
  });
  after(async () => { await fx.close(); rmSync(dir, { recursive: true, force: true }); });

  it('traces a leaked CSV of a partner\'s row-level query to that partner and its audit entry', async () => {
    const r = await fx.query('ivan', 'SELECT claim_id, payer, amount_billed, amount_paid FROM claims');
    assert.ok(r.governance.obligationsApplied.includes('leak-tracing'));
    const rows = r.rows.map((x) => [...x]);
    const subset = shuffle(rows).slice(0, Math.max(10, Math.ceil(rows.length / 10)));
    const file = join(dir, 'found.csv');
    writeFileSync(file, ['claim_id,payer,amount_billed,amount_paid', ...subset.map((x) => x.map((c) => (c === null ? '' : String(c))).join(','))].join('\n'));
    let text = '';
    const out = new Writable({ write(c, _e, cb) { text += String(c); cb(); } });
    assert.equal(await main(['trace', file, '--url', fx.http.url, '--key', KEYS.audrey, '--json'], out), 0, text);
    const t = JSON.parse(text);
    assert.equal(t.candidates[0].principal, 'ivan');
    assert.equal(t.candidates[0].auditId, r.governance.auditId);
    assert.ok(t.candidates[0].confidence >= 0.99, t.verdict);
    let denied = '';
    const err = new Writable({ write(c, _e, cb) { denied += String(c); cb(); } });
    assert.notEqual(await main(['trace', file, '--url', fx.http.url, '--key', KEYS.ivan], err), 0, 'a partner cannot trace');
  });
});
