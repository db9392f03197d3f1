/**
 * The data-flow map: which datasets flow to which partner, through which interface, at
 * what volume — computed from audit entries alone, so it shows what actually happened,
 * not what policies would allow.
 *
 * - A *partner* is the organisation of the principal (`orgOf`), or the principal itself
 *   when it has no organisation; requests with no identified principal are grouped under
 *   the partner `(unidentified)`.
 * - An *interface* is the entry's channel (`http`, `pgwire`, `cli`, …).
 * - Volume is the sum of `rowsReturned` over allowed requests whose action releases data
 *   (`query` by default). A request that read several datasets (a join) counts towards
 *   each dataset's edge, so edge rows must not be summed across datasets; `totals` counts
 *   each request once.
 * - Denied attempts (`decision: "deny"`) are counted per edge too; a denied attempt that
 *   never identified a dataset is counted under the dataset `(not identified)`.
 *
 * `renderFlowSvg` draws the map: datasets left, interfaces in the middle, partners right;
 * segment thickness grows with rows released (log scale); every label is XML-escaped.
 * Layout and output are deterministic (sorted, no randomness, no clock).
 */
import type { StoredAuditEntry } from '../audit/log.ts';
import { escapeXml, truncate } from './escape.ts';

/** The fields of an audit entry the map reads. */
export type FlowAuditEntry = Pick<StoredAuditEntry, 'time' | 'principal' | 'channel' | 'action' | 'datasets' | 'decision' | 'rowsReturned'>;

export interface FlowMapOptions {
  /** ISO-8601 inclusive lower bound on entry time. */
  readonly from?: string;
  /** ISO-8601 exclusive upper bound on entry time. */
  readonly to?: string;
  /** The organisation a principal belongs to, or null. */
  readonly orgOf: (principal: string) => string | null;
  /** Actions that release data. Default ["query"]. */
  readonly actions?: readonly string[];
  /** Stamped into the map as generatedAt (the module never reads the clock). */
  readonly generatedAt?: string;
}

export type FlowNodeKind = 'dataset' | 'interface' | 'partner';

export interface FlowNode {
  /** `<kind>:<label>`, unique. */
  readonly id: string;
  readonly kind: FlowNodeKind;
  readonly label: string;
}

export interface FlowEdge {
  /** Dataset node id. */
  readonly from: string;
  /** Partner node id. */
  readonly to: string;
  /** Interface node id. */
  readonly interface: string;
  /** Allowed requests. */
  readonly queries: number;
  readonly rowsReleased: number;
  /** Denied attempts. */
  readonly denied: number;
  /** Time of the latest entry (allowed or denied) on this edge. */
  readonly lastAt: string;
}

export interface FlowMap {
  readonly generatedAt?: string;
  readonly period: { readonly from: string | null; readonly to: string | null };
  readonly nodes: readonly FlowNode[];
  readonly edges: readonly FlowEdge[];
  /** Each request counted once (a join is one request even though it feeds several edges). */
  readonly totals: { readonly queries: number; readonly rowsReleased: number; readonly denied: number };
  /**
   * What is still kept that was derived from each dataset for each partner (saved results, job
   * outputs, room results, models: src/governance/lineage.ts), counted per kind, with the
   * earliest expiry. State, not traffic: it is not limited to the period.
   */
  readonly derivations?: readonly FlowDerivation[];
}

export interface FlowDerivation {
  /** Dataset node id (`dataset:<name>`). */
  readonly from: string;
  /** Partner node id (`partner:<org>`). */
  readonly to: string;
  readonly item: string;
  readonly count: number;
  readonly earliestExpiry: string | null;
}

/** Live derivatives summed per dataset × partner × kind (deterministic order). */
export function summariseDerivations(derivatives: Iterable<{ sources: readonly string[]; org: string | null; owner: string; item: string; retainUntil: string | null; destroyed: boolean }>): FlowDerivation[] {
  const by = new Map<string, { from: string; to: string; item: string; count: number; earliestExpiry: string | null }>();
  for (const d of derivatives) {
    if (d.destroyed) continue;
    for (const s of d.sources) {
      const from = `dataset:${s}`, to = `partner:${d.org ?? d.owner}`;
      const key = JSON.stringify([from, to, d.item]);
      const g = by.get(key) ?? { from, to, item: d.item, count: 0, earliestExpiry: null };
      g.count += 1;
      if (d.retainUntil !== null && (g.earliestExpiry === null || d.retainUntil < g.earliestExpiry)) g.earliestExpiry = d.retainUntil;
      by.set(key, g);
    }
  }
  return [...by.values()].sort((x, y) => compare(x.from, y.from) || compare(x.to, y.to) || compare(x.item, y.item));
}

