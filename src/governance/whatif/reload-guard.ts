/**
 * The reload guard: a workspace change that would newly let a principal see a regulated
 * column unmasked does not take effect unless a second administrator signed an
 * acknowledgement of exactly that change.
 *
 * "Newly" is found over the probe grid of analysis.ts (every principal the new version
 * declares × dataset × purpose in play × MFA × governance × elevation): a widening is a
 * (principal, dataset, regulated column) that the new version returns as stored — allowed,
 * no mask, not join-only — in some probe where the policies, obligations and catalog in
 * force, applied to the same principal definition, denied the dataset or masked the column.
 * The guard compares policy, not traffic, so a widening nobody has used yet is caught too.
 * Membership changes (a new analyst in an existing group) are reported by the what-if
 * replay but not refused here: onboarding is governed by grants and access reviews, and a
 * reload must keep applying them (test/reload-revocation.test.ts).
 *
 * The acknowledgement (format gatehouse-policy-ack/v1) is a JSON file in the workspace's
 * `acknowledgements/` directory, signed with Ed25519 (RFC 8032) over its canonical JSON
 * (RFC 8785, src/audit/canonical.ts) without the signature:
 *
 *   { format, from: <policy version in force>, to: <new policy version>,
 *     widenings: "sha256:<digest of the widening list>", admin: <principal id>, signature }
 *
 * The signer must be an administrator (identity.adminGroups) of the version IN FORCE, with
 * an Ed25519 public key in its attribute `policySigningKey` there (base64 of the 32 raw
 * bytes): a change cannot bring its own signer. Binding `from`, `to` and the widening
 * digest means an acknowledgement approves one reviewed change and nothing after it.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalize } from '../../audit/canonical.ts';
import { GatehouseError } from '../../errors.ts';
import { effectiveAccess } from '../../query/govern/effective-access.ts';
import type { PrincipalDef } from '../../model/types.ts';
import type { LoadedWorkspace } from '../../workspace/validate.ts';
import { purposesInPlay } from './analysis.ts';

export const ACK_FORMAT = 'gatehouse-policy-ack/v1';
export const ACK_DIR = 'acknowledgements';
export const SIGNING_KEY_ATTRIBUTE = 'policySigningKey';

export interface Widening {
  readonly principal: string;
  readonly dataset: string;
  readonly column: string;
  /** One purpose under which the new version shows the column as stored. */
  readonly purpose: string;
  /**
   * 'policy': the principal, as the new version defines it, sees the column unmasked under
   * the new policies, obligations and catalog but not under those in force — the drift the
   * guard stops. 'membership': only because the principal is new or its groups or attributes
   * changed (under the new policies alike): reported, and governed by grants and access
   * reviews rather than by this guard.
   */
  readonly kind: 'policy' | 'membership';
}

export interface PolicyAcknowledgement {
  readonly format: typeof ACK_FORMAT;
  readonly from: string;
  readonly to: string;
  readonly widenings: string;
  readonly admin: string;
  readonly signature: string;
}

const GOVERNED = { governed: true, governanceAllowed: true, purposePermitted: true, agreementActive: true, grantActive: true, acknowledged: true, trainingCurrent: true } as const;

function visibleRegulated(l: LoadedWorkspace, principal: PrincipalDef | undefined, ctx: Parameters<LoadedWorkspace['policy']['decide']>[2], datasetName: string): Set<string> {
  const out = new Set<string>();
  const ds = l.workspace.datasets.get(datasetName);
  if (!principal || !ds) return out;
  const d = l.policy.decide(principal, ds, ctx);
  if (!d.allowed) return out;
  const access = effectiveAccess(ds, d.obligations, l.workspace.defaults.rowCap);
  for (const c of ds.columns) {
    if (c.classification !== 'regulated') continue;
    const a = access.columns.get(c.name)!;
    if (a.mask === null && !a.joinOnly) out.add(c.name);
  }
  return out;
}

/** Regulated columns the new version newly shows as stored, per principal and dataset. */
export function regulatedWidenings(current: LoadedWorkspace, next: LoadedWorkspace, options: { purposes?: Iterable<string>; at?: Date } = {}): Widening[] {
  const purposes = purposesInPlay(next.workspace, [...purposesInPlay(current.workspace), ...(options.purposes ?? [])]);
  const roles = new Set([...Object.keys(next.workspace.identity?.elevationRoles ?? {}), ...Object.keys(current.workspace.identity?.elevationRoles ?? {})]);
  const found = new Map<string, Widening>();
  const at = options.at ?? new Date();
  for (const p of next.workspace.principals.values()) {
    const old = current.workspace.principals.get(p.id);
    for (const extra of [null, ...roles]) {
      const withRole = (x: PrincipalDef | undefined): PrincipalDef | undefined => (x && extra ? { ...x, groups: [...x.groups, `elevated:${extra}`] } : x);
      for (const purpose of purposes) for (const mfa of [null, 0]) for (const gov of [false, true]) {
        const ctx = { purpose, channel: 'http', sourceIp: '127.0.0.1', time: at, mfaAgeSeconds: mfa, deviceCompliant: mfa !== null, ...(gov ? { governance: GOVERNED } : {}) };
        for (const ds of next.workspace.datasets.keys()) {
          const now = visibleRegulated(next, withRole(p), ctx, ds);
          if (now.size === 0) continue;
          // The same principal definition under the policies in force: what changed is policy.
          const underOldPolicy = visibleRegulated(current, withRole(p), ctx, ds);
          const before = visibleRegulated(current, withRole(old), ctx, ds);
          for (const c of now) {
            const key = `${p.id}\u0000${ds}\u0000${c}`;
            const kind = !underOldPolicy.has(c) ? 'policy' : !before.has(c) ? 'membership' : null;
            if (kind === null) continue;
            const had = found.get(key);
            if (!had || (had.kind === 'membership' && kind === 'policy')) found.set(key, { principal: p.id, dataset: ds, column: c, purpose, kind });
          }
        }
      }
    }
  }
  return [...found.values()].sort((a, b) => (a.principal + a.dataset + a.column < b.principal + b.dataset + b.column ? -1 : 1));
}

