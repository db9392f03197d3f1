import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFlowMap, renderFlowSvg, summariseDerivations, UNIDENTIFIED_PARTNER, UNKNOWN_DATASET, type FlowAuditEntry } from './flows.ts';

function entry(over: Partial<FlowAuditEntry>): FlowAuditEntry {
  return { time: '2025-11-10T10:00:00.000Z', principal: 'ana', channel: 'http', action: 'query', datasets: ['patients'], decision: 'allow', rowsReturned: 10, ...over };
}

const ORGS: Record<string, string> = { ana: 'Northwind Research', ben: 'Northwind Research', cy: 'Acme Analytics' };
const orgOf = (p: string): string | null => ORGS[p] ?? null;

/** A well-formedness check strong enough for these tests: every tag opened is closed in order. */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) {
    const between = xml.slice(last, m.index);
    assert.ok(!between.includes('<') && !between.includes('>'), `stray markup near ${JSON.stringify(between.slice(0, 60))}`);
    assert.ok(!/&(?!(?:amp|lt|gt|quot|#39);)/.test(between), 'unescaped ampersand in text');
    last = m.index + m[0].length;
    if (m[4] === '/') continue;
    if (m[1] === '/') assert.equal(stack.pop(), m[2]);
    else stack.push(m[2]!);
  }
  assert.ok(!xml.slice(last).trim().includes('<'));
  assert.deepEqual(stack, []);
}

test('allowed queries become edges dataset → partner via interface with query counts and rows; denied attempts are counted apart', () => {
  const map = buildFlowMap([
    entry({}),
    entry({ principal: 'ben', rowsReturned: 5, time: '2025-11-12T09:00:00.000Z' }),
    entry({ principal: 'ben', decision: 'deny', rowsReturned: null, time: '2025-11-13T09:00:00.000Z' }),
    entry({ principal: 'cy', channel: 'pgwire', datasets: ['claims'], rowsReturned: 100 }),
    entry({ principal: 'solo', datasets: ['claims'], rowsReturned: 1 }),
    entry({ action: 'datasets.list', datasets: [] }),
    entry({ decision: 'error', rowsReturned: null }),
  ], { orgOf });
  assert.deepEqual(map.edges, [
    { from: 'dataset:claims', to: 'partner:solo', interface: 'interface:http', queries: 1, rowsReleased: 1, denied: 0, lastAt: '2025-11-10T10:00:00.000Z' },
    { from: 'dataset:claims', to: 'partner:Acme Analytics', interface: 'interface:pgwire', queries: 1, rowsReleased: 100, denied: 0, lastAt: '2025-11-10T10:00:00.000Z' },
    { from: 'dataset:patients', to: 'partner:Northwind Research', interface: 'interface:http', queries: 2, rowsReleased: 15, denied: 1, lastAt: '2025-11-13T09:00:00.000Z' },
  ]);
  assert.deepEqual(map.nodes.map((n) => n.id), ['dataset:claims', 'dataset:patients', 'interface:http', 'interface:pgwire', 'partner:Acme Analytics', 'partner:Northwind Research', 'partner:solo']);
  assert.deepEqual(map.totals, { queries: 4, rowsReleased: 116, denied: 1 });
});

test('a join feeds every dataset it read, but totals count the request once', () => {
  const map = buildFlowMap([entry({ datasets: ['patients', 'claims', 'patients'], rowsReturned: 7 })], { orgOf });
  assert.deepEqual(map.edges.map((e) => [e.from, e.rowsReleased]), [['dataset:claims', 7], ['dataset:patients', 7]]);
  assert.deepEqual(map.totals, { queries: 1, rowsReleased: 7, denied: 0 });
});

test('the period bounds are inclusive–exclusive, and unparseable times are left out rather than guessed', () => {
  const map = buildFlowMap([
    entry({ time: '2025-10-31T23:59:59.999Z' }),
    entry({ time: '2025-11-01T00:00:00.000Z', rowsReturned: 1 }),
    entry({ time: '2025-12-01T00:00:00.000Z' }),
    entry({ time: 'yesterday' }),
  ], { orgOf, from: '2025-11-01T00:00:00Z', to: '2025-12-01T00:00:00Z' });
  assert.deepEqual(map.totals, { queries: 1, rowsReleased: 1, denied: 0 });
  assert.deepEqual(map.period, { from: '2025-11-01T00:00:00Z', to: '2025-12-01T00:00:00Z' });
});

test('denied attempts without a principal or a dataset are still shown, under explicit placeholders', () => {
  const map = buildFlowMap([entry({ principal: null, datasets: [], decision: 'deny', rowsReturned: null })], { orgOf });
  assert.deepEqual(map.edges.map((e) => [e.from, e.to, e.denied]), [[`dataset:${UNKNOWN_DATASET}`, `partner:${UNIDENTIFIED_PARTNER}`, 1]]);
});

test('negative, fractional or non-finite row counts cannot inflate or deflate volumes', () => {
  const map = buildFlowMap([entry({ rowsReturned: -50 }), entry({ rowsReturned: Number.NaN }), entry({ rowsReturned: Infinity }), entry({ rowsReturned: 2.9 })], { orgOf });
  assert.equal(map.totals.rowsReleased, 2);
});

test('other releasing actions can be included explicitly', () => {
  const entries = [entry({ action: 'export', rowsReturned: 500 })];
  assert.equal(buildFlowMap(entries, { orgOf }).edges.length, 0);
  assert.equal(buildFlowMap(entries, { orgOf, actions: ['query', 'export'] }).totals.rowsReleased, 500);
});

test('the SVG puts datasets left, interfaces middle and partners right, with labels giving queries and rows, thicker for more rows', () => {
  const map = buildFlowMap([entry({ rowsReturned: 10_000 }), entry({ principal: 'cy', channel: 'pgwire', datasets: ['claims'], rowsReturned: 3 })], { orgOf });
  const svg = renderFlowSvg(map);
  assertWellFormed(svg);
  const xOf = (label: string): number => Number(new RegExp(`<rect x="([\\d.]+)"[^>]*/>\\n<text[^>]*>${label}<`).exec(svg)![1]);
  assert.ok(xOf('patients') < xOf('http') && xOf('http') < xOf('Northwind Research'));
  assert.ok(svg.includes('1 query · 10,000 rows'));
  assert.ok(svg.includes('1 query · 3 rows'));
  const widths = [...svg.matchAll(/stroke-width="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.ok(Math.max(...widths) > 3 * Math.min(...widths));
  assert.ok(!/<script|href=|xlink|https?:\/\/(?!www\.w3\.org\/2000\/svg)/.test(svg), 'no scripts or external references');
});

test('rendering is deterministic: the same entries in any order give byte-identical SVG', () => {
  const entries = [entry({}), entry({ principal: 'cy', channel: 'pgwire', datasets: ['claims'] }), entry({ principal: 'ben', decision: 'deny' })];
  const a = renderFlowSvg(buildFlowMap(entries, { orgOf }));
  const b = renderFlowSvg(buildFlowMap([...entries].reverse(), { orgOf }));
  assert.equal(a, b);
});

test('hostile dataset, organisation, principal and channel names are escaped: no markup, no attribute break-out, no control characters', () => {
  const hostile = ['</text><script>alert(1)</script>', '" onload="alert(1)', "' onmouseover='x", '&amp;lt;', 'a\u0000b\u001bc', '\uD800lone', ']]><!--'];
  const map = buildFlowMap(hostile.map((h, i) => entry({ principal: `p${i}${h}`, datasets: [h], channel: h })), { orgOf: (p) => (p.startsWith('p1') ? hostile[1]! : null) });
  const svg = renderFlowSvg(map);
  assertWellFormed(svg);
  assert.ok(!svg.includes('<script'));
  assert.ok(!/\son\w+="/.test(svg.replace(/&quot;|&#39;/g, '')), 'no event-handler attribute');
  // eslint-disable-next-line no-control-regex
  assert.ok(!/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(svg));
  assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/.test(svg));
  assert.ok(svg.includes('&lt;/text&gt;&lt;script&gt;'));
  assert.ok(svg.includes('&amp;amp;lt;'));
});

test('an empty period renders a valid SVG that says nothing left', () => {
  const svg = renderFlowSvg(buildFlowMap([], { orgOf, from: '2025-11-01', to: '2025-12-01' }));
  assertWellFormed(svg);
  assert.ok(svg.includes('No data left through any interface in this period.'));
});

test('derivations still kept are summed per dataset, partner and kind, destroyed ones left out, and listed under the drawing', () => {
  const d = (sources: string[], item: string, retainUntil: string | null, destroyed = false) => ({ sources, org: 'Northwind Research', owner: 'ana', item, retainUntil, destroyed });
  const derivations = summariseDerivations([
    d(['encounters', 'patients'], 'result', '2026-03-01T00:00:00.000Z'), d(['encounters'], 'result', '2026-02-01T00:00:00.000Z'),
    d(['encounters'], 'job-output', null), d(['claims'], 'model', null, true),
  ]);
  assert.deepEqual(derivations, [
    { from: 'dataset:encounters', to: 'partner:Northwind Research', item: 'job-output', count: 1, earliestExpiry: null },
    { from: 'dataset:encounters', to: 'partner:Northwind Research', item: 'result', count: 2, earliestExpiry: '2026-02-01T00:00:00.000Z' },
    { from: 'dataset:patients', to: 'partner:Northwind Research', item: 'result', count: 1, earliestExpiry: '2026-03-01T00:00:00.000Z' },
  ]);
  const map = buildFlowMap([entry({})], { orgOf });
  const svg = renderFlowSvg({ ...map, derivations });
  assertWellFormed(svg);
  assert.match(svg, /encounters → 2 results → Northwind Research \(first expires 2026-02-01\)/);
  assert.doesNotMatch(renderFlowSvg(map), /Derivations kept/);
});
