/**
 * Policy analysis on every change: Cedar's own validation (schema errors, and the
 * validator's warnings such as a policy that can never apply) plus an analysis of
 * redundant, shadowed and never-matching policies.
 *
 * cedar-wasm 4.13 has no symbolic analyser (Cedar's SMT-based `cedar-policy-symcc` is not
 * in the WebAssembly build), so the second part is empirical over a probe grid: every
 * principal the version declares × every dataset × every purpose in play (datasets'
 * purposes, purpose literals in the policies, purposes seen in the replayed traffic) ×
 * with and without MFA × with and without contractor governance satisfied × each
 * privileged (elevation) group. Each policy's satisfaction is read from the real engine
 * (src/policy/engine.ts) compiled twice — permits only, forbids only — so the
 * determining-policy lists name every satisfied permit and every satisfied forbid.
 *
 *   never-matching  satisfied in no probe;
 *   shadowed        a permit satisfied only where a forbid also holds: it never grants;
 *   redundant       a permit that, wherever it grants, is accompanied by other granting
 *                   permits carrying all its obligations (removing it changes no decision
 *                   and no obligation); a forbid always accompanied by another forbid.
 *
 * A finding is "for this grid": a principal or purpose outside it is not covered, which is
 * why the findings are advice and the replay is the evidence (docs/policy-whatif.md).
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { cedarProblems, PolicyEngine, type RequestContext } from '../../policy/engine.ts';
import type { PrincipalDef, Workspace } from '../../model/types.ts';
import type { LoadedWorkspace } from '../../workspace/validate.ts';

export interface PolicyFinding {
  readonly policy: string;
  readonly kind: 'never-matching' | 'shadowed' | 'redundant' | 'cedar-warning' | 'cedar-error';
  readonly detail: string;
}

export interface PolicyAnalysis {
  readonly probes: number;
  readonly findings: readonly PolicyFinding[];
}

const GOVERNED = { governed: true, governanceAllowed: true, purposePermitted: true, agreementActive: true, grantActive: true, acknowledged: true, trainingCurrent: true } as const;

/** Purposes in play: datasets' purposes, literals compared with context.purpose, and extra ones. */
export function purposesInPlay(ws: Workspace, extra: Iterable<string> = []): string[] {
  const out = new Set<string>(extra);
  for (const d of ws.datasets.values()) for (const p of d.purposes) out.add(p);
  for (const text of ws.policyFiles.values()) {
    for (const m of text.matchAll(/context\.purpose\s*==\s*"([^"]+)"/g)) out.add(m[1]!);
    for (const m of text.matchAll(/\[([^\]]*)\]\s*\.contains\(\s*context\.purpose\s*\)/g)) for (const s of m[1]!.matchAll(/"([^"]+)"/g)) out.add(s[1]!);
  }
  return [...out].sort();
}

interface Split { readonly ws: Workspace; readonly effect: Map<string, 'permit' | 'forbid'>; readonly obligations: Map<string, readonly string[]> }

/** The workspace with policies of one effect only; every policy keeps its id. */
function splitBy(l: LoadedWorkspace, effect: 'permit' | 'forbid'): Workspace {
  const files = new Map<string, string>();
  for (const [file, text] of l.workspace.policyFiles) {
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') continue;
    const kept: string[] = [];
    parts.policies.forEach((ptext, i) => {
      const json = cedar.policyToJson(ptext);
      if (json.type === 'failure' || json.json.effect !== effect) return;
      kept.push(json.json.annotations?.id !== undefined ? ptext : `@id("${file}#${i}")\n${ptext}`);
    });
    files.set(file, kept.join('\n\n'));
  }
  return { ...l.workspace, policyFiles: files };
}

