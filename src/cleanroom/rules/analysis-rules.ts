/**
 * Clean-room analysis rules as a check over the query IR: one more obligation transformer
 * (query/govern/context.ts's ObligationTransformer shape), not a second engine. What the
 * existing transformers already enforce is handed to them as obligations (rules-to-
 * obligations.ts): join columns become join-only columns, the minimum number of distinct
 * privacy units per output row becomes aggregation-only's `minGroupSize` — the strictest
 * among the tables a query touches — and disclosure control withholds smaller groups.
 * This file adds what AWS Clean Rooms' rules add on top:
 *
 * - aggregation rule: only the listed aggregate functions over the listed columns; join
 *   columns only inside JOIN … ON; dimensions only in WHERE / GROUP BY / the output; only
 *   the listed scalar functions; a join with another member's table when required;
 *   INNER equi-joins on join columns between tables of different members;
 * - list rule: rows of the overlap only (an INNER join with another member's table on join
 *   columns), listed columns only, no aggregation;
 * - custom rule: the table is read only by a template listed in the rule;
 * - any template (custom analysis) must carry the approval of every owner of a table it
 *   touches, for exactly its current text (approvals name the text's hash).
 *
 * A query must satisfy the rule of every table it touches. Refusals name the rule broken.
 */
import { lineageOf } from '../../query/bind.ts';
import { lookupFunction } from '../../query/functions.ts';
import { datasetItems, forEachExpr, forEachSelect, selectExprs, subqueriesOf, type Expr, type FromItem, type Select } from '../../query/ir.ts';
import { CleanroomError, ruleViolation } from '../errors.ts';
import type { AggregateFunction, AggregationRule, Collaboration, Contribution, ListRule, Template } from '../model.ts';

export interface AnalysisInput {
  readonly collaboration: Collaboration;
  /** The approved analysis the query came from, or null for free-form SQL. */
  readonly template: Template | null;
}

type ColumnRef = Extract<Expr, { kind: 'column' }>;

function contributionOf(c: Collaboration, table: string): Contribution {
  const found = c.contributions.find((x) => x.table === table);
  if (!found) throw new CleanroomError('CLEANROOM_NOT_FOUND', `table "${table}" is not contributed to collaboration "${c.id}"`);
  return found;
}

/** "table.column" sources of an expression (count(*) has none). */
function sources(e: Expr): string[] {
  return [...lineageOf(e).sources];
}

function exprKey(e: Expr): string {
  return JSON.stringify(e, (k, v) => (k === 'lineage' ? undefined : v));
}

function tablesOf(q: Select): string[] {
  const out = new Set<string>();
  forEachSelect(q, (b) => { for (const d of datasetItems(b.from)) out.add(d.dataset); });
  return [...out];
}

function isSingleBlock(q: Select): boolean {
  if (q.with.length > 0) return false;
  const plain = (f: FromItem | null): boolean => f === null || f.kind === 'dataset' || (f.kind === 'join' && plain(f.left) && plain(f.right) && (f.on === null || subqueriesOf(f.on).length === 0));
  if (!plain(q.from)) return false;
  return selectExprs(q).every((e) => subqueriesOf(e).length === 0);
}

/** The ON conjuncts of every join, with the two tables each links. */
function joinLinks(q: Select, relationTable: ReadonlyMap<string, string>): { left: ColumnRef; right: ColumnRef; type: string }[] {
  const out: { left: ColumnRef; right: ColumnRef; type: string }[] = [];
  const walk = (f: FromItem | null): void => {
    if (f === null || f.kind !== 'join') return;
    walk(f.left);
    walk(f.right);
    const conjuncts: Expr[] = [];
    const split = (e: Expr): void => { if (e.kind === 'binary' && e.op === 'AND') { split(e.left); split(e.right); } else conjuncts.push(e); };
    if (f.on) split(f.on);
    if (f.type === 'cross' || conjuncts.length === 0) ruleViolation('a clean-room join needs ON with equalities of join columns', 'write INNER JOIN … ON a.key = b.key on the tables\' join columns');
    for (const c of conjuncts) {
      if (c.kind !== 'binary' || c.op !== '=' || c.left.kind !== 'column' || c.right.kind !== 'column' || !relationTable.has(c.left.relation.toLowerCase()) || !relationTable.has(c.right.relation.toLowerCase())) {
        ruleViolation('a clean-room join condition may only be equalities between join columns', 'write ON a.key = b.key; filters on dimensions go in WHERE');
      }
      out.push({ left: c.left, right: c.right, type: f.type });
    }
  };
  walk(q.from);
  return out;
}