export const UNIDENTIFIED_PARTNER = '(unidentified)';
export const UNKNOWN_DATASET = '(not identified)';

/** The partner a principal's requests are attributed to. */
export function partnerOf(principal: string | null, orgOf: (principal: string) => string | null): string {
  if (principal === null || principal === '') return UNIDENTIFIED_PARTNER;
  const org = orgOf(principal);
  return org !== null && org !== '' ? org : principal;
}

function nodeId(kind: FlowNodeKind, label: string): string {
  return `${kind}:${label}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function inPeriod(time: string, from: string | undefined, to: string | undefined): boolean {
  const t = Date.parse(time);
  if (Number.isNaN(t)) return false;
  if (from !== undefined && t < Date.parse(from)) return false;
  if (to !== undefined && t >= Date.parse(to)) return false;
  return true;
}

function rowsOf(entry: FlowAuditEntry): number {
  const r = entry.rowsReturned;
  return typeof r === 'number' && Number.isFinite(r) && r > 0 ? Math.floor(r) : 0;
}

export function buildFlowMap(entries: Iterable<FlowAuditEntry>, options: FlowMapOptions): FlowMap {
  const actions = new Set(options.actions ?? ['query']);
  const edges = new Map<string, { from: string; to: string; interface: string; queries: number; rowsReleased: number; denied: number; lastAt: string; lastMs: number }>();
  const nodes = new Map<string, FlowNode>();
  const totals = { queries: 0, rowsReleased: 0, denied: 0 };
  const node = (kind: FlowNodeKind, label: string): string => {
    const id = nodeId(kind, label);
    if (!nodes.has(id)) nodes.set(id, { id, kind, label });
    return id;
  };
  for (const entry of entries) {
    if (!actions.has(entry.action)) continue;
    if (entry.decision !== 'allow' && entry.decision !== 'deny') continue;
    if (!inPeriod(entry.time, options.from, options.to)) continue;
    const allowed = entry.decision === 'allow';
    const rows = allowed ? rowsOf(entry) : 0;
    if (allowed) { totals.queries++; totals.rowsReleased += rows; } else totals.denied++;
    const partner = node('partner', partnerOf(entry.principal, options.orgOf));
    const iface = node('interface', entry.channel || 'unknown');
    const datasets = entry.datasets.length > 0 ? [...new Set(entry.datasets)] : [UNKNOWN_DATASET];
    const ms = Date.parse(entry.time);
    for (const ds of datasets) {
      const from = node('dataset', ds);
      const key = JSON.stringify([from, iface, partner]);
      let e = edges.get(key);
      if (e === undefined) {
        e = { from, to: partner, interface: iface, queries: 0, rowsReleased: 0, denied: 0, lastAt: entry.time, lastMs: ms };
        edges.set(key, e);
      }
      if (allowed) { e.queries++; e.rowsReleased += rows; } else e.denied++;
      if (ms > e.lastMs) { e.lastMs = ms; e.lastAt = entry.time; }
    }
  }
  const kindOrder: Record<FlowNodeKind, number> = { dataset: 0, interface: 1, partner: 2 };
  const sortedNodes = [...nodes.values()].sort((a, b) => kindOrder[a.kind] - kindOrder[b.kind] || compare(a.label, b.label));
  const sortedEdges = [...edges.values()]
    .sort((a, b) => compare(a.from, b.from) || compare(a.interface, b.interface) || compare(a.to, b.to))
    .map(({ from, to, interface: i, queries, rowsReleased, denied, lastAt }) => ({ from, to, interface: i, queries, rowsReleased, denied, lastAt }));
  return {
    ...(options.generatedAt !== undefined ? { generatedAt: options.generatedAt } : {}),
    period: { from: options.from ?? null, to: options.to ?? null },
    nodes: sortedNodes,
    edges: sortedEdges,
    totals,
  };
}

// ---------------------------------------------------------------------------------------
// SVG

const NODE_W = 200;
const NODE_H = 36;
const ROW_GAP = 22;
const COL_GAP = 230;
const MARGIN_X = 24;
const TOP = 64;
const LABEL_CHARS = 26;
/** Vertical distance between the lines leaving (or entering) one node. */
const PORT_GAP = 15;

const COLOURS: Record<FlowNodeKind, { fill: string; stroke: string }> = {
  dataset: { fill: '#e8f0fb', stroke: '#2f5d9e' },
  interface: { fill: '#f1f1f1', stroke: '#555555' },
  partner: { fill: '#eaf6ec', stroke: '#2f7d3e' },
};

/** Plain integer with thousands separators, independent of the host locale. */
export function formatCount(n: number): string {
  const s = String(Math.round(n));
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function plural(n: number, one: string, many: string): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

interface Segment { a: string; b: string; queries: number; rows: number; denied: number }

function widthFor(rows: number, maxRows: number): number {
  if (rows <= 0 || maxRows <= 0) return 1.5;
  return 2 + 14 * (Math.log1p(rows) / Math.log1p(maxRows));
}

/**
 * A self-contained SVG of the map. Each dataset → interface and interface → partner
 * segment aggregates the edges it carries and is labelled "N queries · M rows"
 * (plus "K denied" when any) where it leaves its node; every line has its own port on
 * each node (nodes grow to fit), so labels do not overlap. A segment that only carried
 * denied attempts is dashed red.
 */
export function renderFlowSvg(map: FlowMap): string {
  const known = new Set(map.nodes.map((n) => n.id));
  const segments = new Map<string, Segment>();
  const add = (a: string, b: string, e: FlowEdge): void => {
    if (!known.has(a) || !known.has(b)) return; // an edge naming no node (hand-edited JSON): not drawn
    const key = JSON.stringify([a, b]);
    const s = segments.get(key) ?? { a, b, queries: 0, rows: 0, denied: 0 };
    s.queries += e.queries; s.rows += e.rowsReleased; s.denied += e.denied;
    segments.set(key, s);
  };
  for (const e of map.edges) { add(e.from, e.interface, e); add(e.interface, e.to, e); }
  const segs = [...segments.values()].sort((x, y) => compare(x.a, y.a) || compare(x.b, y.b));
  const maxRows = Math.max(0, ...segs.map((s) => s.rows));

  // Each node is tall enough to give every line leaving or entering it its own port, so the
  // labels (written where a line leaves its node) never sit on top of each other.
  const outs = new Map<string, Segment[]>(), ins = new Map<string, Segment[]>();
  for (const sg of segs) {
    outs.set(sg.a, [...(outs.get(sg.a) ?? []), sg]);
    ins.set(sg.b, [...(ins.get(sg.b) ?? []), sg]);
  }
  const heightOf = (id: string): number => Math.max(NODE_H, PORT_GAP * Math.max(outs.get(id)?.length ?? 0, ins.get(id)?.length ?? 0) + 10);
  const columns: Record<FlowNodeKind, FlowNode[]> = { dataset: [], interface: [], partner: [] };
  for (const n of map.nodes) columns[n.kind].push(n);
  const pos = new Map<string, { x: number; y: number; h: number }>();
  const columnHeight = (list: FlowNode[]): number => list.reduce((t, n) => t + heightOf(n.id), 0) + Math.max(0, list.length - 1) * ROW_GAP;
  const innerHeight = Math.max(NODE_H, columnHeight(columns.dataset), columnHeight(columns.interface), columnHeight(columns.partner));
  (['dataset', 'interface', 'partner'] as const).forEach((kind, col) => {
    const list = columns[kind];
    let y = TOP + (innerHeight - columnHeight(list)) / 2;
    for (const n of list) {
      const h = heightOf(n.id);
      pos.set(n.id, { x: MARGIN_X + col * (NODE_W + COL_GAP), y, h });
      y += h + ROW_GAP;
    }
  });
  const width = MARGIN_X * 2 + 3 * NODE_W + 2 * COL_GAP;
  const derivations = map.derivations ?? [];
  const derivationTop = TOP + innerHeight + 40;
  const height = TOP + innerHeight + 56 + (derivations.length > 0 ? 24 + 16 * derivations.length : 0);
  // Ports: a node's lines in the order of the node at their other end, spread over its height.
  const portY = (id: string, list: Segment[] | undefined, sg: Segment, other: (x: Segment) => string): number => {
    const p = pos.get(id)!;
    const sorted = [...(list ?? [])].sort((x, y) => pos.get(other(x))!.y - pos.get(other(y))!.y || compare(other(x), other(y)));
    const i = sorted.indexOf(sg);
    return p.y + (p.h - PORT_GAP * (sorted.length - 1)) / 2 + i * PORT_GAP;
  };

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="flow-title flow-desc" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  const period = map.period.from !== null || map.period.to !== null ? ` (${map.period.from ?? '…'} to ${map.period.to ?? '…'})` : '';
  out.push(`<title id="flow-title">${escapeXml(`Data flows${period}`)}</title>`);
  out.push(`<desc id="flow-desc">${escapeXml(`${plural(map.totals.queries, 'allowed query', 'allowed queries')} released ${plural(map.totals.rowsReleased, 'row', 'rows')}; ${plural(map.totals.denied, 'attempt was', 'attempts were')} denied. Datasets on the left, interfaces in the middle, partners on the right; thicker lines carried more rows.`)}</desc>`);
  out.push('<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>');
  const headings: [string, number][] = [['Datasets', 0], ['Interfaces', 1], ['Partners', 2]];
  for (const [text, col] of headings) {
    out.push(`<text x="${MARGIN_X + col * (NODE_W + COL_GAP) + NODE_W / 2}" y="${TOP - 24}" text-anchor="middle" font-weight="bold" font-size="14" fill="#222222">${text}</text>`);
  }
  if (map.nodes.length === 0) {
    out.push(`<text x="${width / 2}" y="${TOP + 20}" text-anchor="middle" fill="#555555">No data left through any interface in this period.</text>`);
  }
  const labelOf = new Map(map.nodes.map((n) => [n.id, n.label]));
  for (const sg of segs) {
    const p = pos.get(sg.a)!;
    const q = pos.get(sg.b)!;
    const x1 = p.x + NODE_W, y1 = portY(sg.a, outs.get(sg.a), sg, (x) => x.b), x2 = q.x, y2 = portY(sg.b, ins.get(sg.b), sg, (x) => x.a);
    const mx = (x1 + x2) / 2;
    const deniedOnly = sg.queries === 0 && sg.denied > 0;
    const stroke = deniedOnly ? '#c0392b' : '#4a78b5';
    const dash = deniedOnly ? ' stroke-dasharray="6 4"' : '';
    const label = `${plural(sg.queries, 'query', 'queries')} · ${plural(sg.rows, 'row', 'rows')}${sg.denied > 0 ? ` · ${formatCount(sg.denied)} denied` : ''}`;
    out.push(`<g><title>${escapeXml(`${labelOf.get(sg.a)!} → ${labelOf.get(sg.b)!}: ${label}`)}</title>`);
    out.push(`<path d="M ${x1} ${y1.toFixed(1)} C ${mx} ${y1.toFixed(1)}, ${mx} ${y2.toFixed(1)}, ${x2} ${y2.toFixed(1)}" fill="none" stroke="${stroke}" stroke-opacity="0.55" stroke-width="${widthFor(sg.rows, maxRows).toFixed(2)}"${dash}/>`);
    out.push(`<text x="${x1 + 6}" y="${(y1 - 3).toFixed(1)}" font-size="10" fill="${deniedOnly ? '#c0392b' : '#333333'}" paint-order="stroke" stroke="#ffffff" stroke-width="3">${escapeXml(label)}</text></g>`);
  }
  for (const n of map.nodes) {
    const p = pos.get(n.id)!;
    const c = COLOURS[n.kind];
    out.push(`<g><title>${escapeXml(`${n.kind}: ${n.label}`)}</title>`);
    out.push(`<rect x="${p.x}" y="${p.y}" width="${NODE_W}" height="${p.h}" rx="6" fill="${c.fill}" stroke="${c.stroke}"/>`);
    out.push(`<text x="${p.x + NODE_W / 2}" y="${p.y + p.h / 2 + 4}" text-anchor="middle" fill="#111111">${escapeXml(truncate(n.label, LABEL_CHARS))}</text></g>`);
  }
  if (derivations.length > 0) {
    // Derivations: what is still kept from each dataset for each partner (lineage.ts).
    out.push(`<text x="${MARGIN_X}" y="${derivationTop}" font-weight="bold" font-size="12" fill="#222222">Derivations kept</text>`);
    derivations.forEach((d, i) => {
      const line = `${d.from.slice(8)} → ${plural(d.count, d.item, `${d.item}s`)} → ${d.to.slice(8)}${d.earliestExpiry ? ` (first expires ${d.earliestExpiry.slice(0, 10)})` : ''}`;
      out.push(`<text x="${MARGIN_X}" y="${derivationTop + 16 * (i + 1)}" font-size="11" fill="#333333">${escapeXml(line)}</text>`);
    });
  }
  out.push(`<text x="${MARGIN_X}" y="${height - 20}" font-size="11" fill="#555555">${escapeXml('Line thickness grows with rows released (log scale); dashed red lines carried only denied attempts. A join counts towards every dataset it read.')}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
