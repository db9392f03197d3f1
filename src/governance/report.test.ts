import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, csvCell, describePeriod, renderReportCsv, renderReportHtml, type ReportAuditEntry, type ReportInput, type ReportSection } from './report.ts';

const V1 = 'a'.repeat(64);
const V2 = 'b'.repeat(64);

function e(over: Partial<ReportAuditEntry>): ReportAuditEntry {
  return { time: '2025-11-10T10:00:00.000Z', principal: 'ana', channel: 'http', action: 'query', datasets: ['patients'], decision: 'allow', rowsReturned: 10, errorCode: null, reasons: [], policyVersion: V1, ...over };
}

const ORGS: Record<string, string> = { ana: 'Northwind Research', ben: 'Northwind Research', cy: 'Acme Analytics' };

function input(over: Partial<ReportInput> = {}): ReportInput {
  return {
    period: { from: '2025-11-01T00:00:00.000Z', to: '2025-12-01T00:00:00.000Z' },
    generatedAt: '2025-12-01T06:00:00.000Z',
    workspace: 'St Avery',
    orgOf: (p) => ORGS[p] ?? null,
    entries: [
      e({}),
      e({ principal: 'ben', rowsReturned: 5, time: '2025-11-11T10:00:00.000Z' }),
      e({ principal: 'cy', channel: 'pgwire', datasets: ['claims'], rowsReturned: 200, time: '2025-11-12T10:00:00.000Z' }),
      e({ principal: 'cy', decision: 'deny', errorCode: 'POLICY_DENIED', rowsReturned: null, time: '2025-11-13T10:00:00.000Z' }),
      e({ principal: 'cy', decision: 'deny', errorCode: 'POLICY_DENIED', rowsReturned: null, time: '2025-11-14T10:00:00.000Z' }),
      e({ principal: 'ben', decision: 'deny', errorCode: 'BUDGET_EXHAUSTED', rowsReturned: null, time: '2025-11-15T10:00:00.000Z' }),
      e({ principal: 'ben', decision: 'error', errorCode: 'QUERY_TIMEOUT', rowsReturned: null, time: '2025-11-15T11:00:00.000Z' }),
      e({ action: 'auth.login', principal: 'dave', datasets: [], decision: 'deny', errorCode: 'AUTH_INVALID', rowsReturned: null, time: '2025-11-16T10:00:00.000Z' }),
      e({ action: 'query', principal: null, datasets: [], decision: 'deny', errorCode: 'AUTH_INVALID', rowsReturned: null, time: '2025-11-16T11:00:00.000Z' }),
      e({ action: 'admin.user.disable', principal: 'olivia', datasets: [], rowsReturned: null, time: '2025-11-17T10:00:00.000Z' }),
      e({ action: 'elevation.list', principal: 'olivia', datasets: [], rowsReturned: null, time: '2025-11-17T11:00:00.000Z' }),
      e({ action: 'elevation.break-glass', principal: 'olivia', datasets: [], rowsReturned: null, time: '2025-11-18T10:00:00.000Z' }),
      e({ principal: 'ana', rowsReturned: 1, policyVersion: V2, time: '2025-11-20T10:00:00.000Z' }),
      e({ principal: 'ana', rowsReturned: 999, time: '2025-12-01T00:00:00.000Z' }), // outside the period
    ],
    findings: [
      { id: 'F-1', title: 'Stale contractor accounts', severity: 'high', owner: 'olivia', dueDate: '2025-11-20', status: 'open' },
      { id: 'F-2', title: 'Rotate audit keys', severity: 'medium', owner: 'sam', dueDate: '2025-12-20', status: 'in progress' },
      { id: 'F-3', title: 'Closed one', severity: 'low', owner: 'sam', dueDate: '2025-10-01', status: 'closed' },
    ],
    agreements: [
      { id: 'DPA-7', kind: 'DPA', partner: 'Northwind Research', status: 'active', effectiveFrom: '2025-01-01', endsOn: '2025-12-15' },
      { id: 'NDA-2', kind: 'NDA', partner: 'Acme Analytics', status: 'active', effectiveFrom: '2025-01-01', endsOn: '2026-06-30' },
      { id: 'NDA-3', kind: 'NDA', partner: 'Acme Analytics', status: 'terminated', effectiveFrom: '2025-01-01', endsOn: '2025-12-02' },
    ],
    grants: [{ id: 'G-1', principal: 'ana', dataset: 'patients', purpose: 'research', until: '2025-12-05', status: 'active' }, { id: 'G-2', org: 'Acme Analytics', dataset: 'claims', purpose: 'audit', until: null, status: 'revoked' }],
    vendors: [{ org: 'Northwind Research', tier: 'medium', expiringCertificates: [{ name: 'ISO 27001', validUntil: '2025-11-28' }] }],
    budgets: [{ subject: 'Northwind Research', dataset: 'encounters', spentEpsilon: 4.5, capEpsilon: 5 }, { subject: 'Acme Analytics', dataset: 'encounters', spentEpsilon: 1, capEpsilon: 5 }],
    destructions: [{ at: '2025-11-30T09:00:00.000Z', subject: 'agreement NDA-0', artefacts: ['result-1', 'result-2'], reason: 'agreement terminated' }],
    ...over,
  };
}

