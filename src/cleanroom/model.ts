/**
 * What a collaboration is, as data every member holds a copy of (AWS Clean Rooms'
 * vocabulary: collaboration, member abilities, configured tables with analysis rules,
 * analysis templates, result receivers).
 *
 * Each contributed table carries exactly one analysis rule:
 * - aggregation: which aggregate functions over which columns, which columns only join,
 *   which are dimensions (group/filter/output), which scalar functions, whether a join with
 *   another member's table is required, and the minimum number of distinct privacy units
 *   behind every output row;
 * - list: rows of the overlap (an inner join with another member's table on join columns),
 *   listed columns only;
 * - custom: only approved templates may read the table.
 *
 * An aggregation rule may also require differential privacy (rules/dp-analysis.ts): every
 * analysis touching the table is then released with noise under the table's privacy unit,
 * and each querying member spends its own budget on the compute node's ledger.
 */
import type { ColumnType } from '../model/types.ts';
import type { ComputeSettings } from './attestation-requirement.ts';
import { CleanroomError } from './errors.ts';

export type Ability = 'query' | 'receive' | 'approve';
export const ABILITIES: readonly Ability[] = ['query', 'receive', 'approve'];

export interface Member {
  readonly nodeId: string;
  /** The member's node key as its peers pin it (`ed25519:…`). */
  readonly publicKey: string;
  readonly abilities: readonly Ability[];
  readonly status: 'invited' | 'active' | 'left';
  /** The member's X25519 sealing key (JWK) when it can be a compute node (sealed-columns.ts). */
  readonly sealingKey?: { readonly kty: string; readonly crv: string; readonly x: string } | null;
}

export type AggregateFunction = 'count' | 'count_distinct' | 'sum' | 'avg';

/** Differential privacy an aggregation rule requires: per query (ε, δ), and each querying member's budget. */
export interface CleanroomDpRule {
  readonly mechanism: 'gaussian' | 'laplace';
  readonly epsilon: number;
  readonly delta: number;
  readonly maxGroupsPerUnit: number;
  readonly maxRowsPerUnitPerGroup: number;
  /** Each member's budget per window (rolling days; null: for the collaboration's life). */
  readonly budget: { readonly epsilon: number; readonly delta: number; readonly windowDays: number | null };
}

export interface AggregationRule {
  readonly kind: 'aggregation';
  /** `bounds`: the range values are clamped to under differential privacy (needed to sum or average). */
  readonly aggregateColumns: readonly { readonly column: string; readonly functions: readonly AggregateFunction[]; readonly bounds?: readonly [number, number] }[];
  readonly joinColumns: readonly string[];
  readonly dimensionColumns: readonly string[];
  readonly scalarFunctions: readonly string[];
  readonly joinRequired: boolean;
  /** The column whose distinct values are the protected units (customers). */
  readonly privacyUnit: string;
  readonly minDistinctUnits: number;
  readonly differentialPrivacy?: CleanroomDpRule;
}

export interface ListRule {
  readonly kind: 'list';
  readonly joinColumns: readonly string[];
  readonly listColumns: readonly string[];
}

export interface CustomRule {
  readonly kind: 'custom';
  /** Columns the approved templates may join on (never returned). */
  readonly joinColumns: readonly string[];
  /** Names of the templates that may read this table (each still needs its owner's approval by hash). */
  readonly templates: readonly string[];
}

export type AnalysisRule = AggregationRule | ListRule | CustomRule;

export interface ContributedColumn {
  readonly name: string;
  readonly type: ColumnType;
}

export interface Contribution {
  /** The table's name inside the collaboration. */
  readonly table: string;
  readonly owner: string;
  /** The dataset on the owner's node it is read from (under the owner's own policy). */
  readonly dataset: string;
  readonly columns: readonly ContributedColumn[];
  readonly rule: AnalysisRule;
}

export interface Template {
  readonly name: string;
  readonly text: string;
  /** sha256:<hex> of the text; approvals name this hash. */
  readonly hash: string;
  readonly author: string;
  /** Owner node id → the template hash that owner approved. */
  readonly approvals: Readonly<Record<string, string>>;
}

