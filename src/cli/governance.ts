/**
 * `gatehouse classify|agreement|grant|keys|retention|vendor|flows|report|finding|acknowledge|training|gate <sub> [--flags]`
 *
 * Each command is one governance operation (src/governance/service.ts); its flags are
 * derived from the op's argument schema (`--valid-until` → validUntil, arrays repeat or
 * take commas), and the first positional argument fills `id` / `name` / `org` / `dataset`.
 * It calls the server over HTTP (--url, default http://127.0.0.1:7480; --key or
 * GATEHOUSE_API_KEY) or runs in-process on a workspace (--workspace DIR [--audit-dir DIR]);
 * either way it goes through Gatehouse.governanceOp: authenticated, checked and audited.
 *
 *   gatehouse vendor register northwind-research --display-name "Northwind Research"
 *   gatehouse agreement terminate agr_… --reason "contract ended"
 *   gatehouse report --format html --out report.html
 *   gatehouse flows --svg --out flows.svg
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GatehouseError } from '../errors.ts';
import { GOVERNANCE_OPS, type GovernanceOp } from '../governance/service.ts';
import { errorFromBody, EXIT_CODES_HELP, UsageError } from './exit.ts';
import { bearerHeader } from '../identity/credentials.ts';
import { formatTable } from './table.ts';

type Out = NodeJS.WritableStream;

export const GOVERNANCE_COMMANDS = ['classify', 'agreement', 'grant', 'keys', 'retention', 'vendor', 'flows', 'report', 'finding', 'acknowledge', 'training', 'gate', 'lineage', 'workspace'] as const;

/** Sub-commands whose name differs from the op's (`<group> <sub> [<sub2>]` → op). */
const ALIASES: Readonly<Record<string, string>> = {
  'vendor incident resolve': 'vendor.resolve-incident',
  'vendor resolve': 'vendor.resolve-incident',
  'vendor audit': 'vendor.audit-report',
  'retention hold release': 'retention.release',
  'retention rule': 'retention.set-rule',
  'grant request list': 'grant.requests',
  'finding note': 'finding.update',
};

const DEFAULT_URL = 'http://127.0.0.1:7480';
const POSITIONAL_KEYS = ['id', 'name', 'org', 'dataset'] as const;

interface Resolved { readonly op: GovernanceOp; readonly rest: string[] }

function resolveOp(group: string, argv: string[]): Resolved | null {
  const [a, b, ...more] = argv;
  if (group === 'flows') {
    const rest = a === 'map' || a === 'svg' ? argv.slice(1) : argv;
    const svg = a === 'svg' || rest.includes('--svg');
    return { op: GOVERNANCE_OPS.find((o) => o.name === (svg ? 'flows.svg' : 'flows.map'))!, rest: rest.filter((x) => x !== '--svg') };
  }
  if (group === 'report') {
    const rest = a === 'build' ? argv.slice(1) : argv;
    return { op: GOVERNANCE_OPS.find((o) => o.name === 'report.build')!, rest };
  }
  if (a === undefined || a.startsWith('-')) return null;
  if (b !== undefined && !b.startsWith('-') && ALIASES[`${group} ${a} ${b}`]) return { op: GOVERNANCE_OPS.find((o) => o.name === ALIASES[`${group} ${a} ${b}`])!, rest: more };
  const name = ALIASES[`${group} ${a}`] ?? `${group}.${a}`;
  const op = GOVERNANCE_OPS.find((o) => o.name === name);
  return op ? { op, rest: argv.slice(1) } : null;
}

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

interface Prop { readonly type?: string | string[]; readonly enum?: string[]; readonly description?: string }

function propsOf(op: GovernanceOp): Record<string, Prop> {
  return ((op.args as { properties?: Record<string, Prop> } | undefined)?.properties) ?? {};
}

function typeOf(p: Prop): string {
  const t = Array.isArray(p.type) ? p.type.find((x) => x !== 'null') ?? 'string' : p.type ?? 'string';
  return t;
}