/** The digest an acknowledgement signs: of the policy widenings' (principal, dataset, column) triples. */
export function wideningsDigest(w: readonly Widening[]): string {
  const triples = w.filter((x) => x.kind === 'policy').map((x) => [x.principal, x.dataset, x.column]).sort();
  return `sha256:${createHash('sha256').update(canonicalize(triples)).digest('hex')}`;
}

function signedBytes(a: Omit<PolicyAcknowledgement, 'signature'>): Buffer {
  return Buffer.from(canonicalize({ format: a.format, from: a.from, to: a.to, widenings: a.widenings, admin: a.admin }), 'utf8');
}

/** Signs an acknowledgement with an administrator's Ed25519 private key (PEM or KeyObject). */
export function signAcknowledgement(fields: { from: string; to: string; widenings: string; admin: string }, privateKey: string | KeyObject): PolicyAcknowledgement {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const body = { format: ACK_FORMAT, ...fields } as const;
  return { ...body, signature: sign(null, signedBytes(body), key).toString('base64') };
}

/** The base64 raw public key to put in the admin's `policySigningKey` attribute. */
export function rawPublicKey(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return Buffer.from(jwk.x, 'base64url').toString('base64');
}

function publicKeyOf(raw: string): KeyObject | null {
  try {
    const bytes = Buffer.from(raw, 'base64');
    if (bytes.length !== 32) return null;
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: bytes.toString('base64url') }, format: 'jwk' });
  } catch { return null; }
}

/** Why an acknowledgement does not approve this change, or null when it does. */
export function acknowledgementProblem(a: unknown, current: LoadedWorkspace, to: string, digest: string): string | null {
  if (typeof a !== 'object' || a === null) return 'not a JSON object';
  const x = a as Partial<PolicyAcknowledgement>;
  if (x.format !== ACK_FORMAT) return `format is not ${ACK_FORMAT}`;
  if (x.from !== current.workspace.policyVersion || x.to !== to) return 'it approves a different change (from/to policy versions)';
  if (x.widenings !== digest) return 'it approves different widenings';
  const admin = typeof x.admin === 'string' ? current.workspace.principals.get(x.admin) : undefined;
  const adminGroups = current.workspace.identity?.adminGroups ?? ['admins'];
  if (!admin || !admin.groups.some((g) => adminGroups.includes(g))) return 'its signer is not an administrator of the version in force';
  const raw = admin.attributes[SIGNING_KEY_ATTRIBUTE];
  const key = typeof raw === 'string' ? publicKeyOf(raw) : null;
  if (!key) return `its signer has no ${SIGNING_KEY_ATTRIBUTE} in the version in force`;
  if (typeof x.signature !== 'string' || !verify(null, signedBytes(x as PolicyAcknowledgement), key, Buffer.from(x.signature, 'base64'))) return 'the signature does not verify';
  return null;
}

/** Acknowledgements in the new version's `acknowledgements/` directory. */
function readAcknowledgements(dir: string): unknown[] {
  const d = join(dir, ACK_DIR);
  if (!existsSync(d)) return [];
  const out: unknown[] = [];
  for (const f of readdirSync(d).filter((n) => n.endsWith('.json')).sort()) {
    try { out.push(JSON.parse(readFileSync(join(d, f), 'utf8'))); } catch { out.push(null); }
  }
  return out;
}

export interface GuardVerdict {
  readonly widenings: readonly Widening[];
  readonly digest: string;
  /** The administrator whose acknowledgement approved the widenings, when one did. */
  readonly acknowledgedBy: string | null;
}

/**
 * Refuses (POLICY_WIDENING_UNACKNOWLEDGED, with the report) a new version that newly shows
 * a regulated column unmasked, unless a valid acknowledgement approves exactly that change.
 */
export function guardPolicyReload(current: LoadedWorkspace, next: LoadedWorkspace, options: { at?: Date } = {}): GuardVerdict {
  const widenings = regulatedWidenings(current, next, options).filter((w) => w.kind === 'policy');
  const digest = wideningsDigest(widenings);
  if (widenings.length === 0) return { widenings, digest, acknowledgedBy: null };
  const problems: string[] = [];
  for (const a of readAcknowledgements(next.workspace.dir)) {
    const p = acknowledgementProblem(a, current, next.workspace.policyVersion, digest);
    if (p === null) return { widenings, digest, acknowledgedBy: (a as PolicyAcknowledgement).admin };
    problems.push(p);
  }
  const lines = widenings.map((w) => `${w.principal} would see ${w.dataset}.${w.column} (regulated) unmasked (e.g. purpose ${w.purpose})`);
  throw new GatehouseError('POLICY_WIDENING_UNACKNOWLEDGED', `the change would newly show regulated columns unmasked, and no administrator acknowledged it:\n  ${lines.join('\n  ')}`, {
    reasons: [...lines, ...problems.map((p) => `acknowledgement ignored: ${p}`)],
    hint: `if intended, a second administrator signs it: gatehouse policy whatif --draft DIR --acknowledge --as ADMIN --signing-key FILE (from ${current.workspace.policyVersion.slice(0, 19)}, to ${next.workspace.policyVersion.slice(0, 19)}, widenings ${digest.slice(0, 19)}); the version in force stays until then`,
  });
}