export interface Collaboration {
  readonly id: string;
  readonly name: string;
  readonly purpose: string;
  readonly creator: string;
  /** The node that runs joins in designated-compute mode. */
  readonly computeNode: string;
  readonly members: readonly Member[];
  readonly contributions: readonly Contribution[];
  readonly templates: readonly Template[];
  readonly status: 'active' | 'ended';
  /** Bumped on every change, so members can tell which version a query ran under. */
  readonly version: number;
  /** What members require of the compute node before they release columns (fixed at creation). */
  readonly compute?: ComputeSettings;
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;
const FUNCTIONS: readonly AggregateFunction[] = ['count', 'count_distinct', 'sum', 'avg'];

function invalid(message: string): never {
  throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', message, 'fix the analysis rule as the message says (docs/cleanrooms.md#analysis-rules)');
}

function names(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !IDENT.test(x))) invalid(`${what} must be a list of column names`);
  return v as string[];
}

/** Validates an analysis rule against the table's columns; every problem is a clear refusal. */
function parseDp(raw: unknown): CleanroomDpRule {
  const d = raw as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null) invalid('differentialPrivacy is an object: { epsilon, delta, budget: { epsilon, delta, windowDays } }');
  const positive = (v: unknown, what: string, max: number): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) invalid(`differentialPrivacy.${what} must be a number above 0 and at most ${max}`);
    return v as number;
  };
  const whole = (v: unknown, what: string, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000) invalid(`differentialPrivacy.${what} must be a whole number from 1 to 1000`);
    return v as number;
  };
  const mechanism = d!.mechanism ?? 'gaussian';
  if (mechanism !== 'gaussian' && mechanism !== 'laplace') invalid('differentialPrivacy.mechanism must be gaussian or laplace');
  const b = d!.budget as Record<string, unknown> | undefined;
  if (typeof b !== 'object' || b === null) invalid('differentialPrivacy.budget is each member\'s budget: { epsilon, delta, windowDays }');
  const windowDays = b!.windowDays === undefined || b!.windowDays === null ? null : whole(b!.windowDays, 'budget.windowDays', 30);
  return {
    mechanism: mechanism as 'gaussian' | 'laplace', epsilon: positive(d!.epsilon, 'epsilon', 10), delta: positive(d!.delta ?? 1e-6, 'delta', 1e-3),
    maxGroupsPerUnit: whole(d!.maxGroupsPerUnit, 'maxGroupsPerUnit', 1), maxRowsPerUnitPerGroup: whole(d!.maxRowsPerUnitPerGroup, 'maxRowsPerUnitPerGroup', 1),
    budget: { epsilon: positive(b!.epsilon, 'budget.epsilon', 100), delta: positive(b!.delta ?? 1e-5, 'budget.delta', 1e-2), windowDays },
  };
}

