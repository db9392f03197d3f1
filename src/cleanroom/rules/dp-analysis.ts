/**
 * Differential privacy on clean-room analyses, through the project's own DP path (issue 17:
 * "Output protection (DP with per-member budgets …) applies to every result").
 *
 * The project's DP transformer (query/govern/differential-privacy.ts) bounds each privacy
 * unit's contribution over ONE dataset; it refuses joins, because a unit's rows are counted
 * in one table. A clean-room analysis is a join, so it runs in two stages on the compute
 * node, both through the one executor and neither released on its own:
 *
 *   1. the join itself (the analysis's FROM … JOIN … ON and WHERE, governed as the rules
 *      allow) projects the columns the analysis uses, each renamed `<table>__<column>`, plus
 *      the protected table's privacy unit — one row per joined pair, in the engine only;
 *   2. those rows become one sealed table on the compute node's tmpfs, and the analysis's own
 *      SELECT / GROUP BY / ORDER BY, with every column re-pointed at that table, is governed
 *      with a `differentialPrivacy` obligation whose unit is the protected table's unit: the
 *      contribution bounding, noise, partition selection and budget charge are the project's
 *      (kernel/protections/dp-release.ts, dp-budget.ts), unchanged.
 *
 * Bounding per unit AFTER the join is what makes the join safe: a customer matched by many
 * rows of another member's table still adds at most maxRowsPerUnitPerGroup rows to at most
 * maxGroupsPerUnit groups (Wilson et al. 2020, "Differentially private SQL with bounded user
 * contribution", which bounds after joins the same way).
 *
 * Whose units: the other member's table whose rule requires DP (the querier knows its own
 * customers); the querier's own DP table only when no other member's is touched. An analysis
 * touching two other members' DP tables, or another member's table without DP beside a DP
 * one (its threshold would not be applied), is refused. Each querying member spends its own
 * budget, set by the protected table's owner: subject `node:<querier>`, dataset
 * `cleanroom:<collaboration>:<table>`, on the compute node's ledger.
 */
import type { BoundQuery } from '../../query/bind.ts';
import { govern, type GovernedQuery, type DpReleasePlan } from '../../query/govern/index.ts';
import { datasetItems, mapExpr, type Expr, type Select } from '../../query/ir.ts';
import type { DatasetDef, DatasetSource, DifferentialPrivacyDef, ObligationDef } from '../../model/types.ts';
import { CleanroomError } from '../errors.ts';
import type { AggregationRule, Collaboration, Contribution } from '../model.ts';
import { collaborationCatalog, memberPrincipal } from './govern-analysis.ts';

/** Rows the join stage may produce; a larger join is refused, never released in part. */
export const JOIN_STAGE_ROW_CAP = 5_000_000;
const ALIAS = 'j';

export interface DpAnalysis {
  /** The table whose units are protected. */
  readonly protectedTable: string;
  /** The joined table's name and definition in the second stage's catalog. */
  readonly joined: DatasetDef;
  /** Stage 1: the join's rows, columns in `joined.columns` order. */
  readonly join: GovernedQuery;
  /** Stage 2: the analysis over the joined table, with its DP release plan. */
  readonly release: GovernedQuery & { readonly dp: DpReleasePlan };
  readonly applied: readonly string[];
}

const col = (relation: string, name: string, source: string): Expr => ({ kind: 'column', relation, name, lineage: { sources: new Set([source]) } });

function select(parts: Partial<Select> & Pick<Select, 'targets' | 'from'>): Select {
  return { kind: 'select', with: [], distinct: false, where: null, groupBy: [], having: null, orderBy: [], limit: null, offset: null, ...parts };
}

function dpRuleOf(t: Contribution): AggregationRule | null {
  return t.rule.kind === 'aggregation' && t.rule.differentialPrivacy ? t.rule : null;
}

/** Which touched table's units the release protects, or null when no touched rule asks for DP. */
export function protectedTable(c: Collaboration, tables: readonly string[], querier: string): Contribution | null {
  const touched = c.contributions.filter((t) => tables.includes(t.table));
  const withDp = touched.filter((t) => dpRuleOf(t) !== null);
  if (withDp.length === 0) return null;
  const others = touched.filter((t) => t.owner !== querier);
  const othersDp = others.filter((t) => dpRuleOf(t) !== null);
  if (othersDp.length > 1) {
    throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `tables ${othersDp.map((t) => `"${t.table}"`).join(' and ')} each require differential privacy over their own customers; a release protects one table's units`, 'join at most one other member\'s table whose rule requires differential privacy');
  }
  const plain = others.filter((t) => dpRuleOf(t) === null && t.rule.kind === 'aggregation');
  if (plain.length > 0) {
    throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `table "${withDp[0]!.table}" requires differential privacy, and "${plain[0]!.table}" requires a minimum number of customers per row, which a noisy release does not apply`, 'analyse these tables in separate analyses, or ask the owners to agree on one protection');
  }
  return othersDp[0] ?? withDp[0]!;
}

