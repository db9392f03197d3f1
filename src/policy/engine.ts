/**
 * Decisions: Cedar (`@cedar-policy/cedar-wasm`) over the workspace's policies, pre-parsed
 * once per policy version. Default deny; forbid wins; any evaluation error denies.
 *
 * Obligations ride on permit policies as the annotation `@obligations("a, b")`, naming
 * obligation sets from gatehouse.yaml. Every obligation of every determining permit is
 * returned; an unknown name denies (fail closed).
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { DatasetDef, ObligationDef, PrincipalDef, Workspace } from '../model/types.ts';
import { lineAt, type WorkspaceProblem } from '../model/problems.ts';
import type { ResidencyConfig } from '../federation/residency-config.ts';
import { RESIDENCY_CONTEXT_KEYS, residencyContext } from '../federation/residency-context.ts';

export const QUERY_ACTION = 'query';

export interface RequestContext {
  readonly purpose: string;
  readonly sourceIp: string;
  readonly channel: string;
  readonly time: Date;
  /** Seconds since the caller's last MFA event; null without MFA (API keys, password-only). */
  readonly mfaAgeSeconds?: number | null;
  /** Device posture from a signed posture token (identity.posture); false when absent or stale. */
  readonly deviceCompliant?: boolean;
  readonly networkZone?: string;
  /** Contractor-governance attributes of this principal for this dataset (src/governance/gate.ts). */
  readonly governance?: Readonly<Record<string, string | number | boolean>>;
}

export interface Decision {
  readonly allowed: boolean;
  readonly dataset: string;
  /** Ids of the determining policies (permits when allowed, forbids when denied). */
  readonly policies: readonly string[];
  readonly obligations: readonly ObligationDef[];
  /** Reasons a user can act on. */
  readonly reasons: readonly string[];
}

interface CompiledPolicy {
  readonly id: string;
  readonly file: string;
  readonly effect: 'permit' | 'forbid';
  readonly obligationNames: readonly string[];
  readonly reason: string | null;
  /** The dataset the policy is scoped to (`resource == Dataset::"x"`), or null for broader scopes. */
  readonly dataset: string | null;
}

type SchemaJson = cedar.SchemaJson<string>;

interface SchemaShape {
  readonly principalAttrs: ReadonlySet<string>;
  readonly datasetAttrs: ReadonlySet<string>;
  readonly contextAttrs: ReadonlySet<string>;
}

let nextSetId = 0;
const MEMO_LIMIT = 4096;

export class PolicyEngine {
  readonly version: string;
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  readonly #setId: string;
  readonly #schemaId: string;
  readonly #shape: SchemaShape;
  readonly #workspace: Workspace;
  readonly #memo = new Map<string, Decision>();
  readonly #principalKeys = new WeakMap<PrincipalDef, { readonly json: cedar.EntityJson; readonly key: string }>();
  /** This node's region and its datasets' residency (src/federation/residency-config.ts); null when not federated. */
  readonly residency: ResidencyConfig | null;

  private constructor(workspace: Workspace, policies: Map<string, CompiledPolicy>, shape: SchemaShape, setId: string, schemaId: string, residency: ResidencyConfig | null) {
    this.version = workspace.policyVersion;
    this.residency = residency;
    this.policies = policies;
    this.#shape = shape;
    this.#setId = setId;
    this.#schemaId = schemaId;
    this.#workspace = workspace;
  }

