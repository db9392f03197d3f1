/**
 * Loads a workspace and checks everything that can be checked before serving: the YAML,
 * the Cedar schema and policies (schema validation), obligations against the datasets the
 * policies scope them to, and row filters (parsed by the same SQL parser as queries).
 * `serve` refuses a workspace with any problem; `gatehouse validate` prints them all.
 */
import { relative, resolve } from 'node:path';
import { GatehouseError } from '../errors.ts';
import { OidcVerifier } from '../identity/oidc.ts';
import { cedarProblems, PolicyEngine } from '../policy/engine.ts';
import { bindRowFilter } from '../query/govern/row-filter.ts';
import type { Expr } from '../query/ir.ts';
import { loadParser, parseSql } from '../query/parse.ts';
import { csvHeaderProblems } from './csv-header.ts';
import { maskTypeProblem, readWorkspaceFiles, WorkspaceInvalid, type WorkspaceProblem } from './load.ts';
import type { DatasetDef, ObligationDef, Workspace } from '../model/types.ts';

export interface LoadedWorkspace {
  readonly workspace: Workspace;
  readonly policy: PolicyEngine;
  /** Verifiers of the external OIDC providers, by issuer. */
  readonly oidc: ReadonlyMap<string, OidcVerifier>;
  /** Parsed (unbound) row filter per obligation name. */
  readonly rowFilters: ReadonlyMap<string, Expr>;
}

/** Parses a row filter expression on its own; the text cannot smuggle in more than an expression. */
export function parseRowFilter(text: string): Expr {
  const q = parseSql(`SELECT 1 WHERE ${text}`);
  if (q.from !== null || q.targets.length !== 1 || q.groupBy.length || q.having || q.orderBy.length || q.limit !== null || q.offset !== null || q.with.length || q.where === null) {
    throw new GatehouseError('SQL_INVALID', 'a row filter must be a single boolean expression');
  }
  return q.where;
}

function checkObligationOn(o: ObligationDef, ds: DatasetDef, filter: Expr | undefined, problems: WorkspaceProblem[]): void {
  const has = (c: string): boolean => ds.columns.some((x) => x.name === c);
  const at = `obligations.${o.name}`;
  for (const c of o.unmask) if (!has(c)) problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.unmask: dataset "${ds.name}" has no column "${c}"` });
  for (const c of o.joinOnly) if (!has(c)) problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.joinOnly: dataset "${ds.name}" has no column "${c}"` });
  for (const [c, m] of Object.entries(o.masks)) {
    const column = ds.columns.find((x) => x.name === c);
    if (!column) { problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.masks: dataset "${ds.name}" has no column "${c}"` }); continue; }
    const problem = maskTypeProblem(m, column.type);
    if (problem) problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.masks.${c}: ${problem}` });
  }
  if (o.differentialPrivacy) {
    if (!ds.privacyUnit) problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.differentialPrivacy: dataset "${ds.name}" must declare privacyUnit (DP here protects each unit, never just a row)` });
    for (const c of Object.keys(o.differentialPrivacy.publicGroups)) if (!has(c)) problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.differentialPrivacy.publicGroups: dataset "${ds.name}" has no column "${c}"` });
    if (o.aggregationOnly) problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}: differentialPrivacy and aggregationOnly are alternatives; use one` });
  }
  if (o.aggregationOnly && !ds.privacyUnit) problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.aggregationOnly: dataset "${ds.name}" must declare privacyUnit (the column counted for the minimum group size)` });
  if (filter) {
    try {
      bindRowFilter(filter, ds, null);
    } catch (err) {
      problems.push({ file: 'gatehouse.yaml', line: null, message: `${at}.rowFilter on dataset "${ds.name}": ${(err as Error).message}` });
    }
  }
}

export async function loadWorkspace(dir: string): Promise<LoadedWorkspace> {
  await loadParser();
  const { workspace, problems, policyFiles, cedarSchema } = readWorkspaceFiles(dir);
  if (!workspace) {
    // Report policy problems too, so one run of `gatehouse validate` lists everything.
    if (policyFiles && cedarSchema !== undefined) problems.push(...cedarProblems(cedarSchema, policyFiles));
    throw new WorkspaceInvalid(problems);
  }
  const all: WorkspaceProblem[] = [];
  for (const ds of workspace.datasets.values()) {
    for (const c of ds.columns) if (c.name.startsWith('__gh')) all.push({ file: 'gatehouse.yaml', line: null, message: `datasets.${ds.name}.columns.${c.name}: names starting with "__gh" are reserved` });
    if (ds.source.kind === 'csv') all.push(...csvHeaderProblems(ds, relative(resolve(dir), ds.source.path)));
  }
  const rowFilters = new Map<string, Expr>();
  for (const o of workspace.obligations.values()) {
    if (o.rowFilter === null) continue;
    try {
      rowFilters.set(o.name, parseRowFilter(o.rowFilter));
    } catch (err) {
      all.push({ file: 'gatehouse.yaml', line: null, message: `obligations.${o.name}.rowFilter: ${(err as Error).message}` });
    }
  }
  const { engine, problems: policyProblems } = PolicyEngine.compile(workspace);
  all.push(...policyProblems);
  if (engine) {
    for (const p of engine.policies.values()) {
      const targets = p.dataset ? [workspace.datasets.get(p.dataset)].filter((d): d is DatasetDef => d !== undefined) : [];
      for (const n of p.obligationNames) {
        const o = workspace.obligations.get(n);
        if (!o) continue;
        for (const ds of targets) checkObligationOn(o, ds, rowFilters.get(n), all);
      }
    }
  }
  const oidc = new Map<string, OidcVerifier>();
  for (const [i, o] of (workspace.identity?.oidc ?? []).entries()) {
    try {
      oidc.set(o.issuer, new OidcVerifier(o));
    } catch (err) {
      all.push({ file: 'gatehouse.yaml', line: null, message: `identity.oidc[${i}]: ${(err as Error).message}` });
    }
  }
  if (all.length > 0 || !engine) throw new WorkspaceInvalid(all);
  return { workspace, policy: engine, rowFilters, oidc };
}