export function parseRule(raw: unknown, columns: readonly ContributedColumn[]): AnalysisRule {
  if (typeof raw !== 'object' || raw === null) invalid('an analysis rule is an object with a kind');
  const r = raw as Record<string, unknown>;
  const known = new Set(columns.map((c) => c.name));
  const mustExist = (list: readonly string[], what: string): void => {
    for (const c of list) if (!known.has(c)) invalid(`${what} names "${c}", which the table does not contribute`);
  };
  if (r.kind === 'aggregation') {
    const joinColumns = names(r.joinColumns ?? [], 'joinColumns');
    const dimensionColumns = names(r.dimensionColumns ?? [], 'dimensionColumns');
    const scalarFunctions = names(r.scalarFunctions ?? [], 'scalarFunctions');
    if (!Array.isArray(r.aggregateColumns) || r.aggregateColumns.length === 0) invalid('aggregateColumns must list at least one column with its functions');
    const aggregateColumns = (r.aggregateColumns as unknown[]).map((a) => {
      const x = a as Record<string, unknown>;
      if (typeof x?.column !== 'string') invalid('each aggregate column needs a column name');
      const fns = x.functions;
      if (!Array.isArray(fns) || fns.length === 0 || fns.some((f) => !FUNCTIONS.includes(f as AggregateFunction))) invalid(`functions for "${x.column}" must be some of ${FUNCTIONS.join(', ')}`);
      if (x.bounds === undefined) return { column: x.column, functions: fns as AggregateFunction[] };
      const b = x.bounds;
      if (!Array.isArray(b) || b.length !== 2 || !b.every((v) => typeof v === 'number' && Number.isFinite(v)) || b[0] >= b[1]) invalid(`bounds for "${x.column}" must be [low, high] with low < high`);
      return { column: x.column, functions: fns as AggregateFunction[], bounds: [b[0], b[1]] as const };
    });
    if (typeof r.privacyUnit !== 'string' || !known.has(r.privacyUnit)) invalid('privacyUnit must name a contributed column (the customer or person column)');
    const min = r.minDistinctUnits;
    if (typeof min !== 'number' || !Number.isInteger(min) || min < 2) invalid('minDistinctUnits must be a whole number of at least 2');
    mustExist(joinColumns, 'joinColumns');
    mustExist(dimensionColumns, 'dimensionColumns');
    mustExist(aggregateColumns.map((a) => a.column), 'aggregateColumns');
    for (const j of joinColumns) if (dimensionColumns.includes(j) || aggregateColumns.some((a) => a.column === j)) invalid(`"${j}" is a join column and may not also be a dimension or aggregate column`);
    const dp = r.differentialPrivacy === undefined ? null : parseDp(r.differentialPrivacy);
    return { kind: 'aggregation', aggregateColumns, joinColumns, dimensionColumns, scalarFunctions, joinRequired: r.joinRequired === true, privacyUnit: r.privacyUnit, minDistinctUnits: min, ...(dp ? { differentialPrivacy: dp } : {}) };
  }
  if (r.kind === 'list') {
    const joinColumns = names(r.joinColumns ?? [], 'joinColumns');
    const listColumns = names(r.listColumns ?? [], 'listColumns');
    if (joinColumns.length === 0) invalid('a list rule needs join columns (it lists the overlap)');
    if (listColumns.length === 0) invalid('a list rule needs listColumns');
    mustExist(joinColumns, 'joinColumns');
    mustExist(listColumns, 'listColumns');
    for (const j of joinColumns) if (listColumns.includes(j)) invalid(`"${j}" is a join column and may not be listed`);
    return { kind: 'list', joinColumns, listColumns };
  }
  if (r.kind === 'custom') {
    if (!Array.isArray(r.templates) || r.templates.some((t) => typeof t !== 'string')) invalid('a custom rule lists the template names that may read the table');
    const joinColumns = names(r.joinColumns ?? [], 'joinColumns');
    mustExist(joinColumns, 'joinColumns');
    return { kind: 'custom', joinColumns, templates: r.templates as string[] };
  }
  return invalid('kind must be aggregation, list or custom');
}

export function memberOf(c: Collaboration, nodeId: string): Member | null {
  return c.members.find((m) => m.nodeId === nodeId && m.status === 'active') ?? null;
}

export function requireAbility(c: Collaboration, nodeId: string, ability: Ability): Member {
  if (c.status === 'ended') throw new CleanroomError('CLEANROOM_ENDED', `collaboration "${c.id}" has ended`, 'start a new collaboration');
  const m = memberOf(c, nodeId);
  if (m === null) throw new CleanroomError('CLEANROOM_NOT_MEMBER', `node "${nodeId}" is not an active member of collaboration "${c.id}"`, 'accept an invitation first');
  if (!m.abilities.includes(ability)) {
    throw new CleanroomError('CLEANROOM_ABILITY_MISSING', `member "${nodeId}" may not ${ability === 'receive' ? 'receive results' : ability === 'approve' ? 'approve templates' : 'run queries'} in collaboration "${c.id}"`, 'ask the collaboration creator for the ability');
  }
  return m;
}