/** Usage line of one op, from its schema. */
export function usageOf(group: string, op: GovernanceOp): string {
  const props = propsOf(op);
  const required = new Set(((op.args as { required?: string[] } | undefined)?.required) ?? []);
  const sub = op.name.slice(op.name.indexOf('.') + 1);
  const head = group === 'flows' ? `gatehouse flows${op.name === 'flows.svg' ? ' --svg [--out FILE]' : ''}` : group === 'report' ? 'gatehouse report [--out FILE]' : `gatehouse ${group} ${sub}`;
  const flags = Object.entries(props).filter(([k]) => !(group === 'flows' && k === 'format')).map(([k, p]) => {
    const t = typeOf(p);
    const v = t === 'boolean' ? '' : ` ${p.enum ? p.enum.join('|') : t === 'array' ? `${k.toUpperCase()}…` : k === 'id' ? 'ID' : t === 'integer' ? 'N' : 'TEXT'}`;
    return required.has(k) ? `--${kebab(k)}${v}` : `[--${kebab(k)}${v}]`;
  });
  return `${head} ${flags.join(' ')}`.trimEnd() + `\n    ${op.summary}${op.who === 'admin' ? ' (administrators)' : ''}`;
}

function helpOf(group: string): string {
  const ops = GOVERNANCE_OPS.filter((o) => o.name.startsWith(`${group}.`) || (group === 'flows' && o.name.startsWith('flows.')) || (group === 'report' && o.name === 'report.build'));
  return `${ops.map((o) => usageOf(group, o)).join('\n')}\n\nCommon: --key KEY (or GATEHOUSE_API_KEY); --url URL (default ${DEFAULT_URL}) or --workspace DIR [--audit-dir DIR]; --json for machine-readable output.\nThe first positional argument fills --id (or --name, --org, --dataset). Docs: docs/contractor-governance.md\n`;
}

/** Turns argv into the op's arguments, as its schema types them. */
export function argsFor(op: GovernanceOp, argv: string[]): { args: Record<string, unknown>; common: Record<string, any> } {
  const props = propsOf(op);
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    url: { type: 'string' }, key: { type: 'string' }, workspace: { type: 'string' }, 'audit-dir': { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean' },
  };
  const flagOf = new Map<string, string>();
  for (const [k, p] of Object.entries(props)) {
    const t = typeOf(p);
    const flag = kebab(k);
    if (options[flag]) continue;
    options[flag] = t === 'boolean' ? { type: 'boolean' } : t === 'array' ? { type: 'string', multiple: true } : { type: 'string' };
    flagOf.set(flag, k);
    // Singular aliases for lists: --dataset patients --dataset claims → datasets.
    if (t === 'array' && k.endsWith('s') && !props[k.slice(0, -1)] && !options[kebab(k.slice(0, -1))]) {
      options[kebab(k.slice(0, -1))] = { type: 'string', multiple: true };
      flagOf.set(kebab(k.slice(0, -1)), k);
    }
  }
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  const args: Record<string, unknown> = {};
  for (const [flag, v] of Object.entries(values)) {
    const k = flagOf.get(flag);
    if (!k) continue;
    const t = typeOf(props[k]!);
    if (t === 'array') args[k] = [...((args[k] as string[] | undefined) ?? []), ...(v as string[]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '')];
    else if (t === 'integer' || t === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n) || (t === 'integer' && !Number.isInteger(n))) throw new UsageError( `--${flag} must be ${t === 'integer' ? 'a whole number' : 'a number'}, not "${String(v).slice(0, 40)}"`);
      args[k] = n;
    } else if (Array.isArray(props[k]!.type) && props[k]!.type.includes('null') && v === 'none') args[k] = null;
    else args[k] = v;
  }
  if (positionals.length > 0) {
    const key = POSITIONAL_KEYS.find((k) => props[k] !== undefined && args[k] === undefined);
    if (!key || positionals.length > 1) throw new UsageError( `unexpected argument "${positionals[key ? 1 : 0]!.slice(0, 60)}"`, { hint: `gatehouse ${op.name.replace('.', ' ')} --help` });
    args[key] = positionals[0];
  }
  return { args, common: values };
}

async function inProcess<T>(workspace: string, auditDir: string | undefined, fn: (gh: import('../pipeline/gatehouse.ts').Gatehouse) => Promise<T>): Promise<T> {
  const { startNode } = await import('../node/start.ts');
  const dir = resolve(workspace);
  // The node's log is also the audit reader, so flows and reports work in-process too.
  const node = await startNode({ workspaceDir: dir, ...(auditDir ? { auditDir } : {}), demo: existsSync(join(dir, 'demo-keys.json')) });
  try {
    return await fn(node.gatehouse);
  } finally {
    await node.close();
  }
}