function relationTables(q: Select): Map<string, string> {
  return new Map(datasetItems(q.from).map((d) => [d.alias.toLowerCase(), d.dataset]));
}

function columnTable(col: ColumnRef, rel: ReadonlyMap<string, string>): string | null {
  return rel.get(col.relation.toLowerCase()) ?? null;
}

function checkJoins(q: Select, c: Collaboration, rel: ReadonlyMap<string, string>, joinColumnsOf: (table: string) => readonly string[]): Set<string> {
  const linkedAcrossMembers = new Set<string>();
  for (const link of joinLinks(q, rel)) {
    if (link.type !== 'inner') ruleViolation(`${link.type.toUpperCase()} JOIN is refused in a clean room (it would expose rows outside the overlap)`, 'use INNER JOIN');
    const lt = columnTable(link.left, rel)!;
    const rt = columnTable(link.right, rel)!;
    for (const [t, col] of [[lt, link.left], [rt, link.right]] as const) {
      if (!joinColumnsOf(t).includes(col.name)) ruleViolation(`"${t}.${col.name}" is not a join column of its table, so it may not join`, `join on ${joinColumnsOf(t).map((x) => `"${t}.${x}"`).join(', ') || 'a declared join column'}`);
    }
    const lo = contributionOf(c, lt).owner;
    const ro = contributionOf(c, rt).owner;
    if (lo !== ro) {
      linkedAcrossMembers.add(lt);
      linkedAcrossMembers.add(rt);
    }
  }
  return linkedAcrossMembers;
}

/** Columns referenced outside JOIN … ON, with where they appear. */
function* columnUses(q: Select): Generator<{ col: ColumnRef; clause: string }> {
  const clauses: [string, Expr[]][] = [
    ['the select list', q.targets.map((t) => t.expr)],
    ['WHERE', q.where ? [q.where] : []],
    ['GROUP BY', [...q.groupBy]],
    ['HAVING', q.having ? [q.having] : []],
    ['ORDER BY', q.orderBy.map((o) => o.expr)],
  ];
  for (const [clause, exprs] of clauses) for (const e of exprs) {
    const found: ColumnRef[] = [];
    forEachExpr(e, (x) => { if (x.kind === 'column') found.push(x); });
    for (const col of found) yield { col, clause };
  }
}

function aggregateName(e: Extract<Expr, { kind: 'func' }>): AggregateFunction | null {
  if (e.name === 'count') return e.distinct ? 'count_distinct' : 'count';
  if (e.name === 'sum' || e.name === 'avg') return e.distinct ? null : e.name;
  return null;
}