function sectionOf(sections: readonly ReportSection[], id: string): ReportSection {
  return sections.find((s) => s.id === id)!;
}

test('the summary tells a non-engineer what happened in the period, in plain words', () => {
  const r = buildReport(input());
  assert.equal(r.summary.split('. ')[0], 'Between 1 and 30 November 2025, 2 partners ran 4 queries on 2 datasets and received 216 rows of data in total, through the web API and the SQL database connection');
  assert.match(r.summary, /5 requests were refused, most often because: the credential was wrong, unknown or revoked \(2\)\./);
  assert.match(r.summary, /1 request failed for technical reasons\./);
  assert.match(r.summary, /There were 2 failed sign-ins\./);
  assert.match(r.summary, /The access policy changed once\./);
  assert.match(r.summary, /2 findings are open, 1 of them overdue\./);
  assert.match(r.summary, /1 agreement ends within the next 30 days\./);
  assert.match(r.summary, /1 destruction certificate was issued\./);
  assert.ok(!/[0-9a-f]{64}/.test(r.summary), 'no hashes in the summary');
});

test('periods are described by their inclusive days', () => {
  assert.equal(describePeriod('2025-10-28T00:00:00Z', '2025-11-04T00:00:00Z'), '28 October and 3 November 2025');
  assert.equal(describePeriod('2025-12-30T00:00:00Z', '2026-01-03T00:00:00Z'), '30 December 2025 and 2 January 2026');
});

test('accesses are counted per partner and dataset as allowed, refused and failed; entries outside the period are ignored', () => {
  const rows = sectionOf(buildReport(input()).sections, 'accesses').rows.map((r) => r.cells);
  assert.deepEqual(rows, [
    ['(unidentified)', '(not identified)', 0, 1, 0],
    ['Acme Analytics', 'claims', 1, 0, 0],
    ['Acme Analytics', 'patients', 0, 2, 0],
    ['Northwind Research', 'patients', 3, 1, 1],
  ]);
});

test('data leaving lists rows released per partner, dataset and interface, largest first', () => {
  const rows = sectionOf(buildReport(input()).sections, 'volumes').rows.map((r) => r.cells);
  assert.deepEqual(rows, [['Acme Analytics', 'claims', 'pgwire', 1, 200], ['Northwind Research', 'patients', 'http', 3, 16]]);
});

test('failed sign-ins include refused logins and requests refused for their credentials', () => {
  const s = sectionOf(buildReport(input()).sections, 'failed-logins');
  assert.deepEqual(s.rows.map((r) => [r.cells[0], r.cells[3], r.cells[5]]), [['(unknown account)', 1, 'AUTH_INVALID'], ['dave', 1, 'AUTH_INVALID']]);
});

test('changes list provisioning actions (not reads), highlight break-glass, and mark each new policy version with a footnote holding its hash', () => {
  const r = buildReport(input());
  const s = sectionOf(r.sections, 'changes');
  assert.deepEqual(s.rows.map((x) => x.cells[2]), ['User account disabled', 'Emergency (break-glass) access used', 'Policy version 2 in force [2]']);
  assert.equal(s.rows[1]!.flag, 'alert');
  assert.equal(r.footnotes[1]!.text, `Policy version 2: ${V2}`);
  assert.equal(r.footnotes[0]!.text, `Policy version 1: ${V1}`);
});

