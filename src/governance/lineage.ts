/**
 * Lineage of derivatives (issue 23): what each saved result, export or other artefact was
 * derived from, and what it therefore inherits — the most restrictive classification of its
 * sources (dataset level and every column), the shortest retention that applies to any
 * source, and the agreement it was released under (ending that agreement crypto-shreds it:
 * src/governance/service.ts closes agreements out by the artefacts' `agreement` label).
 *
 * Computed from the artefacts' labels and the catalog, not stored a second time, so a
 * stricter classification confirmed later reaches every derivative at once. The derivation
 * map (dataset → derivative → partner organisation) is what `gatehouse lineage list` shows.
 */
import type { ArtefactMeta } from '../keys/artefacts.ts';
import { CLASSIFICATIONS, type Classification, type Workspace } from '../model/types.ts';
import type { RetentionRule } from './retention.ts';

export interface Derivative {
  readonly id: string;
  readonly kind: string;
  /** What it is in a partner workspace (result, job-output, room-result, model, export). */
  readonly item: string;
  readonly owner: string;
  readonly org: string | null;
  readonly createdAt: string;
  readonly sources: readonly string[];
  /** The most restrictive classification among its sources' datasets and columns. */
  readonly classification: Classification;
  readonly agreement: string | null;
  /** The earliest of its own retainUntil and every source's retention rule for its kind. */
  readonly retainUntil: string | null;
  readonly destroyed: boolean;
}

export interface DerivationEdge { readonly from: string; readonly to: string; readonly via: 'derived' | 'released-to' }

const rank = (c: Classification): number => CLASSIFICATIONS.indexOf(c);

export function strictest(ws: Workspace, datasets: readonly string[]): Classification {
  let level: Classification = 'public';
  for (const name of datasets) {
    const d = ws.datasets.get(name);
    // A source the catalog no longer knows is treated as regulated (fail closed).
    if (!d) return 'regulated';
    for (const c of [d.classification, ...d.columns.map((x) => x.classification)]) if (rank(c) > rank(level)) level = c;
  }
  return level;
}

export function lineage(ws: Workspace, artefacts: readonly ArtefactMeta[], rules: readonly RetentionRule[]): { derivatives: Derivative[]; edges: DerivationEdge[] } {
  const derivatives: Derivative[] = [];
  const edges: DerivationEdge[] = [];
  for (const a of artefacts) {
    const sources = (a.labels.datasets ?? a.labels.dataset ?? '').split(',').filter(Boolean).sort();
    if (sources.length === 0) continue;
    const created = Date.parse(a.createdAt);
    const limits = [a.retainUntil, ...sources.flatMap((s) => rules.filter((r) => (r.scope === s || r.scope === '*') && r.kind === (a.kind as string)).map((r) => new Date(created + r.days * 86_400_000).toISOString()))]
      .filter((x): x is string => x !== null).sort();
    const org = a.labels.org ?? null;
    derivatives.push({
      id: a.id, kind: a.kind, item: a.labels.item ?? a.kind, owner: a.owner, org, createdAt: a.createdAt, sources, classification: strictest(ws, sources),
      agreement: a.labels.agreement ?? null, retainUntil: limits[0] ?? null, destroyed: a.destroyedAt !== null,
    });
    for (const s of sources) edges.push({ from: `dataset:${s}`, to: `derivative:${a.id}`, via: 'derived' });
    edges.push({ from: `derivative:${a.id}`, to: `partner:${org ?? a.owner}`, via: 'released-to' });
  }
  return { derivatives: derivatives.sort((x, y) => (x.createdAt < y.createdAt ? -1 : 1)), edges };
}