/** GET/POST against the server; JSON bodies parsed, other media types returned as text. */
async function call(url: string, op: GovernanceOp, key: string | undefined, args: Record<string, unknown>, format: string | undefined): Promise<unknown> {
  const target = new URL(op.http.path, url);
  if (op.http.method === 'GET') {
    for (const [k, v] of Object.entries(args)) for (const x of Array.isArray(v) ? v : [v]) if (x !== null && x !== undefined) target.searchParams.append(k, String(x));
    if (format) target.searchParams.set('format', format);
  }
  let res: Response;
  try {
    res = await fetch(target, {
      method: op.http.method,
      headers: { ...(key ? { authorization: bearerHeader(key) } : {}), ...(op.http.method === 'POST' ? { 'content-type': 'application/json' } : {}) },
      body: op.http.method === 'POST' ? JSON.stringify(args) : null,
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new GatehouseError('UNAVAILABLE', `cannot reach ${url}: ${(err as Error).message}`, { hint: 'start the server ("npm start" or "gatehouse serve"), set --url (or GATEHOUSE_URL), or pass --workspace DIR to run in-process' });
  }
  const type = res.headers.get('content-type') ?? '';
  if (res.ok && !type.includes('json')) return { raw: await res.text(), mediaType: type };
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string; hint?: string | null; reasons?: string[] } };
  if (!res.ok) throw errorFromBody(body.error, res.status);
  return body;
}

// ───────────────────────────── output ─────────────────────────────

const scalar = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v);
const cell = (v: unknown): string => (v === null || v === undefined ? '' : Array.isArray(v) ? v.map((x) => (scalar(x) ? String(x) : JSON.stringify(x))).join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v));