function checkAggregation(q: Select, c: Collaboration, rules: ReadonlyMap<string, AggregationRule>, rel: ReadonlyMap<string, string>): void {
  const first = [...rules.keys()][0]!;
  if (!isSingleBlock(q)) ruleViolation(`table "${first}" has an aggregation rule: the analysis must be one SELECT over the tables (no CTE, subquery or derived table)`, 'join the tables directly and aggregate in one query');
  const joinColumnsOf = (t: string): readonly string[] => contributionOf(c, t).rule.joinColumns;
  const linked = checkJoins(q, c, rel, joinColumnsOf);
  for (const [t, r] of rules) {
    if (r.joinRequired && !linked.has(t)) ruleViolation(`table "${t}" may only be analysed joined with another member's table`, `add INNER JOIN <another member's table> ON … = ${t}.${r.joinColumns[0] ?? '<join column>'}`);
  }
  // Where each column of an aggregation-rule table may appear.
  for (const { col, clause } of columnUses(q)) {
    const t = columnTable(col, rel);
    if (t === null) continue;
    const r = rules.get(t);
    if (!r) continue;
    if (r.joinColumns.includes(col.name)) ruleViolation(`"${t}.${col.name}" is a join column: it may be used only in JOIN … ON, not in ${clause}`, 'remove it from that clause; keep it in the ON condition');
  }
  const groupKeys = new Set(q.groupBy.map(exprKey));
  const hasAggregate = selectExprs(q).some((e) => { let found = false; forEachExpr(e, (x) => { if (x.kind === 'func' && lookupFunction(x.name)?.kind === 'aggregate') found = true; }); return found; });
  if (!hasAggregate && q.groupBy.length === 0) ruleViolation(`table "${first}" has an aggregation rule: the analysis must aggregate`, 'use count/sum/avg with GROUP BY on dimension columns');
  if (q.distinct) ruleViolation('SELECT DISTINCT is not an aggregation', 'use GROUP BY with an aggregate');

  // A scalar function is allowed only when every aggregation-rule table allows it.
  const ruleList = [...rules.values()];
  const scalars = new Set(ruleList[0]!.scalarFunctions.filter((f) => ruleList.every((r) => r.scalarFunctions.includes(f))));
  const dimension = (col: ColumnRef, clause: string): void => {
    const t = columnTable(col, rel);
    const r = t === null ? undefined : rules.get(t);
    if (r && !r.dimensionColumns.includes(col.name)) ruleViolation(`"${t}.${col.name}" is not a dimension column, so it may not appear in ${clause} outside an allowed aggregate`, `use dimension columns (${r.dimensionColumns.join(', ') || 'none declared'}) or aggregate it with an allowed function`);
  };
  /** An expression over dimensions (WHERE, GROUP BY, a grouped output). */
  const overDimensions = (e: Expr, clause: string): void => {
    forEachExpr(e, (x) => {
      if (x.kind === 'column') dimension(x, clause);
      if (x.kind === 'func') {
        const info = lookupFunction(x.name);
        if (info?.kind === 'aggregate') ruleViolation(`aggregate ${x.name}() may not appear in ${clause}`, 'aggregate in the select list or HAVING');
        if (x.over) ruleViolation('window functions are refused in a clean room', 'use GROUP BY');
        if (!scalars.has(x.name)) ruleViolation(`function ${x.name}() is not among the scalar functions the tables' owners allow`, `allowed: ${[...scalars].join(', ') || 'none'}`);
      }
    });
  };
  if (q.where) overDimensions(q.where, 'WHERE');
  for (const g of q.groupBy) overDimensions(g, 'GROUP BY');
  /** An output: a group key, or built from allowed aggregates. */
  const output = (e: Expr, clause: string): void => {
    if (groupKeys.has(exprKey(e))) return;
    switch (e.kind) {
      case 'literal': case 'param': return;
      case 'column': dimension(e, clause); ruleViolation(`"${e.name}" in ${clause} is neither grouped nor aggregated`, 'add it to GROUP BY or aggregate it');
      case 'func': {
        const info = lookupFunction(e.name);
        if (e.over) ruleViolation('window functions are refused in a clean room', 'use GROUP BY');
        if (info?.kind !== 'aggregate') {
          if (!scalars.has(e.name)) ruleViolation(`function ${e.name}() is not among the scalar functions the tables' owners allow`, `allowed: ${[...scalars].join(', ') || 'none'}`);
          for (const a of e.args) output(a, clause);
          return;
        }
        if (e.filter) ruleViolation('FILTER on aggregates is refused in a clean room (it can isolate a customer)', 'filter in WHERE on a dimension');
        const fn = aggregateName(e);
        if (fn === null) ruleViolation(`aggregate ${e.name}() is not an allowed clean-room aggregate`, 'use count, count(DISTINCT …), sum or avg as the rules allow');
        if (e.star) {
          const ok = [...rules.values()].some((r) => r.aggregateColumns.some((a) => a.functions.includes('count')));
          if (!ok) ruleViolation('count(*) is not allowed by any table\'s rule', 'count an allowed column instead');
          return;
        }
        for (const a of e.args) {
          if (a.kind !== 'column') ruleViolation(`the argument of ${e.name}() must be a column`, 'aggregate a column directly');
          const t = columnTable(a, rel);
          const r = t === null ? undefined : rules.get(t);
          if (!r) continue;
          const allowed = r.aggregateColumns.find((x) => x.column === a.name);
          if (!allowed || !allowed.functions.includes(fn)) ruleViolation(`${fn === 'count_distinct' ? 'count(DISTINCT …)' : `${fn}()`} of "${t}.${a.name}" is not allowed by table "${t}"'s aggregation rule`, `allowed: ${r.aggregateColumns.map((x) => `${x.functions.join('/')}(${x.column})`).join(', ')}`);
        }
        return;
      }
      case 'binary': output(e.left, clause); output(e.right, clause); return;
      case 'unary': case 'cast': case 'isNull': output(e.arg, clause); return;
      default:
        ruleViolation(`${e.kind} expressions are not allowed in the output of a clean-room aggregation`, 'output dimension columns and aggregates');
    }
  };
  for (const t of q.targets) output(t.expr, 'the select list');
  if (q.having) output(q.having, 'HAVING');
  for (const o of q.orderBy) output(o.expr, 'ORDER BY');
}