  /** Validates and pre-parses a workspace's policies; returns problems instead of throwing. */
  static compile(workspace: Workspace): { engine: PolicyEngine | null; problems: WorkspaceProblem[] } {
    // Residency is policy: a workspace that would store or process a dataset outside its regions is refused here.
    const residency = workspace.residency ?? { config: null, problems: [] };
    const problems: WorkspaceProblem[] = [...residency.problems];
    const schemaJson = cedar.schemaToJson(workspace.cedarSchema);
    if (schemaJson.type === 'failure') {
      for (const e of schemaJson.errors) problems.push({ file: 'schema.cedarschema', line: locLine(workspace.cedarSchema, e), message: `Cedar schema: ${e.message}` });
      return { engine: null, problems };
    }
    const shape = schemaShape(schemaJson.json, problems);
    const policies = new Map<string, CompiledPolicy>();
    const texts: Record<string, string> = {};
    problems.push(...cedarProblems(workspace.cedarSchema, workspace.policyFiles));
    for (const [file, text] of workspace.policyFiles) {
      const parts = cedar.policySetTextToParts(text);
      if (parts.type === 'failure') continue;
      parts.policies.forEach((ptext, i) => {
        const json = cedar.policyToJson(ptext);
        if (json.type === 'failure') return;
        const ann = json.json.annotations ?? {};
        const id = ann.id ?? `${file}#${i}`;
        const line = lineAt(text, Math.max(0, text.indexOf(ptext)));
        if (policies.has(id)) problems.push({ file, line, message: `duplicate policy id "${id}"` });
        const obligationNames = (ann.obligations ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (json.json.effect === 'forbid' && obligationNames.length > 0) {
          problems.push({ file, line, message: `policy "${id}": obligations belong on permit policies; a forbid denies outright` });
        }
        for (const n of obligationNames) {
          if (!workspace.obligations.has(n)) problems.push({ file, line, message: `policy "${id}" names obligation "${n}", which gatehouse.yaml does not define` });
        }
        const res = json.json.resource;
        const dataset = res.op === '==' && 'entity' in res && 'type' in res.entity && res.entity.type === 'Dataset' ? res.entity.id : null;
        if (dataset !== null && !workspace.datasets.has(dataset)) problems.push({ file, line, message: `policy "${id}" names Dataset::"${dataset}", which gatehouse.yaml does not define` });
        policies.set(id, { id, file, effect: json.json.effect, obligationNames, reason: ann.reason ?? null, dataset });
        texts[id] = ptext;
      });
    }
    for (const p of workspace.principals.values()) {
      for (const a of shape.principalAttrs) {
        if (!(a in p.attributes) && a !== 'kind') {
          problems.push({ file: 'gatehouse.yaml', line: null, message: `principals.${p.id}: the Cedar schema requires attribute "${a}"` });
        }
      }
    }
    if (problems.length > 0) return { engine: null, problems };

    const setId = `ps${nextSetId++}`;
    const schemaId = `${setId}-schema`;
    // One pre-parsed set per dataset: the policies scoped to it plus the unscoped ones. A
    // policy scoped to another dataset can never apply, so the decisions are the same and
    // each evaluation skips what cannot match.
    const answers = [cedar.preparsePolicySet(setId, { staticPolicies: texts }), cedar.preparseSchema(schemaId, workspace.cedarSchema)];
    for (const ds of workspace.datasets.keys()) {
      const subset: Record<string, string> = {};
      for (const [id, p] of policies) if (p.dataset === null || p.dataset === ds) subset[id] = texts[id]!;
      answers.push(cedar.preparsePolicySet(`${setId}/${ds}`, { staticPolicies: subset }));
    }
    for (const r of answers) {
      if (r.type === 'failure') for (const e of r.errors) problems.push({ file: 'policies', line: null, message: `Cedar: ${e.message}` });
    }
    if (problems.length > 0) return { engine: null, problems };
    return { engine: new PolicyEngine(workspace, policies, shape, setId, schemaId, residency.config), problems };
  }

  /**
   * Decides whether `principal` may query `dataset` in `context`. Never throws for a deny.
   *
   * Memoised by the exact inputs Cedar sees — principal entity (with its attributes and
   * groups), dataset and the whole context (time to the second) — within this compiled
   * policy version. A decision is a pure function of those inputs, so the memo never
   * answers for a changed policy, principal or context: a reload builds a new engine, and a
   * revoked credential fails before any decision (invariant 6).
   */
  decide(principal: PrincipalDef, dataset: DatasetDef, context: RequestContext): Decision {
    // The principal's part of the key, kept per principal object: a PrincipalDef is immutable
    // (the workspace's, or a fresh object per request when elevations add groups), so the
    // same object always yields the same entity. Everything else is keyed afresh.
    let who = this.#principalKeys.get(principal);
    if (!who) {
      const json = principalEntity(principal, this.#shape);
      who = { json, key: JSON.stringify([json, principal.groups]) };
      this.#principalKeys.set(principal, who);
    }
    const principalJson = who.json;
    const contextJson = contextRecord({ ...context, residency: residencyContext(this.residency, dataset.name, context.channel) }, this.#shape);
    const key = who.key + '\u0000' + JSON.stringify([dataset.name, contextJson]);
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const decision = this.#evaluate(principal, principalJson, dataset, contextJson, context);
    if (this.#memo.size >= MEMO_LIMIT) this.#memo.delete(this.#memo.keys().next().value!);
    this.#memo.set(key, decision);
    return decision;
  }

  #evaluate(principal: PrincipalDef, principalJson: cedar.EntityJson, dataset: DatasetDef, contextJson: Record<string, cedar.CedarValueJson>, context: RequestContext): Decision {
    const entities = [
      principalJson,
      ...principal.groups.map((g) => ({ uid: { type: 'Group', id: g }, attrs: {}, parents: [] })),
      datasetEntity(dataset, this.#shape),
    ];
    const answer = cedar.statefulIsAuthorized({
      principal: { type: 'Principal', id: principal.id },
      action: { type: 'Action', id: QUERY_ACTION },
      resource: { type: 'Dataset', id: dataset.name },
      context: contextJson,
      preparsedPolicySetId: `${this.#setId}/${dataset.name}`,
      preparsedSchemaName: this.#schemaId,
      validateRequest: true,
      entities,
    });
    const base = { dataset: dataset.name };
    if (answer.type === 'failure') {
      return { ...base, allowed: false, policies: [], obligations: [], reasons: [`the request could not be evaluated against policy ${this.version.slice(0, 19)} (your attributes do not match the Cedar schema); ask the data owner`] };
    }
    const { decision, diagnostics } = answer.response;
    if (diagnostics.errors.length > 0) {
      return {
        ...base, allowed: false, policies: diagnostics.errors.map((e) => e.policyId), obligations: [],
        // Cedar's message can quote attribute values; the caller gets the policy id only.
        reasons: diagnostics.errors.map((e) => `policy "${e.policyId}" could not be evaluated for this request (a missing or mistyped attribute); an evaluation error denies — ask the data owner to check the policy and your attributes`),
      };
    }
    const determining = diagnostics.reason.map((id) => this.policies.get(id)).filter((p): p is CompiledPolicy => p !== undefined);
    if (decision === 'deny') {
      const forbids = determining.filter((p) => p.effect === 'forbid');
      const reasons = forbids.length > 0
        ? forbids.map((p) => p.reason ?? `forbidden by policy "${p.id}"`)
        : [`no policy permits ${principal.id} to query dataset "${dataset.name}" for purpose "${context.purpose}"; ask the data owner for a grant or use a permitted purpose${dataset.purposes.length ? ` (${dataset.purposes.join(', ')})` : ''}`];
      return { ...base, allowed: false, policies: forbids.map((p) => p.id), obligations: [], reasons };
    }
    const obligations: ObligationDef[] = [];
    for (const p of determining) {
      for (const n of p.obligationNames) {
        const o = this.#workspace.obligations.get(n);
        if (!o) return { ...base, allowed: false, policies: [p.id], obligations: [], reasons: [`policy "${p.id}" names unknown obligation "${n}"; an unknown obligation denies`] };
        if (!obligations.includes(o)) obligations.push(o);
      }
    }
    return { ...base, allowed: true, policies: determining.map((p) => p.id), obligations, reasons: determining.map((p) => p.reason ?? `permitted by policy "${p.id}"`) };
  }
}

/** Parse and schema-validation problems of policy files, with file and line. */
export function cedarProblems(schema: string, files: ReadonlyMap<string, string>): WorkspaceProblem[] {
  const problems: WorkspaceProblem[] = [];
  for (const [file, text] of files) {
    const parts = cedar.policySetTextToParts(text);
    if (parts.type === 'failure') {
      for (const e of parts.errors) problems.push({ file, line: locLine(text, e), message: `Cedar: ${e.message}${e.help ? ` (${e.help})` : ''}` });
      continue;
    }
    if (parts.policy_templates.length > 0) problems.push({ file, line: null, message: 'policy templates are not supported; write static policies' });
    if (!schema) continue;
    const validation = cedar.validate({ schema, policies: { staticPolicies: text }, validationSettings: { mode: 'strict' } });
    if (validation.type === 'failure') {
      for (const e of validation.errors) problems.push({ file, line: locLine(text, e), message: `Cedar: ${e.message}` });
    } else {
      for (const v of validation.validationErrors) {
        problems.push({ file, line: locLine(text, v.error), message: `Cedar policy fails schema validation: ${v.error.message.replace(/^for policy `policy\d+`, /, '')}${v.error.help ? ` (${v.error.help})` : ''}` });
      }
    }
  }
  return problems;
}

function locLine(text: string, e: cedar.DetailedError): number | null {
  const loc = e.sourceLocations?.[0];
  return loc ? lineAt(text, loc.start) : null;
}

function attrNames(t: cedar.EntityTypeKind<string> | undefined): Set<string> {
  const shape = t && 'shape' in t ? t.shape : undefined;
  if (shape && 'attributes' in shape && shape.attributes) return new Set(Object.keys(shape.attributes));
  return new Set();
}

function schemaShape(json: SchemaJson, problems: WorkspaceProblem[]): SchemaShape {
  const ns = json[''];
  if (!ns || Object.keys(json).length !== 1) {
    problems.push({ file: 'schema.cedarschema', line: null, message: 'declare the Gatehouse entity types without a namespace (Principal, Group, Dataset, action query)' });
    return { principalAttrs: new Set(), datasetAttrs: new Set(), contextAttrs: new Set() };
  }
  for (const t of ['Principal', 'Group', 'Dataset']) {
    if (!ns.entityTypes[t]) problems.push({ file: 'schema.cedarschema', line: null, message: `the schema must declare entity type ${t}` });
  }
  const action = ns.actions[QUERY_ACTION];
  if (!action) problems.push({ file: 'schema.cedarschema', line: null, message: `the schema must declare action "${QUERY_ACTION}"` });
  const ctx = action?.appliesTo?.context;
  const contextAttrs = new Set(ctx && 'attributes' in ctx && ctx.attributes ? Object.keys(ctx.attributes) : []);
  for (const c of contextAttrs) {
    if (!CONTEXT_KEYS.has(c)) problems.push({ file: 'schema.cedarschema', line: null, message: `action query context declares "${c}", which Gatehouse does not supply (it supplies ${[...CONTEXT_KEYS].join(', ')})` });
  }
  const datasetAttrs = attrNames(ns.entityTypes.Dataset);
  for (const a of datasetAttrs) {
    if (!DATASET_KEYS.has(a)) problems.push({ file: 'schema.cedarschema', line: null, message: `Dataset declares attribute "${a}", which Gatehouse does not supply (it supplies ${[...DATASET_KEYS].join(', ')})` });
  }
  return { principalAttrs: attrNames(ns.entityTypes.Principal), datasetAttrs, contextAttrs };
}

/** What the governance gate supplies (src/governance/gate.ts); these defaults when it did not run. */
const GOVERNANCE_DEFAULTS: Readonly<Record<string, string | number | boolean>> = {
  governed: false, governanceAllowed: true, purposePermitted: true, vendorRiskTier: 0, maxVendorTier: 4,
  agreementActive: false, agreementId: '', agreementKind: '', grantId: '', grantActive: false, grantUntil: '',
  acknowledged: false, trainingCurrent: false,
};
const CONTEXT_KEYS = new Set(['purpose', 'sourceIp', 'channel', 'time', 'hour', 'weekday', 'mfa', 'mfaAgeSeconds', 'deviceCompliant', 'networkZone', ...Object.keys(GOVERNANCE_DEFAULTS), ...RESIDENCY_CONTEXT_KEYS]);
const DATASET_KEYS = new Set(['classification', 'region', 'owner', 'purposes', 'tags']);

function principalEntity(p: PrincipalDef, shape: SchemaShape): cedar.EntityJson {
  const attrs: Record<string, cedar.CedarValueJson> = {};
  for (const a of shape.principalAttrs) {
    if (a === 'kind') attrs.kind = p.kind;
    else if (a in p.attributes) attrs[a] = p.attributes[a] as cedar.CedarValueJson;
  }
  return { uid: { type: 'Principal', id: p.id }, attrs, parents: p.groups.map((g) => ({ type: 'Group', id: g })) };
}

function datasetEntity(d: DatasetDef, shape: SchemaShape): cedar.EntityJson {
  const all: Record<string, cedar.CedarValueJson> = {
    classification: d.classification, region: d.region ?? '', owner: d.owner ?? '',
    purposes: [...d.purposes], tags: [...d.tags],
  };
  const attrs: Record<string, cedar.CedarValueJson> = {};
  for (const a of shape.datasetAttrs) attrs[a] = all[a]!;
  return { uid: { type: 'Dataset', id: d.name }, attrs, parents: [] };
}

function contextRecord(c: RequestContext & { residency: Record<string, cedar.CedarValueJson> }, shape: SchemaShape): Record<string, cedar.CedarValueJson> {
  const all: Record<string, cedar.CedarValueJson> = {
    purpose: c.purpose,
    sourceIp: { __extn: { fn: 'ip', arg: c.sourceIp } },
    channel: c.channel,
    time: Math.floor(c.time.getTime() / 1000),
    hour: c.time.getUTCHours(),
    weekday: c.time.getUTCDay(),
    mfa: c.mfaAgeSeconds !== undefined && c.mfaAgeSeconds !== null,
    mfaAgeSeconds: c.mfaAgeSeconds ?? -1,
    deviceCompliant: c.deviceCompliant ?? false,
    networkZone: c.networkZone ?? 'unknown',
    ...GOVERNANCE_DEFAULTS,
    ...(c.governance ?? {}),
    ...c.residency,
  };
  const ctx: Record<string, cedar.CedarValueJson> = {};
  for (const k of shape.contextAttrs) ctx[k] = all[k]!;
  return ctx;
}
