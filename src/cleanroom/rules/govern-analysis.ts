/**
 * A clean-room analysis on the one governed path: parse → bind against the collaboration's
 * catalog (its contributed tables and nothing else) → the analysis-rule check
 * (analysis-rules.ts) → the project's obligation transformers (query/govern) with the rules
 * compiled to obligations:
 *   - join columns → `joinOnly` (never returned, never ordered on);
 *   - minimum distinct units → `aggregationOnly.minGroupSize` on every table the query
 *     touches, set to the strictest threshold among them, with the rule's privacy unit as
 *     the table's unit — so disclosure control withholds every smaller group;
 *   - list rules → a row cap.
 * Output protections (disclosure control, truncation) then run in the one executor.
 */
import { bindQuery, type BoundQuery } from '../../query/bind.ts';
import { govern, type GovernedQuery } from '../../query/govern/index.ts';
import type { ObligationTransformer } from '../../query/govern/context.ts';
import { parseSql } from '../../query/parse.ts';
import type { DatasetDef, DatasetSource, ObligationDef, PrincipalDef } from '../../model/types.ts';
import { checkAnalysis, type AnalysisInput } from './analysis-rules.ts';
import type { Collaboration, Template } from '../model.ts';

export const LIST_ROW_CAP = 10_000;

/** Contributed tables as datasets of the compute engine. */
export function collaborationCatalog(c: Collaboration, sourceOf: (table: string) => DatasetSource = () => ({ kind: 'encrypted', path: '/nonexistent' })): Map<string, DatasetDef> {
  return new Map(c.contributions.map((t) => [t.table, {
    name: t.table, description: `contributed by ${t.owner} to collaboration ${c.id}`, source: sourceOf(t.table),
    classification: 'confidential', tags: [], privacyUnit: t.rule.kind === 'aggregation' ? t.rule.privacyUnit : null,
    region: null, owner: t.owner, purposes: [c.purpose],
    columns: t.columns.map((col) => ({ name: col.name, type: col.type, classification: 'confidential', tags: [], mask: null, bounds: null, description: null })),
  } satisfies DatasetDef]));
}

/** The obligations the rules compile to, for the tables a query touches (strictest threshold wins). */
export function ruleObligations(c: Collaboration, tables: readonly string[]): Map<string, ObligationDef[]> {
  const touched = c.contributions.filter((t) => tables.includes(t.table));
  const thresholds = touched.flatMap((t) => (t.rule.kind === 'aggregation' ? [t.rule.minDistinctUnits] : []));
  const strictest = thresholds.length > 0 ? Math.max(...thresholds) : null;
  return new Map(touched.map((t) => [t.table, [{
    name: `cleanroom:${c.id}:${t.table}`,
    rowFilter: null,
    aggregationOnly: t.rule.kind === 'aggregation' && strictest !== null ? { minGroupSize: strictest } : null,
    rowCap: t.rule.kind === 'list' ? LIST_ROW_CAP : null,
    unmask: [], masks: {},
    joinOnly: [...t.rule.joinColumns],
  } satisfies ObligationDef]]));
}

/** The analysis-rule check as an obligation transformer, for govern()'s list (see the lead's wiring note). */
export function analysisRulesTransformer(input: AnalysisInput): ObligationTransformer {
  return { name: 'cleanroomAnalysisRules', apply: (query) => ({ query, applied: checkAnalysis(query, input) }) };
}

export interface GovernedAnalysis {
  readonly bound: BoundQuery;
  readonly governed: GovernedQuery;
  /** Rule and obligation labels, for the audit entry of every member. */
  readonly applied: readonly string[];
  /** Contributed columns each table must send to the compute node ("table" → columns). */
  readonly columnsNeeded: ReadonlyMap<string, readonly string[]>;
}

export function memberPrincipal(nodeId: string): PrincipalDef {
  return { id: `node:${nodeId}`, kind: 'service', displayName: nodeId, groups: ['cleanroom-members'], attributes: { org: nodeId }, apiKeySha256: [] };
}

/**
 * Governs one analysis (free SQL, or a template with its parameters) for `querier`. The
 * parser must be loaded (query/parse.ts loadParser).
 */
export function governAnalysis(c: Collaboration, input: { sql: string; params?: readonly string[]; template?: Template | null; querier: string; sourceOf?: (table: string) => DatasetSource }): GovernedAnalysis {
  const template = input.template ?? null;
  const sql = template !== null ? template.text : input.sql;
  const parsed = input.params !== undefined ? parseSql(sql, input.params) : parseSql(sql);
  const catalog = collaborationCatalog(c, input.sourceOf);
  const bound = bindQuery(parsed, { dataset: (n) => catalog.get(n) });
  const applied = analysisRulesTransformer({ collaboration: c, template }).apply(bound.query, undefined as never).applied;
  const governed = govern(bound, {
    principal: memberPrincipal(input.querier), datasets: catalog, defaultRowCap: LIST_ROW_CAP, rowFilters: new Map(),
    obligations: ruleObligations(c, bound.datasets), columnsUsed: new Set(bound.columns),
  });
  const columnsNeeded = new Map<string, string[]>();
  for (const dc of bound.columns) {
    const [table, column] = dc.split('.') as [string, string];
    columnsNeeded.set(table, [...(columnsNeeded.get(table) ?? []), column]);
  }
  // The privacy unit is counted (distinct units per group) even when the query does not name it.
  for (const t of c.contributions) if (columnsNeeded.has(t.table) && t.rule.kind === 'aggregation' && !columnsNeeded.get(t.table)!.includes(t.rule.privacyUnit)) columnsNeeded.get(t.table)!.push(t.rule.privacyUnit);
  return { bound, governed, applied: [...applied, ...governed.obligationsApplied], columnsNeeded };
}