function probesOf(l: LoadedWorkspace, purposes: readonly string[], channels: readonly string[], at: Date): { principal: PrincipalDef; ctx: RequestContext }[] {
  const roles = Object.keys(l.workspace.identity?.elevationRoles ?? {});
  const out: { principal: PrincipalDef; ctx: RequestContext }[] = [];
  for (const p0 of l.workspace.principals.values()) {
    const variants = [p0, ...roles.map((r) => ({ ...p0, groups: [...p0.groups, `elevated:${r}`] }))];
    for (const principal of variants) for (const purpose of purposes) for (const channel of channels) for (const mfa of [null, 0]) for (const gov of [false, true]) {
      out.push({ principal, ctx: { purpose, channel, sourceIp: '127.0.0.1', time: at, mfaAgeSeconds: mfa, deviceCompliant: mfa !== null, ...(gov ? { governance: GOVERNED } : {}) } });
    }
  }
  return out;
}

export function analysePolicies(l: LoadedWorkspace, options: { purposes?: Iterable<string>; channels?: readonly string[]; at?: Date } = {}): PolicyAnalysis {
  const findings: PolicyFinding[] = [];
  // Cedar's validation: errors (the loader refuses those) and the validator's warnings.
  for (const pr of cedarProblems(l.workspace.cedarSchema, l.workspace.policyFiles)) findings.push({ policy: pr.file, kind: 'cedar-error', detail: pr.message });
  for (const [file, text] of l.workspace.policyFiles) {
    const v = cedar.validate({ schema: l.workspace.cedarSchema, policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
    if (v.type === 'success') for (const w of v.validationWarnings) findings.push({ policy: `${file}`, kind: 'cedar-warning', detail: w.error.message });
  }
  const split: Split = { ws: l.workspace, effect: new Map(), obligations: new Map() };
  for (const p of l.policy.policies.values()) { split.effect.set(p.id, p.effect); split.obligations.set(p.id, p.obligationNames); }
  const permits = PolicyEngine.compile(splitBy(l, 'permit')).engine;
  const forbids = PolicyEngine.compile(splitBy(l, 'forbid')).engine;
  if (!permits || !forbids) return { probes: 0, findings };
  const purposes = purposesInPlay(l.workspace, options.purposes ?? []);
  const probes = probesOf(l, purposes, options.channels ?? ['http'], options.at ?? new Date());
  const satisfied = new Map<string, number>();
  const granted = new Map<string, number>();
  const shadowedOnly = new Map<string, boolean>();
  const redundantOnly = new Map<string, boolean>();
  let n = 0;
  for (const { principal, ctx } of probes) {
    for (const ds of l.workspace.datasets.values()) {
      n++;
      const pd = permits.decide(principal, ds, ctx);
      const fd = forbids.decide(principal, ds, ctx);
      const sp = pd.allowed ? pd.policies : [];
      const sf = !fd.allowed ? fd.policies.filter((id) => split.effect.get(id) === 'forbid') : [];
      for (const id of [...sp, ...sf]) satisfied.set(id, (satisfied.get(id) ?? 0) + 1);
      for (const id of sp) {
        if (sf.length > 0) continue;
        granted.set(id, (granted.get(id) ?? 0) + 1);
        const others = sp.filter((o) => o !== id);
        const covered = others.length > 0 && (split.obligations.get(id) ?? []).every((o) => others.some((x) => (split.obligations.get(x) ?? []).includes(o)));
        redundantOnly.set(id, (redundantOnly.get(id) ?? true) && covered);
      }
      for (const id of sp) if (sf.length === 0) shadowedOnly.set(id, false); else if (!shadowedOnly.has(id)) shadowedOnly.set(id, true);
      for (const id of sf) redundantOnly.set(id, (redundantOnly.get(id) ?? true) && sf.length > 1);
    }
  }
  for (const [id, effect] of split.effect) {
    if (!satisfied.has(id)) { findings.push({ policy: id, kind: 'never-matching', detail: `no probe (${n} principal × dataset × context combinations) satisfies this ${effect}` }); continue; }
    if (effect === 'permit' && shadowedOnly.get(id) === true) { findings.push({ policy: id, kind: 'shadowed', detail: 'wherever this permit applies, a forbid applies too: it never grants access' }); continue; }
    if (redundantOnly.get(id) === true) findings.push({ policy: id, kind: 'redundant', detail: effect === 'permit' ? 'wherever this permit grants, other permits grant too with all its obligations: removing it changes nothing' : 'wherever this forbid applies, another forbid applies too' });
  }
  return { probes: n, findings };
}
