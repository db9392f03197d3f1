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
import { createHash } from 'node:crypto';
import { csvHeaderProblems } from './csv-header.ts';
import { maskTypeProblem, readDeclaredAccess, readWorkspaceFiles, WorkspaceInvalid, type WorkspaceProblem } from './load.ts';
import type { DatasetDef, ObligationDef, PrincipalDef, Workspace } from '../model/types.ts';

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

/** Obligations checked against the datasets the policies scope them to. */
function obligationProblems(workspace: Workspace, engine: PolicyEngine, rowFilters: ReadonlyMap<string, Expr>): WorkspaceProblem[] {
  const out: WorkspaceProblem[] = [];
  for (const p of engine.policies.values()) {
    const targets = p.dataset ? [workspace.datasets.get(p.dataset)].filter((d): d is DatasetDef => d !== undefined) : [];
    for (const n of p.obligationNames) {
      const o = workspace.obligations.get(n);
      if (!o) continue;
      for (const ds of targets) checkObligationOn(o, ds, rowFilters.get(n), out);
    }
  }
  return out;
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
  if (engine) all.push(...obligationProblems(workspace, engine, rowFilters));
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

/**
 * An invalid workspace whose access-removing changes were applied anyway: `problems` still
 * need fixing (the rest of the version in force stays), `applied` says what took effect.
 */
export class WorkspacePartlyApplied extends WorkspaceInvalid {
  readonly applied: readonly string[];
  constructor(problems: readonly WorkspaceProblem[], applied: readonly string[]) {
    super(problems);
    this.applied = applied;
    this.message = `${this.message}\nmeanwhile these changes, which only remove access, were applied:\n${applied.map((a) => `  ${a}`).join('\n')}`;
  }
}

/**
 * The "restricting merge": when the workspace on disk is invalid, the version in force stays,
 * except for the changes that can only take access away, which apply at once (invariant 6:
 * revocation is immediate, even while a dataset file is missing):
 *
 *  - a principal no longer listed is removed, and so are API key digests no longer listed
 *    for a principal (read from the YAML even if other parts of it are invalid);
 *  - a dataset no longer listed leaves the catalog (its engines stay open until the next
 *    full reload, unreachable: nothing binds a query to a dataset the catalog lacks);
 *  - an mTLS subject mapping no longer listed, or now naming another principal, is removed;
 *  - the policy set (Cedar files and schema) is replaced as a whole when it is complete
 *    (no problem names the policies or the schema) and compiles cleanly against the merged
 *    workspace: policies are a part that is valid on its own, so it applies.
 *
 * Nothing else changes: groups, attributes, obligations and new principals, keys or datasets
 * wait for the whole workspace to be valid. Returns null when nothing would change.
 */
export async function restrictingMerge(dir: string, current: LoadedWorkspace, problems: readonly WorkspaceProblem[]): Promise<{ loaded: LoadedWorkspace; applied: string[] } | null> {
  const declared = readDeclaredAccess(dir);
  if (!declared) return null;
  const ws = current.workspace;
  const applied: string[] = [];

  let principals: ReadonlyMap<string, PrincipalDef> = ws.principals;
  if (declared.principals) {
    const next = new Map<string, PrincipalDef>();
    for (const [id, p] of ws.principals) {
      const listed = declared.principals.get(id);
      if (!listed) { applied.push(`principal "${id}" removed`); continue; }
      const keys = p.apiKeySha256.filter((k) => listed.has(k));
      if (keys.length < p.apiKeySha256.length) applied.push(`${p.apiKeySha256.length - keys.length} API key(s) of principal "${id}" removed`);
      next.set(id, keys.length === p.apiKeySha256.length ? p : { ...p, apiKeySha256: keys });
    }
    principals = next;
  }

  let datasets: ReadonlyMap<string, DatasetDef> = ws.datasets;
  if (declared.datasets) {
    const next = new Map<string, DatasetDef>();
    for (const [name, d] of ws.datasets) {
      if (declared.datasets.has(name)) next.set(name, d);
      else applied.push(`dataset "${name}" removed`);
    }
    datasets = next;
  }

  let identity = ws.identity;
  if (identity && declared.mtlsPrincipals) {
    const kept: Record<string, string> = {};
    for (const [cn, pid] of Object.entries(identity.mtlsPrincipals)) {
      if (declared.mtlsPrincipals[cn] === pid) kept[cn] = pid;
      else applied.push(`mTLS subject "${cn}" no longer maps to a principal`);
    }
    if (Object.keys(kept).length < Object.keys(identity.mtlsPrincipals).length) identity = { ...identity, mtlsPrincipals: kept };
  }

  let merged: Workspace = { ...ws, principals, datasets, ...(identity ? { identity } : {}) };
  let policy: PolicyEngine | null = null;
  const files = readWorkspaceFiles(dir);
  const policiesComplete = !problems.some((p) => p.file !== 'gatehouse.yaml' || /^(policies|schema)\b/.test(p.message));
  if (policiesComplete && files.policyFiles && files.cedarSchema !== undefined && files.policyFiles.size > 0 &&
      (files.cedarSchema !== ws.cedarSchema || !sameTexts(files.policyFiles, ws.policyFiles))) {
    const candidate: Workspace = { ...merged, policyFiles: files.policyFiles, cedarSchema: files.cedarSchema };
    const compiled = PolicyEngine.compile(candidate);
    if (compiled.engine && compiled.problems.length === 0 && obligationProblems(candidate, compiled.engine, current.rowFilters).length === 0) {
      merged = candidate;
      policy = compiled.engine;
      applied.push(`policy set replaced (${files.policyFiles.size} Cedar file(s))`);
    }
  }
  if (applied.length === 0) return null;

  const h = createHash('sha256').update('restricting-merge\0').update(ws.policyVersion).update('\0');
  for (const a of applied) h.update(a).update('\0');
  for (const [f, t] of [...merged.policyFiles].sort(([a], [b]) => (a < b ? -1 : 1))) h.update(f).update('\0').update(t).update('\0');
  merged = { ...merged, policyVersion: `sha256:${h.digest('hex')}` };
  // The engine compiled for the version in force keeps deciding when the policies did not change.
  if (!policy) {
    const recompiled = PolicyEngine.compile(merged);
    policy = recompiled.engine && recompiled.problems.length === 0 ? recompiled.engine : current.policy;
  }
  return { loaded: { workspace: merged, policy, oidc: current.oidc, rowFilters: current.rowFilters }, applied };
}

function sameTexts(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}