test('refusals are grouped by reason code with a plain meaning and the number of partners affected', () => {
  const rows = sectionOf(buildReport(input()).sections, 'denials').rows.map((r) => r.cells);
  assert.deepEqual(rows.map((c) => [c[0], c[2], c[3]]), [['AUTH_INVALID', 2, 2], ['POLICY_DENIED', 2, 1], ['BUDGET_EXHAUSTED', 1, 1]]);
  assert.equal(rows[1]![1], 'No policy allows this access (or one forbids it)');
});

test('open findings are listed until closed, overdue first and highlighted with the days overdue', () => {
  const s = sectionOf(buildReport(input()).sections, 'findings');
  assert.deepEqual(s.rows.map((r) => [r.cells[0], r.cells[6], r.flag]), [['F-1', 11, 'alert'], ['F-2', null, undefined]]);
});

test('agreements ending within 30 days are listed (terminated ones are not), with days left', () => {
  const s = sectionOf(buildReport(input()).sections, 'agreements');
  assert.deepEqual(s.rows.map((r) => [r.cells[0], r.cells[5]]), [['DPA-7', 14]]);
});

test('budget use, grants, vendors and destructions are reported with their warnings', () => {
  const r = buildReport(input());
  const budgets = sectionOf(r.sections, 'budgets').rows;
  assert.deepEqual(budgets.map((b) => [b.cells[0], b.cells[4], b.flag]), [['Acme Analytics', 0.2, undefined], ['Northwind Research', 0.9, 'warning']]);
  assert.deepEqual(sectionOf(r.sections, 'grants').rows.map((g) => [g.cells[0], g.flag]), [['G-1', 'warning']]);
  const vendor = sectionOf(r.sections, 'vendors').rows[0]!;
  assert.equal(vendor.flag, 'alert');
  assert.equal(vendor.cells[2], 'ISO 27001 (expired 2025-11-28)');
  assert.deepEqual(sectionOf(r.sections, 'destructions').rows[0]!.cells, ['2025-11-30T09:00:00.000Z', 'agreement NDA-0', 2, 'agreement terminated']);
});

test('an empty period still gives a complete, readable report', () => {
  const r = buildReport(input({ entries: [], findings: [], agreements: [], grants: [], vendors: [], budgets: [], destructions: [] }));
  assert.match(r.summary, /^Between 1 and 30 November 2025, no partner ran a query\. No request was refused\. There were no failed sign-ins\.$/);
  const html = renderReportHtml(r);
  assert.ok(html.includes('Nobody asked for data in this period.'));
  assert.ok(!html.includes('<svg'), 'no empty flow map');
});