function checkList(q: Select, c: Collaboration, rules: ReadonlyMap<string, ListRule>, rel: ReadonlyMap<string, string>): void {
  const first = [...rules.keys()][0]!;
  if (!isSingleBlock(q)) ruleViolation(`table "${first}" has a list rule: the analysis must be one SELECT over the tables`, 'join the tables directly');
  const joinColumnsOf = (t: string): readonly string[] => contributionOf(c, t).rule.joinColumns;
  const linked = checkJoins(q, c, rel, joinColumnsOf);
  for (const t of rules.keys()) if (!linked.has(t)) ruleViolation(`table "${t}" has a list rule: it lists only rows that overlap another member's table`, `INNER JOIN another member's table ON … = ${t}.${rules.get(t)!.joinColumns[0]}`);
  const aggregates = selectExprs(q).some((e) => { let f = false; forEachExpr(e, (x) => { if (x.kind === 'func' && (lookupFunction(x.name)?.kind === 'aggregate' || x.over)) f = true; }); return f; });
  if (aggregates || q.groupBy.length > 0) ruleViolation(`table "${first}" has a list rule: it returns overlap rows, not aggregates`, 'select the listed columns');
  for (const { col, clause } of columnUses(q)) {
    const t = columnTable(col, rel);
    const r = t === null ? undefined : rules.get(t);
    if (!r) continue;
    if (r.joinColumns.includes(col.name)) ruleViolation(`"${t}.${col.name}" is a join column: it may be used only in JOIN … ON, not in ${clause}`, 'remove it from that clause');
    if (!r.listColumns.includes(col.name)) ruleViolation(`"${t}.${col.name}" is not a listed column of table "${t}"`, `list only ${r.listColumns.join(', ')}`);
  }
  for (const e of selectExprs(q)) forEachExpr(e, (x) => {
    if (x.kind === 'func') ruleViolation(`function ${x.name}() is not allowed under a list rule`, 'select and filter the listed columns directly');
  });
}

/** The hash approvals name: any change to the text, even a space, needs a new approval. */
export function checkTemplateApprovals(c: Collaboration, template: Template, tables: readonly string[]): void {
  for (const t of tables) {
    const owner = contributionOf(c, t).owner;
    if (template.approvals[owner] !== template.hash) {
      throw new CleanroomError('CLEANROOM_TEMPLATE_UNAPPROVED', `template "${template.name}" (${template.hash.slice(0, 19)}…) is not approved by "${owner}", owner of table "${t}"${template.approvals[owner] ? ' for its current text (the text changed since the approval)' : ''}`, `ask "${owner}" to review and approve it: gatehouse cleanroom approve ${c.id} ${template.name}`);
    }
  }
}

/** Checks a bound query against the rules of every table it touches; returns the labels applied. */
export function checkAnalysis(q: Select, input: AnalysisInput): string[] {
  const c = input.collaboration;
  const tables = tablesOf(q);
  if (tables.length === 0) ruleViolation('a clean-room analysis reads at least one contributed table', 'name a contributed table in FROM');
  const aggregation = new Map<string, AggregationRule>();
  const list = new Map<string, ListRule>();
  const applied: string[] = [];
  for (const t of tables) {
    const r = contributionOf(c, t).rule;
    if (r.kind === 'aggregation') aggregation.set(t, r);
    else if (r.kind === 'list') list.set(t, r);
    else if (input.template === null || !r.templates.includes(input.template.name)) {
      throw new CleanroomError('CLEANROOM_TEMPLATE_UNAPPROVED', `table "${t}" may be read only by its approved analysis templates (${r.templates.join(', ') || 'none yet'})`, 'run an approved template: gatehouse cleanroom query --template <name>');
    }
    applied.push(`cleanroom.rule:${t}:${r.kind}`);
  }
  if (input.template !== null) {
    checkTemplateApprovals(c, input.template, tables);
    applied.push(`cleanroom.template:${input.template.name}@${input.template.hash}`);
  }
  if (aggregation.size > 0 && list.size > 0) ruleViolation(`tables "${[...aggregation.keys()][0]}" (aggregation rule) and "${[...list.keys()][0]}" (list rule) cannot be analysed together`, 'query them in separate analyses');
  const rel = relationTables(q);
  if (aggregation.size > 0) checkAggregation(q, c, aggregation, rel);
  if (list.size > 0) checkList(q, c, list, rel);
  return applied;
}