/** A readable rendering of any op result: scalars as lines, lists of records as tables. */
export function renderHuman(result: unknown): string {
  if (!result || typeof result !== 'object') return `${String(result)}\n`;
  const lines: string[] = [];
  for (const [k, v] of Object.entries(result as Record<string, unknown>)) {
    if (Array.isArray(v) && v.length > 0 && v.every((x) => x && typeof x === 'object' && !Array.isArray(x))) {
      const cols = [...new Set(v.flatMap((x) => Object.keys(x as object)))].filter((c) => v.some((x) => { const y = (x as Record<string, unknown>)[c]; return y !== null && y !== undefined && (scalar(y) || Array.isArray(y) || typeof y === 'object'); })).slice(0, 9);
      lines.push(`${k} (${v.length}):`, formatTable(cols, v.map((x) => cols.map((c) => cell((x as Record<string, unknown>)[c]).slice(0, 60)))).replace(/^/gm, '  '));
    } else if (Array.isArray(v)) {
      lines.push(`${k}: ${v.length === 0 ? '(none)' : cell(v)}`);
    } else if (v && typeof v === 'object') {
      lines.push(`${k}:`);
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) lines.push(`  ${k2}: ${cell(v2)}`);
    } else lines.push(`${k}: ${cell(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

function headline(op: GovernanceOp, r: Record<string, any>): string | null {
  switch (op.name) {
    case 'agreement.terminate':
      return `agreement ${r.agreement?.id} terminated: ${r.revokedGrants?.length ?? 0} grant(s) revoked, ${r.destroyed?.length ?? 0} artefact(s) crypto-shredded${r.certificates?.length ? ` (certificate ${r.certificates.map((c: { certificateId: string }) => c.certificateId).join(', ')} in the audit log)` : ''}${r.held?.length ? `; ${r.held.length} kept under legal hold` : ''}`;
    case 'retention.run':
      return r.dryRun ? `dry run: ${r.destroy?.length ?? 0} artefact(s) would be destroyed, ${r.held?.length ?? 0} held` : `${r.destroyed?.length ?? 0} artefact(s) crypto-shredded, ${r.held?.length ?? 0} kept under legal hold, ${r.keep} not yet due${r.certificates?.length ? `; certificate ${r.certificates.map((c: { certificateId: string }) => c.certificateId).join(', ')}` : ''}`;
    case 'keys.rotate':
      return `key-encryption key rotated ${r.previousVersion} → ${r.activeVersion}; ${r.rewrap?.rewrapped ?? 0} data key(s) re-wrapped; retired: ${(r.rewrap?.retired ?? []).join(', ') || 'none'}`;
    case 'vendor.show':
      return `${r.org?.name}: risk tier ${r.risk?.tier}${r.risk?.factors?.length ? ` — ${r.risk.factors.join('; ')}` : ' (no risk factors)'}`;
    case 'acknowledge.show':
      return `${r.document?.name} version ${r.document?.version} (sha256 ${r.document?.sha256}); you: ${r.yours?.state}\n\n${r.document?.text}\nTo sign: gatehouse acknowledge sign ${r.document?.name} --sha256 ${r.document?.sha256}`;
    case 'grant.request':
      return `request ${r.request?.id} is pending: a dataset owner approves it with: gatehouse grant approve ${r.request?.id}`;
    case 'grant.approve':
      return `grant ${r.grant?.id}: ${r.grant?.dataset} for ${r.grant?.purpose} until ${r.grant?.until} (agreement ${r.grant?.agreementId})`;
    default:
      return null;
  }
}

// ───────────────────────────── command ─────────────────────────────

export async function governanceCommand(group: string, argv: string[], out: Out): Promise<number> {
  if (argv.length === 0 && group !== 'flows' && group !== 'report') throw new UsageError(`give a sub-command: gatehouse ${group} <sub-command>`, { hint: `gatehouse ${group} --help lists them` });
  if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') { out.write(`${helpOf(group)}\n${EXIT_CODES_HELP}\n`); return 0; }
  const r = resolveOp(group, argv);
  if (!r) throw new UsageError(`unknown sub-command "gatehouse ${group} ${argv[0] ?? ''}"`, { hint: `gatehouse ${group} --help lists them` });
  const { op } = r;
  // --help before parsing, so a sub-command's help never depends on its other arguments.
  if (r.rest.includes('--help') || r.rest.includes('-h')) { out.write(`${usageOf(group, op)}\n\n${EXIT_CODES_HELP}\n`); return 0; }
  const { args, common } = argsFor(op, r.rest);
  const key: string | undefined = common.key ?? process.env.GATEHOUSE_API_KEY;
  // The envelope: report formats and the SVG are fetched raw over HTTP.
  const format = op.name === 'report.build' ? (args.format as string | undefined) : op.name === 'flows.svg' ? 'svg' : undefined;
  let result: unknown;
  if (common.workspace) {
    result = await inProcess(common.workspace, common['audit-dir'], (gh) => gh.governanceOp({ credential: key ?? null, source: '127.0.0.1', channel: 'cli' }, op.name, args));
  } else {
    const url = common.url ?? process.env.GATEHOUSE_URL ?? DEFAULT_URL;
    result = await call(url, op, key, args, format);
    const raw = result as { raw?: string; mediaType?: string };
    if (typeof raw.raw === 'string') result = op.name === 'flows.svg' ? { svg: raw.raw } : { mediaType: raw.mediaType, body: raw.raw };
  }
  // Documents: write them (--out) or print them as they are.
  if (op.name === 'report.build' || op.name === 'flows.svg') {
    const doc = op.name === 'flows.svg' ? (result as { svg: string }).svg : (result as { body: unknown }).body;
    const textOut = typeof doc === 'string' ? doc : `${JSON.stringify(doc, null, 2)}\n`;
    if (common.out) {
      writeFileSync(common.out, textOut);
      out.write(`${op.name === 'flows.svg' ? 'data-flow map' : `compliance report (${(args.format as string | undefined) ?? 'json'})`} written to ${common.out}\n`);
    } else out.write(textOut.endsWith('\n') ? textOut : `${textOut}\n`);
    return 0;
  }
  if (common.out) writeFileSync(common.out, `${JSON.stringify(result, null, 2)}\n`);
  if (common.json) { out.write(`${JSON.stringify(result, null, 2)}\n`); return 0; }
  const h = headline(op, result as Record<string, any>);
  if (h) out.write(`${h}\n`);
  if (!h || !['agreement.terminate', 'acknowledge.show', 'grant.request'].includes(op.name)) out.write(renderHuman(result));
  return 0;
}