test('the HTML is self-contained: inline CSS, print styles, no scripts, no external resources, no raw JSON, hashes only in the footnotes', () => {
  const html = renderReportHtml(buildReport(input()));
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.ok(html.includes('<style>') && html.includes('@media print'));
  assert.ok(!/<script|<link|<iframe|<img|@import|url\(|src=|href=/i.test(html));
  assert.ok(!/https?:\/\/(?!www\.w3\.org\/2000\/svg)/.test(html));
  assert.ok(!/[{[]"\w+":/.test(html), 'no JSON');
  const footer = html.slice(html.indexOf('<footer>'));
  const body = html.slice(0, html.indexOf('<footer>'));
  assert.ok(!/[0-9a-f]{64}/.test(body), 'hashes only in the footer');
  assert.ok(footer.includes(V1) && footer.includes(V2));
  assert.ok(html.includes('<caption') || html.includes('class="caption"'));
  assert.ok(html.includes('<tr class="alert">'));
  assert.ok(html.includes('10 Nov 2025') || html.includes('16 Nov 2025, 10:00 UTC'));
});

const HOSTILE = ['</td><script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "'; DROP TABLE x; --", '=HYPERLINK("http://evil.example","click")', '+cmd|\' /C calc\'!A0', '-2+3', '@SUM(A1:A2)', '\tTAB', '\rCR', 'a,b', 'say "hi"\nnext line', '&lt;already&gt;', '\u0000nul\u001b'];

test('every value in the HTML is escaped: hostile partner, dataset, finding and vendor names cannot inject markup', () => {
  const h = HOSTILE;
  const r = buildReport(input({
    workspace: h[0]!,
    orgOf: (p) => (p === 'ana' ? h[1]! : null),
    entries: h.map((x, i) => e({ principal: i % 2 ? 'ana' : x, datasets: [x], channel: x, action: i % 3 ? 'query' : 'grant.create', errorCode: i % 2 ? x : null, decision: i % 4 ? 'allow' : 'deny', time: `2025-11-${String(10 + i).padStart(2, '0')}T10:00:00.000Z` })),
    findings: [{ id: h[0]!, title: h[1]!, severity: h[2]!, owner: h[3]!, dueDate: h[4]!, status: h[5]! }],
    agreements: [{ id: h[6]!, kind: h[7]!, partner: h[8]!, status: 'active', effectiveFrom: h[9]!, endsOn: '2025-12-10' }],
    vendors: [{ org: h[10]!, tier: h[11]!, expiringCertificates: [{ name: h[12]!, validUntil: h[0]! }] }],
    budgets: [{ subject: h[0]!, dataset: h[1]!, spentEpsilon: 1, capEpsilon: 2 }],
    destructions: [{ at: h[2]!, subject: h[3]!, artefacts: [h[4]!], reason: h[5]! }],
    grants: [{ id: h[6]!, principal: h[7]!, dataset: h[8]!, purpose: h[9]!, until: h[10]!, status: 'active' }],
  }));
  const html = renderReportHtml(r);
  assert.ok(!/<script/i.test(html));
  assert.ok(!/<img/i.test(html));
  assert.ok(!html.includes('"><img') && !html.includes("'; DROP"), 'quotes are escaped, so no attribute break-out');
  assert.ok(html.includes('&lt;/td&gt;&lt;script&gt;'));
  assert.ok(html.includes('&amp;lt;already&amp;gt;'));
  // eslint-disable-next-line no-control-regex
  assert.ok(!/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(html));
  // Every tag in the document is one the renderer writes.
  const tags = new Set([...html.matchAll(/<\/?([a-zA-Z][\w-]*)/g)].map((m) => m[1]!.toLowerCase()));
  const allowed = new Set(['html', 'head', 'meta', 'title', 'style', 'body', 'header', 'h1', 'h2', 'p', 'main', 'ul', 'li', 'b', 'section', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'footer', 'ol', 'figure', 'figcaption', 'svg', 'desc', 'rect', 'text', 'g', 'path']);
  for (const t of tags) assert.ok(allowed.has(t), `unexpected tag <${t}>`);
});

/** A strict RFC 4180 parser for the tests (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = '', i = 0, quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c; i++; continue;
    }
    if (c === '"') { assert.equal(field, '', 'quote inside an unquoted field'); quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
    assert.ok(c !== '\r' && c !== '\n', 'bare CR or LF outside quotes');
    field += c; i++;
  }
  assert.equal(quoted, false);
  assert.equal(field, '');
  assert.deepEqual(row, []);
  return rows;
}

test('CSV fields neutralise formula injection (= + - @ tab CR LF get an apostrophe) and quote per RFC 4180', () => {
  assert.equal(csvCell('=1+1'), "'=1+1");
  assert.equal(csvCell('+1'), "'+1");
  assert.equal(csvCell('-1'), "'-1");
  assert.equal(csvCell('@x'), "'@x");
  assert.equal(csvCell('\tx'), "'\tx");
  assert.equal(csvCell('\rx'), '"\'\rx"');
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell(-3), '-3', 'numbers the report computed stay numbers');
  assert.equal(csvCell(null), '');
  assert.equal(csvCell(Number.NaN), '');
  assert.equal(csvCell('safe = text'), 'safe = text');
});

test('the one-file CSV has a section column, equal-width records, raw ISO values, and survives hostile strings', () => {
  const r = buildReport(input({ findings: HOSTILE.map((h, i) => ({ id: `F-${i}`, title: h, severity: 'low', owner: h, dueDate: '2026-01-01', status: 'open' })) }));
  const rows = parseCsv(renderReportCsv(r));
  assert.deepEqual(rows[0]!.slice(0, 3), ['section', 'kind', 'c1']);
  const width = rows[0]!.length;
  for (const row of rows) assert.equal(row.length, width);
  assert.deepEqual(new Set(rows.slice(1).map((x) => x[0])), new Set(r.sections.map((s) => s.id)));
  const findings = rows.filter((x) => x[0] === 'findings' && x[1] === 'row');
  assert.equal(findings.length, HOSTILE.length);
  for (const f of findings) {
    for (const cell of f) assert.ok(!/^[=+\-@\t\r\n]/.test(cell), `formula-leading cell ${JSON.stringify(cell)}`);
  }
  const titleOf = new Map(findings.map((f) => [f[2]!, f[3]!]));
  // Round trip: the value comes back exactly, with an apostrophe in front only when it could start a formula.
  HOSTILE.forEach((h, i) => assert.equal(titleOf.get(`F-${i}`), /^[=+\-@\t\r\n]/.test(h) ? `'${h}` : h));
  const volumes = rows.find((x) => x[0] === 'volumes' && x[1] === 'row')!;
  assert.deepEqual(volumes.slice(2, 7), ['Acme Analytics', 'claims', 'pgwire', '1', '200']);
  const change = rows.find((x) => x[0] === 'changes' && x[1] === 'row')!;
  assert.equal(change[2], '2025-11-17T10:00:00.000Z', 'times stay ISO in CSV');
});

test('one section alone can be exported as a plain CSV; an unknown section is a clear error', () => {
  const r = buildReport(input());
  const rows = parseCsv(renderReportCsv(r, { section: 'denials' }));
  assert.deepEqual(rows[0], ['Reason code', 'What it means', 'Refused requests', 'Partners affected']);
  assert.equal(rows.length, 4);
  assert.throws(() => renderReportCsv(r, { section: 'nope' }), /no report section "nope"/);
});

test('large inputs are capped per table with an "and N more" note, and building is deterministic', () => {
  const many = Array.from({ length: 30 }, (_, i) => e({ principal: `p${i}`, time: `2025-11-10T10:${String(i).padStart(2, '0')}:00.000Z` }));
  const a = buildReport(input({ entries: many, maxRowsPerSection: 10 }));
  const s = sectionOf(a.sections, 'accesses');
  assert.equal(s.rows.length, 10);
  assert.equal(s.more, 20);
  assert.ok(renderReportHtml(a).includes('…and 20 more rows'));
  const b = buildReport(input({ entries: [...many].reverse(), maxRowsPerSection: 10 }));
  assert.equal(renderReportHtml(a), renderReportHtml(b));
  assert.equal(renderReportCsv(a), renderReportCsv(b));
});

test('lists an incident whose response deadline passed unanswered as overdue, and ignores incident lines forged into other entries', async () => {
  const { incidentReason } = await import('./report-incidents.ts');
  const opened = incidentReason({ kind: 'opened', incident: 'inc_1', alert: 'al_1', rule: 'slow-exfiltration', principal: 'cy', org: 'Acme Analytics', agreement: 'AG-7', respondBy: '2025-11-20T11:00:00.000Z', remediateBy: '2025-11-21T10:00:00.000Z' });
  const forged = incidentReason({ kind: 'remediated', incident: 'inc_1' });
  const r = buildReport(input({ entries: [
    e({ action: 'monitoring.alert.confirm', principal: 'audrey', datasets: [], rowsReturned: null, reasons: ['alert al_1 confirmed', opened], time: '2025-11-20T10:00:00.000Z' }),
    // A query's reasons are not the monitor's word: a remediation claimed there does not count.
    e({ principal: 'cy', reasons: [forged], time: '2025-11-20T10:30:00.000Z' }),
    e({ action: 'monitoring.incident.remediate', principal: 'cy', datasets: [], decision: 'deny', errorCode: 'POLICY_DENIED', rowsReturned: null, reasons: [forged], time: '2025-11-20T10:40:00.000Z' }),
  ] }));
  const s = r.sections.find((x) => x.id === 'incidents')!;
  assert.equal(s.rows.length, 1);
  const cell = (key: string) => s.rows[0]!.cells[s.columns.findIndex((c) => c.key === key)];
  assert.equal(cell('status'), 'open');
  assert.equal(cell('remediated'), null);
  assert.equal(cell('agreement'), 'AG-7');
  assert.equal(cell('breaches'), 'overdue');
  assert.equal(s.rows[0]!.flag, 'warning');
  assert.equal(r.figures.find((f) => f.label === 'Incidents')!.value, 1);
  assert.match(renderReportCsv(r, { section: 'incidents' }), /inc_1,slow-exfiltration,Acme Analytics/);
});