export function planDpAnalysis(c: Collaboration, bound: BoundQuery, querier: string, sourceOf: (table: string) => DatasetSource): DpAnalysis | null {
  const prot = protectedTable(c, bound.datasets, querier);
  if (!prot) return null;
  const rule = dpRuleOf(prot)!;
  const dpRule = rule.differentialPrivacy!;
  const q = bound.query;
  const aliases = new Map(datasetItems(q.from).map((d) => [d.alias, d.dataset]));
  const protAlias = [...aliases].find(([, t]) => t === prot.table)?.[0];
  if (protAlias === undefined) throw new CleanroomError('CLEANROOM_RULE_VIOLATION', `table "${prot.table}" must be read directly in FROM under differential privacy`);

  // Stage 1: every (table, column) the analysis reads outside JOIN … ON, and the protected unit.
  const joinOnly = new Set(c.contributions.flatMap((t) => t.rule.joinColumns.map((j) => `${t.table}.${j}`)));
  const used = [...new Set([...bound.columns.filter((dc) => !joinOnly.has(dc)), `${prot.table}.${rule.privacyUnit}`])];
  const name = (dc: string): string => dc.replace('.', '__');
  const contributionOf = (t: string): Contribution => c.contributions.find((x) => x.table === t)!;
  const boundsOf = (t: string, column: string): readonly [number, number] | null => {
    const r = contributionOf(t).rule;
    return r.kind === 'aggregation' ? r.aggregateColumns.find((a) => a.column === column)?.bounds ?? null : null;
  };
  const joinedName = `cleanroom_${c.id.replaceAll('-', '_')}_joined`;
  const joined: DatasetDef = {
    name: joinedName, description: `the join of analysis tables on the compute node of ${c.id}`, source: sourceOf(joinedName),
    classification: 'confidential', tags: [], privacyUnit: name(`${prot.table}.${rule.privacyUnit}`), region: null, owner: prot.owner, purposes: [c.purpose],
    columns: used.map((dc) => {
      const [t, column] = dc.split('.') as [string, string];
      return { name: name(dc), type: contributionOf(t).columns.find((x) => x.name === column)!.type, classification: 'confidential', tags: [], mask: null, bounds: boundsOf(t, column), description: null };
    }),
  };
  const aliasOf = (t: string): string => [...aliases].find(([, d]) => d === t)![0];
  const stage1 = select({
    targets: used.map((dc) => { const [t, column] = dc.split('.') as [string, string]; return { expr: col(aliasOf(t), column, dc), alias: name(dc) }; }),
    from: q.from, where: q.where,
  });
  const principal = memberPrincipal(querier);
  const catalog = collaborationCatalog(c, sourceOf);
  const noObligation = (t: Contribution): ObligationDef => ({ name: `cleanroom:${c.id}:${t.table}:join`, rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [...t.rule.joinColumns] });
  // The scans project the join columns too (the ON clause reads them); the targets do not.
  const scanned = [...new Set([...bound.columns, ...used])];
  const join = govern({ query: stage1, datasets: bound.datasets, columns: scanned }, {
    principal, datasets: catalog, defaultRowCap: JOIN_STAGE_ROW_CAP, rowFilters: new Map(), columnsUsed: new Set(scanned),
    obligations: new Map(bound.datasets.map((t) => [t, [noObligation(contributionOf(t))]])),
  });

  // Stage 2: the analysis's own SELECT over the joined table.
  const repoint = (e: Expr): Expr => mapExpr(e, (x) => {
    if (x.kind !== 'column') return x;
    const t = aliases.get(x.relation);
    if (t === undefined) return x;
    return col(ALIAS, name(`${t}.${x.name}`), `${joinedName}.${name(`${t}.${x.name}`)}`);
  });
  const stage2: Select = {
    ...q, with: [], from: { kind: 'dataset', dataset: joinedName, alias: ALIAS, scan: null }, where: null,
    targets: q.targets.map((t) => ({ ...t, expr: repoint(t.expr) })), groupBy: q.groupBy.map(repoint),
    having: q.having ? repoint(q.having) : null, orderBy: q.orderBy.map((o) => ({ ...o, expr: repoint(o.expr) })),
  };
  const def: DifferentialPrivacyDef = {
    mechanism: dpRule.mechanism, epsilon: dpRule.epsilon, delta: dpRule.delta,
    maxGroupsPerUnit: dpRule.maxGroupsPerUnit, maxRowsPerUnitPerGroup: dpRule.maxRowsPerUnitPerGroup, publicGroups: {},
    budget: { epsilon: dpRule.budget.epsilon, delta: dpRule.budget.delta, window: dpRule.budget.windowDays ? { kind: 'rolling-days', days: dpRule.budget.windowDays } : null, per: 'principal' },
  };
  const release = govern({ query: stage2, datasets: [joinedName], columns: used.map((dc) => `${joinedName}.${name(dc)}`) }, {
    principal, datasets: new Map([[joinedName, joined]]), defaultRowCap: 10_000, rowFilters: new Map(), columnsUsed: new Set(used.map((dc) => `${joinedName}.${name(dc)}`)),
    obligations: new Map([[joinedName, [{ name: `cleanroom:${c.id}:${prot.table}:dp`, rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [], differentialPrivacy: def }]]]),
  });
  if (!release.dp) throw new Error('the differential-privacy obligation produced no release plan');
  // The ledger's dataset key: one budget per querying member and protected table.
  const dp: DpReleasePlan = { ...release.dp, dataset: `cleanroom:${c.id}:${prot.table}` };
  return {
    protectedTable: prot.table, joined, join, release: { ...release, dp },
    applied: [`cleanroom:differentialPrivacy(${prot.table}.${rule.privacyUnit}, ε=${dpRule.epsilon}, per-member budget ε=${dpRule.budget.epsilon})`, ...release.obligationsApplied],
  };
}
