/**
 * The `gatehouse` command line. Every data command goes through the one request path:
 * against a running server (--url, the default) or in-process on a workspace
 * (--workspace), never straight to an engine.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { GatehouseError } from '../errors.ts';
import { formatProblem, WorkspaceInvalid } from '../model/problems.ts';
import { bearerHeader } from '../identity/credentials.ts';
import { formatTable } from './table.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
export const DEFAULT_PORT = 7480;
/** The demo's PostgreSQL wire-protocol port (psql -h 127.0.0.1 -p 7432). */
export const DEFAULT_PG_PORT = 7432;
export const DEMO_DIR = '.gatehouse/demo';

const HELP = `gatehouse ${VERSION} — governed data sharing: partners query, never copy.

Usage: gatehouse <command> [options]

  serve      Run the HTTP API.
               --demo                 create (first run) and serve the demo workspace in ${DEMO_DIR}
               --workspace DIR        serve a workspace directory (gatehouse.yaml + policies + schema)
               --host 127.0.0.1       plain HTTP is only allowed on a loopback address
               --tls-cert F --tls-key F   serve HTTPS (TLS 1.2+); --tls-client-ca F requires client
                                      certificates signed by that CA (mTLS); --insecure-http forces
                                      plain HTTP off loopback (behind a TLS-terminating proxy only)
               --port ${DEFAULT_PORT}
               --audit-dir DIR        transparency log directory (default DIR/audit)
               --pg-port N            also serve the PostgreSQL wire protocol (default 7432 with --demo)
               --state-url URL        shared state in PostgreSQL (or GATEHOUSE_STATE_URL)
               --shutdown-timeout 10  SIGTERM/SIGINT: seconds to let requests in flight finish;
                                      a second signal exits at once
             The workspace is re-read when its files change (or on SIGHUP); a valid change
             takes effect on the next request, an invalid one is reported and ignored.
  validate DIR
             Check a workspace: YAML, datasets and columns, masks, obligations, Cedar policies
             against the Cedar schema, row filters. Prints every problem with file:line; exit 1 if any.
  query "SQL" --purpose P
             Run a governed query. --key KEY (or GATEHOUSE_API_KEY) authenticates;
             --url URL (default http://127.0.0.1:${DEFAULT_PORT}, or GATEHOUSE_URL) or
             --workspace DIR to run in-process; --json prints the full response;
             --estimate shows what it would cost (privacy budget) and how accurate it
             would be, without running it.
  datasets   List the datasets you may query (same --key/--url/--workspace; --purpose P).
  policy show DIR
             List the policies, their obligations and the policy version.
  policy test DIR --principal ID --dataset NAME --purpose P [--source IP] [--time ISO]
             Show the decision, the determining policies, reasons and obligations.
  login --principal ID --password PW [--code CODE] [--token-only]
             Sign in a built-in user (password, plus a TOTP code once enrolled); prints the
             session token to use as --key (or GATEHOUSE_API_KEY). logout --key TOKEN revokes it.
  ingest --workspace DIR --dataset NAME FILE
             Store a CSV/Parquet file encrypted under its own data key (source: {encrypted: PATH}).
  results list | get ID
             Your saved results (query --save), encrypted at rest under their own keys.
  pg-password [--key CREDENTIAL]
             A password for psql/JDBC/BI tools on the wire-protocol port (serve --pg-port);
             shown once, valid 8 hours, carries your session's MFA; logout revokes it.
  mfa enrol|confirm --principal ID --password PW [--code CODE]
             Enrol an authenticator (TOTP): enrol prints the secret and otpauth URI; confirm
             activates it with a first code and prints single-use recovery codes.
  mfa code --secret SECRET [--next]
             The current (or next) TOTP code for a secret, like oathtool (for demos and tests).
  access review --workspace DIR [--days 90] [--json]
             Each principal's effective access (datasets, purposes, columns seen unmasked,
             row filters, aggregation-only / DP / join-only) and grants unused for N days,
             from the policies and the audit log (run it where the log lives; not while a
             server holds the log).
  elevation request --role R --purpose P --minutes N --justification TEXT
  elevation approve|deny ID [--reason TEXT]   elevation break-glass --role R --justification TEXT
  elevation list
             Privileged access: request a role for a time window; an approver of the role
             (never the requester) approves; break-glass is immediate, needs a written
             justification and raises an alert. Same --key/--url/--workspace as query.
  user create --workspace DIR --principal ID --password PW
  admin user-create|user-disable|user-enable|mfa-reset|mfa-reset-approve --principal ID [--password PW]
  admin key-create --principal ID --datasets a,b [--expires ISO] | key-revoke KEY_ID | key-list --principal ID
             Identity administration over the API (--key of an administrator, --url); audited.
             Create a built-in user for a workspace principal (an administrator's act; audited).
  vendor|agreement|grant|acknowledge|training|gate|keys|retention|classify|finding <sub> [--flags]
  flows [--svg] [--from D --to D] [--out FILE]    report [--format html|csv|json] [--out FILE]
             Contractor governance: partners and vendor risk, agreements (terminate shreds what
             was shared), access requests and grants, acknowledgements, training, key rotation,
             retention and legal holds, classification proposals, the data-flow map, compliance
             reports and findings. Same --key/--url/--workspace as query; "gatehouse <cmd> --help"
             lists each sub-command; see docs/contractor-governance.md.
  audit <tail|keys|export|proof|verify|verify-receipt|receipt>
             Read and verify the transparency log; see docs/audit.md.
  witness    Run a witness that cosigns consistent checkpoints; see docs/audit.md.
  demo init [DIR]
             Create the demo workspace (default ${DEMO_DIR}) and print its API keys.

Run "gatehouse <command> --help" for a command's options. Docs: README.md, docs/.`;

type Out = NodeJS.WritableStream;

/**
 * Prints an error where errors go: stderr (or the stream a caller passed to `main`, so
 * in-process callers capture it), as `{"error": {code, message, hint, reasons}}` under
 * `--json`, else as `error CODE: message` with reasons and hint. Exit status: 3 for a
 * refusal of who you are or what you may do, 1 for other errors, 2 for anything unexpected.
 */
function fail(out: Out, err: unknown, json = false): number {
  const to = out === process.stdout ? process.stderr : out;
  if (err instanceof WorkspaceInvalid && !json) {
    to.write(`workspace invalid:\n${err.problems.map(formatProblem).join('\n')}\n`);
    return 1;
  }
  const g = err instanceof GatehouseError ? err : null;
  if (json) {
    const body = g ? g.toJSON() : { code: 'INTERNAL', message: (err as Error)?.message ?? String(err), hint: null, reasons: [] };
    to.write(`${JSON.stringify({ error: { ...body, ...(g && g.detail !== null ? { detail: g.detail } : {}) } })}\n`);
  } else if (g) {
    to.write(`error ${g.code}: ${g.message}\n`);
    for (const r of g.reasons) to.write(`  reason: ${r}\n`);
    if (g.hint) to.write(`  hint: ${g.hint}\n`);
  } else {
    to.write(`error: ${(err as Error).message ?? String(err)}\n`);
  }
  if (!g) return 2;
  return g.code === 'POLICY_DENIED' || g.code.startsWith('AUTH') ? 3 : 1;
}

function parse(argv: string[], options: ParseArgsConfig['options']): { values: Record<string, any>; positionals: string[] } {
  return parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
}

const CLIENT_OPTIONS = {
  url: { type: 'string' }, key: { type: 'string' }, workspace: { type: 'string' }, purpose: { type: 'string' },
  json: { type: 'boolean' }, 'audit-dir': { type: 'string' }, estimate: { type: 'boolean' }, save: { type: 'boolean' },
} as const;

/** A node without listeners for one command (`--workspace`): the same wiring as `serve`. */
async function inProcess<T>(workspace: string, auditDir: string | undefined, fn: (gh: import('../pipeline/gatehouse.ts').Gatehouse) => Promise<T>): Promise<T> {
  const { startNode } = await import('../node/start.ts');
  const dir = resolve(workspace);
  const node = await startNode({ workspaceDir: dir, ...(auditDir ? { auditDir } : {}), demo: isDemo(dir) });
  try {
    return await fn(node.gatehouse);
  } finally {
    await node.close();
  }
}

/** A demo workspace (made by `gatehouse demo init`) may use the documented demo key passphrase. */
function isDemo(dir: string): boolean {
  return existsSync(join(resolve(dir), 'demo-keys.json'));
}

async function http<T>(url: string, path: string, key: string | undefined, init: { method?: string; body?: unknown } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, url), {
      method: init.method ?? 'GET',
      headers: { ...(key ? { authorization: bearerHeader(key) } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
      body: init.body ? JSON.stringify(init.body) : null,
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw new Error(`cannot reach ${url}: ${(err as Error).message}. Start the server with "npm start" (or "gatehouse serve"), or pass --workspace DIR to run in-process`);
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string; hint?: string | null; reasons?: string[] } };
  if (!res.ok) {
    const e = body.error;
    if (e && typeof e.code === 'string') throw new GatehouseError(e.code as never, e.message, { hint: e.hint ?? undefined, reasons: e.reasons ?? [] });
    throw new Error(`the server answered ${res.status}`);
  }
  return body as T;
}

async function cmdQuery(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(argv, CLIENT_OPTIONS);
  if (values.help) { out.write('gatehouse query "SQL" --purpose P [--key KEY] [--url URL | --workspace DIR] [--json] [--estimate] [--save]\n  --save keeps the result encrypted (gatehouse results get ID); ending the agreement destroys it\n'); return 0; }
  const sql = positionals.join(' ');
  if (!sql) throw new GatehouseError('REQUEST_INVALID', 'give the SQL to run, e.g. gatehouse query --purpose research "SELECT 1"');
  if (!values.purpose) throw new GatehouseError('REQUEST_INVALID', 'give a purpose with --purpose (why you query, e.g. research)');
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  if (values.estimate) {
    type Est = import('../pipeline/gatehouse.ts').QueryEstimate;
    const est: Est = values.workspace
      ? await inProcess(values.workspace, values['audit-dir'], (gh) => gh.estimate({ credential: key ?? null, source: '127.0.0.1', channel: 'cli', sql, purpose: values.purpose }))
      : await http<Est>(values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`, '/v1/query/estimate', key, { method: 'POST', body: { sql, purpose: values.purpose } });
    if (values.json) { out.write(`${JSON.stringify(est, null, 2)}\n`); return 0; }
    out.write(`allowed · policy ${est.policyVersion.slice(0, 19)} · audit #${est.auditId}\nobligations: ${est.obligationsApplied.join(', ')}\n`);
    const p = est.privacy;
    if (!p) { out.write('no differential privacy applies: the query spends no privacy budget\n'); return 0; }
    out.write(`differential privacy (${p.mechanism}, ${p.guarantee}): this query costs ε=${p.epsilon}, δ=${p.delta} (ρ=${p.rho.toPrecision(3)})\n`);
    for (const n of p.noise) out.write(n.ci95 === null ? `  ${n.output}: a quantile from a noisy histogram (noise scale ${n.scale.toPrecision(4)} per bucket); each value comes with its own 95% interval\n` : `  ${n.output}: noise scale ${n.scale.toPrecision(4)}, 95% of answers within ±${n.ci95.toPrecision(4)}\n`);
    if (p.budget) out.write(`budget (${p.budget.subject}): ε=${p.budget.spentEpsilon.toFixed(3)} of ${p.budget.epsilon} spent at δ=${p.budget.delta}${p.budget.resetsAt ? `, resets ${p.budget.resetsAt}` : ''}; ${p.affordable ? 'this query fits' : 'this query does NOT fit the remaining budget'}\n`);
    return 0;
  }
  const res = values.workspace
    ? await inProcess(values.workspace, values['audit-dir'], (gh) => gh.query({ credential: key ?? null, source: '127.0.0.1', channel: 'cli', sql, purpose: values.purpose, ...(values.save ? { save: true } : {}) }))
    : await http<import('../pipeline/gatehouse.ts').QueryResponse>(values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`, '/v1/query', key, { method: 'POST', body: { sql, purpose: values.purpose, ...(values.save ? { save: true } : {}) } });
  if (values.json) { out.write(`${JSON.stringify(res, null, 2)}\n`); return 0; }
  out.write(`${formatTable(res.columns.map((c) => c.name), res.rows)}\n`);
  const g = res.governance;
  out.write(`\n${res.rows.length} row${res.rows.length === 1 ? '' : 's'}${g.truncated ? ` (truncated at the row cap of ${g.rowCap})` : ''} · audit #${g.auditId} · policy ${g.policyVersion.slice(0, 19)}\n`);
  if (g.obligationsApplied.length) out.write(`obligations: ${g.obligationsApplied.join(', ')}\n`);
  if (g.resultId) out.write(`saved encrypted as ${g.resultId} (gatehouse results get ${g.resultId})\n`);
  if (g.privacy) {
    const p = g.privacy;
    out.write(`differential privacy: ε=${p.epsilon}, δ=${p.delta} spent; 95% intervals: ${p.noise.map((n) => (n.ci95 === null ? `${n.output} per value (--json)` : `${n.output} ±${n.ci95.toPrecision(3)}`)).join(', ')}\n`);
    if (p.budget) out.write(`budget (${p.budget.subject}): ε=${p.budget.spentEpsilon.toFixed(3)} of ${p.budget.epsilon} spent${p.budget.resetsAt ? `, resets ${p.budget.resetsAt}` : ''}\n`);
  }
  return 0;
}

async function cmdDatasets(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, CLIENT_OPTIONS);
  if (values.help) { out.write('gatehouse datasets [--purpose P] [--key KEY] [--url URL | --workspace DIR] [--json]\n'); return 0; }
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const purpose = values.purpose ?? null;
  type Res = Awaited<ReturnType<import('../pipeline/gatehouse.ts').Gatehouse['datasets']>>;
  const res: Res = values.workspace
    ? await inProcess(values.workspace, values['audit-dir'], (gh) => gh.datasets({ credential: key ?? null, source: '127.0.0.1', channel: 'cli', purpose }))
    : await http<Res>(values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`, `/v1/datasets${purpose ? `?purpose=${encodeURIComponent(purpose)}` : ''}`, key);
  if (values.json) { out.write(`${JSON.stringify(res, null, 2)}\n`); return 0; }
  if (res.datasets.length === 0) out.write('no datasets are available to you (for this purpose)\n');
  for (const d of res.datasets) {
    const rules = [d.aggregationOnly ? `aggregates only (groups ≥ ${d.aggregationOnly.minGroupSize} ${d.privacyUnit})` : null, d.rowFilter ? 'row filter' : null, `row cap ${d.rowCap}`].filter(Boolean).join(', ');
    out.write(`\n${d.name} — ${d.description ?? ''}\n  purposes: ${d.purposes.join(', ')} · ${rules}\n`);
    out.write(`${formatTable(['column', 'type', 'classification', 'tags', 'shown as'], d.columns.map((c) => [c.name, c.type, c.classification, c.tags.join(' '), c.joinOnly ? 'join/filter only' : c.masked ? `masked: ${c.masked}` : 'value']))}\n`.replace(/^/gm, '  '));
  }
  return 0;
}

async function cmdValidate(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(argv, {});
  if (values.help || positionals.length !== 1) { out.write('gatehouse validate DIR\n'); return values.help ? 0 : 2; }
  const { loadWorkspace } = await import('../workspace/validate.ts');
  const l = await loadWorkspace(positionals[0]!);
  const ws = l.workspace;
  out.write(`OK: ${ws.name} — ${ws.datasets.size} datasets, ${l.policy.policies.size} policies, ${ws.obligations.size} obligation sets, ${ws.principals.size} principals\npolicy version ${ws.policyVersion}\n`);
  return 0;
}

async function cmdPolicy(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { principal: { type: 'string' }, dataset: { type: 'string' }, purpose: { type: 'string' }, source: { type: 'string' }, time: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help || !sub || positionals.length !== 1 || (sub !== 'show' && sub !== 'test')) {
    out.write('gatehouse policy show DIR\ngatehouse policy test DIR --principal ID --dataset NAME --purpose P [--source IP] [--time ISO]\n');
    return values.help ? 0 : 2;
  }
  const { loadWorkspace } = await import('../workspace/validate.ts');
  const l = await loadWorkspace(positionals[0]!);
  if (sub === 'show') {
    out.write(`policy version ${l.workspace.policyVersion}\n\n`);
    out.write(`${formatTable(['policy', 'effect', 'file', 'dataset', 'obligations'], [...l.policy.policies.values()].map((p) => [p.id, p.effect, p.file, p.dataset ?? '(any)', p.obligationNames.join(', ')]))}\n\n`);
    for (const o of l.workspace.obligations.values()) {
      const parts = [o.rowFilter ? `rowFilter: ${o.rowFilter}` : null, o.aggregationOnly ? `aggregationOnly: min ${o.aggregationOnly.minGroupSize}` : null, o.rowCap ? `rowCap: ${o.rowCap}` : null,
        o.unmask.length ? `unmask: ${o.unmask.join(', ')}` : null, Object.keys(o.masks).length ? `masks: ${Object.entries(o.masks).map(([c, m]) => `${c}=${m.kind}`).join(', ')}` : null, o.joinOnly.length ? `joinOnly: ${o.joinOnly.join(', ')}` : null].filter(Boolean);
      out.write(`obligation ${o.name}: ${parts.join('; ')}\n`);
    }
    return 0;
  }
  const principal = l.workspace.principals.get(values.principal ?? '');
  const dataset = l.workspace.datasets.get(values.dataset ?? '');
  if (!principal) throw new GatehouseError('REQUEST_INVALID', `no principal "${values.principal ?? ''}" in the workspace (--principal)`);
  if (!dataset) throw new GatehouseError('REQUEST_INVALID', `no dataset "${values.dataset ?? ''}" in the workspace (--dataset)`);
  if (!values.purpose) throw new GatehouseError('REQUEST_INVALID', 'give --purpose');
  const d = l.policy.decide(principal, dataset, { purpose: values.purpose, sourceIp: values.source ?? '127.0.0.1', channel: 'cli', time: values.time ? new Date(values.time) : new Date() });
  if (values.json) { out.write(`${JSON.stringify({ ...d, obligations: d.obligations.map((o) => o.name) }, null, 2)}\n`); return d.allowed ? 0 : 3; }
  out.write(`${d.allowed ? 'ALLOW' : 'DENY'}: ${principal.id} → query ${dataset.name} for "${values.purpose}" (policy ${l.workspace.policyVersion.slice(0, 19)})\n`);
  if (d.policies.length) out.write(`  determining policies: ${d.policies.join(', ')}\n`);
  for (const r of d.reasons) out.write(`  reason: ${r}\n`);
  if (d.obligations.length) out.write(`  obligations: ${d.obligations.map((o) => o.name).join(', ')}\n`);
  return d.allowed ? 0 : 3;
}

async function cmdDemo(argv: string[], out: Out): Promise<number> {
  const [sub, dir] = argv;
  if (sub !== 'init') { out.write('gatehouse demo init [DIR]\n'); return 2; }
  const { createDemoWorkspace } = await import('../demo/workspace.ts');
  const demo = await createDemoWorkspace(dir ?? DEMO_DIR, { identity: true });
  out.write(`demo workspace in ${demo.dir}\n${Object.entries(demo.keys).map(([p, k]) => `  ${p.padEnd(7)} ${k}${demo.passwords[p] ? `   password ${demo.passwords[p]} (MFA required; the user is created by serve or "gatehouse user create")` : ''}`).join('\n')}\n`);
  return 0;
}

const AUTH_OPTIONS = {
  url: { type: 'string' }, workspace: { type: 'string' }, principal: { type: 'string' }, password: { type: 'string' },
  code: { type: 'string' }, key: { type: 'string' }, secret: { type: 'string' }, next: { type: 'boolean' }, 'token-only': { type: 'boolean' }, json: { type: 'boolean' },
} as const;

function passwordOf(values: Record<string, any>): string {
  const pw = values.password ?? process.env.GATEHOUSE_PASSWORD;
  if (!pw) throw new GatehouseError('REQUEST_INVALID', 'give --password (or GATEHOUSE_PASSWORD)');
  return pw;
}

async function authCall<T>(values: Record<string, any>, path: string, body: unknown, inProc: (gh: import('../pipeline/gatehouse.ts').Gatehouse) => Promise<T>, key?: string): Promise<T> {
  if (values.workspace) return inProcess(values.workspace, undefined, inProc);
  return http<T>(values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`, path, key, { method: 'POST', body });
}

const CLI_META = { credential: null, source: '127.0.0.1', channel: 'cli' } as const;

async function cmdLogin(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, AUTH_OPTIONS);
  if (values.help) { out.write('gatehouse login --principal ID --password PW [--code CODE] [--token-only] [--url URL | --workspace DIR]\n'); return 0; }
  if (!values.principal) throw new GatehouseError('REQUEST_INVALID', 'give --principal');
  const body = { principal: values.principal, password: passwordOf(values), ...(values.code ? { code: values.code } : {}) };
  const t = await authCall<{ accessToken: string; refreshToken: string; expiresAt: number; mfa: boolean }>(values, '/v1/auth/login', body, (gh) => gh.login(CLI_META, body));
  if (values['token-only']) { out.write(`${t.accessToken}\n`); return 0; }
  if (values.json) { out.write(`${JSON.stringify(t, null, 2)}\n`); return 0; }
  out.write(`signed in as ${values.principal}${t.mfa ? ' with MFA' : ' (password only)'}; the session token expires at ${new Date(t.expiresAt * 1000).toISOString()}\n`);
  out.write(`export GATEHOUSE_API_KEY=${t.accessToken}\n`);
  return 0;
}

async function cmdResults(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, CLIENT_OPTIONS);
  if (values.help || (sub !== 'list' && sub !== 'get')) { out.write('gatehouse results list | get ID [--key KEY] [--url URL | --workspace DIR] [--json]\n  your saved results (query --save), readable while the agreement they were shared under is in force\n'); return sub ? 2 : 0; }
  const key = values.key ?? process.env.GATEHOUSE_API_KEY ?? null;
  const base = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  const meta = { credential: key, source: '127.0.0.1', channel: 'cli' };
  if (sub === 'list') {
    type L = Awaited<ReturnType<import('../pipeline/gatehouse.ts').Gatehouse['listResults']>>;
    const r: L = values.workspace ? await inProcess(values.workspace, values['audit-dir'], (gh) => gh.listResults(meta)) : await http<L>(base, '/v1/results', key ?? undefined, { method: 'GET' });
    if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
    out.write(`${formatTable(['id', 'created', 'datasets', 'agreement', 'retain until', 'destroyed'], r.results.map((x) => [x.id, x.createdAt, x.datasets.join(','), x.agreement ?? '', x.retainUntil ?? '', x.destroyedAt ?? '']))}\n`);
    return 0;
  }
  const id = positionals[0];
  if (!id) throw new GatehouseError('REQUEST_INVALID', 'give the result id: gatehouse results get ID');
  type G = Awaited<ReturnType<import('../pipeline/gatehouse.ts').Gatehouse['getResult']>>;
  const r: G = values.workspace ? await inProcess(values.workspace, values['audit-dir'], (gh) => gh.getResult(meta, id)) : await http<G>(base, `/v1/results/${encodeURIComponent(id)}`, key ?? undefined, { method: 'GET' });
  if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
  const c = r.content as { columns: { name: string }[]; rows: unknown[][] };
  out.write(`${formatTable(c.columns.map((x) => x.name), c.rows as never)}\n\nsaved result ${r.id} from ${r.createdAt}\n`);
  return 0;
}

async function cmdIngest(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(argv, { workspace: { type: 'string' }, dataset: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean' } });
  if (values.help || !values.workspace || !values.dataset || positionals.length !== 1) {
    out.write('gatehouse ingest --workspace DIR --dataset NAME FILE.csv|FILE.parquet [--out PATH]\n  stores the data encrypted under a new data key of the workspace\'s state directory;\n  point the dataset at it with source: { encrypted: PATH } (crypto-shred with gatehouse keys shred-dataset)\n');
    return values.help ? 0 : 2;
  }
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(values.dataset)) throw new GatehouseError('REQUEST_INVALID', 'the dataset name must be lower-case letters, digits and _');
  const dir = resolve(values.workspace);
  const target = resolve(values.out ?? join(dir, 'datasets', `${values.dataset}.ghd`));
  // Through the one path: the node's state and audit log, audited as dataset.ingest.
  return inProcess(dir, undefined, async (gh) => {
    const r = await gh.ingestDataset(CLI_META, { dataset: values.dataset, source: positionals[0]!, target });
    out.write(`ingested ${r.rows} rows into ${target} (${r.format}, ${r.bytes} bytes, data key ${r.keyId}; audit #${r.auditId})\n`);
    out.write(`in gatehouse.yaml:\n  ${values.dataset}:\n    source: { encrypted: ${relative(dir, target)} }\n`);
    return 0;
  });
}

async function cmdPgPassword(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, AUTH_OPTIONS);
  if (values.help) { out.write('gatehouse pg-password [--key CREDENTIAL] [--url URL | --workspace DIR] [--json]\n  a password for psql/JDBC on the wire-protocol port (serve --pg-port); shown once\n'); return 0; }
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  if (!key) throw new GatehouseError('REQUEST_INVALID', 'give your session token or API key with --key (or GATEHOUSE_API_KEY)', { hint: 'sign in first: gatehouse login' });
  const r = await authCall<{ username: string; password: string; expiresAt: string }>(values, '/v1/auth/connection-password', {}, (gh) => gh.issueConnectionPassword({ ...CLI_META, credential: key }), key);
  if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
  out.write(`user ${r.username}, valid until ${r.expiresAt} (issuing another revokes this one)\n`);
  out.write(`export PGUSER=${r.username} PGPASSWORD=${r.password}\n`);
  return 0;
}

async function cmdLogout(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, AUTH_OPTIONS);
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  if (!key) throw new GatehouseError('REQUEST_INVALID', 'give the session token with --key (or GATEHOUSE_API_KEY)');
  await authCall(values, '/v1/auth/logout', {}, (gh) => gh.logout({ ...CLI_META, credential: key }), key);
  out.write('session revoked\n');
  return 0;
}

async function cmdMfa(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, AUTH_OPTIONS);
  if (sub === 'code') {
    if (!values.secret) throw new GatehouseError('REQUEST_INVALID', 'give --secret (the Base32 secret from "mfa enrol")');
    const { generateTotp, totpStep } = await import('../identity/totp.ts');
    out.write(`${await generateTotp(values.secret, { now: (totpStep() + (values.next ? 1 : 0)) * 30_000 })}\n`);
    return 0;
  }
  if (!values.principal) throw new GatehouseError('REQUEST_INVALID', 'give --principal');
  if (sub === 'enrol') {
    const body = { principal: values.principal, password: passwordOf(values) };
    const e = await authCall<{ otpauthUri: string; secret: string }>(values, '/v1/auth/totp/enrol', body, (gh) => gh.enrolTotp(CLI_META, body));
    if (values.json) { out.write(`${JSON.stringify(e, null, 2)}\n`); return 0; }
    out.write(`Add this to your authenticator app (or scan it as a QR code):\n  ${e.otpauthUri}\nsecret: ${e.secret}\nThen: gatehouse mfa confirm --principal ${values.principal} --password … --code <current code>\n`);
    return 0;
  }
  if (sub === 'confirm') {
    if (!values.code) throw new GatehouseError('REQUEST_INVALID', 'give --code (the current code from your authenticator)');
    const body = { principal: values.principal, password: passwordOf(values), code: values.code };
    const r = await authCall<{ recoveryCodes: string[] }>(values, '/v1/auth/totp/confirm', body, (gh) => gh.confirmTotp(CLI_META, body));
    out.write(`MFA is on. Recovery codes (each works once; store them safely — they are not shown again):\n${r.recoveryCodes.map((c) => `  ${c}`).join('\n')}\n`);
    return 0;
  }
  out.write('gatehouse mfa enrol|confirm|code — see gatehouse --help\n');
  return 2;
}

async function cmdElevation(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, {
    url: { type: 'string' }, workspace: { type: 'string' }, key: { type: 'string' }, role: { type: 'string' }, purpose: { type: 'string' },
    minutes: { type: 'string' }, justification: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' },
  });
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const meta = { ...CLI_META, credential: key ?? null };
  const url = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  const call = <T>(method: 'GET' | 'POST', path: string, body: unknown, inProc: (gh: import('../pipeline/gatehouse.ts').Gatehouse) => Promise<T>): Promise<T> =>
    values.workspace ? inProcess(values.workspace, undefined, inProc) : http<T>(url, path, key, method === 'POST' ? { method, body } : {});
  let res: unknown;
  switch (sub) {
    case 'request': {
      const body = { role: values.role ?? '', purpose: values.purpose ?? '', minutes: Number(values.minutes ?? 60), justification: values.justification ?? '' };
      res = await call('POST', '/v1/elevation/requests', body, (gh) => gh.requestElevation(meta, body));
      break;
    }
    case 'approve': {
      const id = positionals[0] ?? '';
      res = await call('POST', `/v1/elevation/requests/${encodeURIComponent(id)}/approve`, {}, (gh) => gh.approveElevation(meta, id));
      break;
    }
    case 'deny': {
      const id = positionals[0] ?? '';
      const body = { reason: values.reason ?? '' };
      res = await call('POST', `/v1/elevation/requests/${encodeURIComponent(id)}/deny`, body, (gh) => gh.denyElevation(meta, id, body.reason));
      break;
    }
    case 'break-glass': {
      const body = { role: values.role ?? '', justification: values.justification ?? '' };
      res = await call('POST', '/v1/elevation/break-glass', body, (gh) => gh.breakGlass(meta, body));
      break;
    }
    case 'list':
      res = await call('GET', '/v1/elevation', null, (gh) => gh.listElevations(meta));
      break;
    default:
      out.write('gatehouse elevation request|approve|deny|break-glass|list — see gatehouse --help\n');
      return 2;
  }
  out.write(`${JSON.stringify(res, null, 2)}\n`);
  return 0;
}

async function cmdAdmin(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { url: { type: 'string' }, key: { type: 'string' }, principal: { type: 'string' }, password: { type: 'string' }, datasets: { type: 'string' }, expires: { type: 'string' } });
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const url = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  const p = encodeURIComponent(values.principal ?? '');
  let res: unknown;
  switch (sub) {
    case 'user-create': res = await http(url, '/v1/admin/users', key, { method: 'POST', body: { principal: values.principal, password: passwordOf(values) } }); break;
    case 'user-disable': res = await http(url, `/v1/admin/users/${p}/disable`, key, { method: 'POST', body: {} }); break;
    case 'user-enable': res = await http(url, `/v1/admin/users/${p}/enable`, key, { method: 'POST', body: {} }); break;
    case 'mfa-reset': res = await http(url, `/v1/admin/users/${p}/mfa-reset`, key, { method: 'POST', body: {} }); break;
    case 'mfa-reset-approve': res = await http(url, `/v1/admin/users/${p}/mfa-reset/approve`, key, { method: 'POST', body: {} }); break;
    case 'key-create': res = await http(url, '/v1/admin/keys', key, { method: 'POST', body: { principal: values.principal, datasets: (values.datasets ?? '').split(',').filter(Boolean), ...(values.expires ? { expiresAt: values.expires } : {}) } }); break;
    case 'key-revoke': res = await http(url, `/v1/admin/keys/${encodeURIComponent(positionals[0] ?? '')}`, key, { method: 'DELETE' }); break;
    case 'key-list': res = await http(url, `/v1/admin/keys?principal=${p}`, key); break;
    default: out.write('gatehouse admin user-create|user-disable|user-enable|mfa-reset|mfa-reset-approve|key-create|key-revoke|key-list — see gatehouse --help\n'); return 2;
  }
  out.write(`${JSON.stringify(res, null, 2)}\n`);
  return 0;
}

async function cmdUser(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, AUTH_OPTIONS);
  if (sub !== 'create' || !values.workspace || !values.principal) { out.write('gatehouse user create --workspace DIR --principal ID --password PW\n'); return 2; }
  const pw = passwordOf(values);
  await inProcess(values.workspace, undefined, (gh) => gh.createUser({ ...CLI_META, admin: `cli:${process.env.USER ?? 'admin'}` }, values.principal, pw));
  out.write(`created built-in user ${values.principal}\n`);
  return 0;
}

async function cmdAccess(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { workspace: { type: 'string' }, days: { type: 'string' }, json: { type: 'boolean' }, 'audit-dir': { type: 'string' } });
  if (sub !== 'review' || !values.workspace) { out.write('gatehouse access review --workspace DIR [--days 90] [--json]\n'); return values.help ? 0 : 2; }
  const { loadWorkspace } = await import('../workspace/validate.ts');
  const { openTransparencyLog } = await import('../audit/index.ts');
  const { accessReview, renderAccessReview } = await import('../identity/access-review.ts');
  const l = await loadWorkspace(values.workspace);
  const dir = resolve(values.workspace);
  const log = openTransparencyLog(values['audit-dir'] ?? join(dir, 'audit'), { demo: isDemo(dir) });
  try {
    // Usage: the newest allowed query per principal and dataset, from the audit log (the log
    // stores pseudonyms; the pseudonym keys map each principal to its own).
    const usage: { principalId: string; dataset: string; lastUsedAt: string; purpose: string | null }[] = [];
    for (const p of l.workspace.principals.keys()) {
      const last = new Map<string, { at: string; purpose: string | null }>();
      for (const hit of await log.search({ principal: p, decision: 'allow', action: 'query', limit: 100_000 })) {
        for (const ds of hit.entry.datasets) {
          const prev = last.get(ds);
          if (!prev || prev.at < hit.entry.time) last.set(ds, { at: hit.entry.time, purpose: hit.entry.purpose });
        }
      }
      for (const [dataset, u] of last) usage.push({ principalId: p, dataset, lastUsedAt: u.at, purpose: u.purpose });
    }
    const report = accessReview({
      principals: l.workspace.principals.values(), datasets: l.workspace.datasets.values(),
      decide: (p, d, ctx) => l.policy.decide(p, d, ctx), usage, unusedAfterDays: Number(values.days ?? 90), now: new Date(),
      defaultRowCap: l.workspace.defaults.rowCap, policyVersion: l.workspace.policyVersion,
    });
    out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderAccessReview(report)}\n`);
    return 0;
  } finally {
    await log.close();
  }
}

async function cmdAudit(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  const cli = await import('../audit/cli.ts');
  const { values, positionals } = parse(rest, {
    dir: { type: 'string' }, url: { type: 'string' }, key: { type: 'string' }, token: { type: 'string' }, export: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' },
    output: { type: 'string' }, principal: { type: 'string' }, dataset: { type: 'string' }, decision: { type: 'string' }, purpose: { type: 'string' },
    from: { type: 'string' }, to: { type: 'string' }, index: { type: 'string' }, size: { type: 'string' }, first: { type: 'string' }, second: { type: 'string' },
    'public-key': { type: 'string', multiple: true }, trusted: { type: 'string' }, 'save-checkpoint': { type: 'string' }, demo: { type: 'boolean' },
  });
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  if (values.token && !values.key) values.key = values.token;
  const src = { ...(values.dir ? { dir: values.dir } : {}), ...(values.url ? { url: values.url } : {}), ...(values.key ? { token: values.key } : {}), demo: values.demo ?? (values.dir ? resolve(values.dir).startsWith(resolve(DEMO_DIR)) : false) };
  const dflt = !values.dir && !values.url ? { url: process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}` } : {};
  const token = values.key ?? process.env.GATEHOUSE_API_KEY ?? process.env.GATEHOUSE_TOKEN;
  const s = { ...dflt, ...src, ...(token ? { token } : {}) };
  const exportFile = values.export ?? positionals[0];
  switch (sub) {
    case 'tail': return cli.auditTail({ ...s, limit: num(values.limit) ?? 20, json: values.json }, out as never);
    case 'keys': return cli.auditKeys(s, out as never);
    case 'export': return cli.auditExport({ ...s, output: values.output, principal: values.principal, dataset: values.dataset, decision: values.decision, purpose: values.purpose, from: values.from, to: values.to }, out as never);
    case 'proof': return cli.auditProof({ ...s, index: num(values.index), size: num(values.size), first: num(values.first), second: num(values.second), json: values.json }, out as never);
    case 'verify': return cli.auditVerify({ export: exportFile, ...(exportFile ? {} : { url: s.url }), token, publicKey: values['public-key'], trusted: values.trusted, saveCheckpoint: values['save-checkpoint'], json: values.json }, out as never);
    case 'verify-receipt': return cli.auditVerifyReceipt({ receipt: positionals[0], publicKey: values['public-key'], json: values.json }, out as never);
    case 'receipt': {
      if (!positionals[0]) throw new GatehouseError('REQUEST_INVALID', 'gatehouse audit receipt AUDIT_ID [--output FILE]');
      const r = await http<unknown>(s.url ?? `http://127.0.0.1:${DEFAULT_PORT}`, `/v1/audit/receipt/${encodeURIComponent(positionals[0])}`, token);
      const text = `${JSON.stringify(r, null, 2)}\n`;
      if (values.output) { (await import('node:fs')).writeFileSync(values.output, text); out.write(`receipt written to ${values.output}\n`); } else out.write(text);
      return 0;
    }
    default:
      out.write('gatehouse audit tail|keys|export|proof|verify|verify-receipt|receipt — see docs/audit.md\n');
      return sub === undefined || sub === '--help' ? 0 : 2;
  }
}

async function cmdWitness(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, { 'state-dir': { type: 'string' }, name: { type: 'string' }, 'log-key': { type: 'string', multiple: true }, 'key-file': { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, demo: { type: 'boolean' } });
  if (values.help) { out.write('gatehouse witness --state-dir DIR --name NAME --log-key VKEY [--port 7380] — see docs/audit.md\n'); return 0; }
  const cli = await import('../audit/cli.ts');
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  return cli.witnessCommand({ stateDir: values['state-dir'], name: values.name, logKey: values['log-key'], keyFile: values['key-file'], host: values.host, port: values.port ? Number(values.port) : undefined, signal: ac.signal, demo: values.demo }, out as never);
}

/** Seconds from an option or environment variable; `what` names it in the error. */
function seconds(value: string | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new GatehouseError('REQUEST_INVALID', `${what} must be a number of seconds (0 or more)`);
  return n;
}

/** `gatehouse serve`: the options become a NodeConfig, src/node/start.ts starts the node, this prints. */
async function cmdServe(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, {
    demo: { type: 'boolean' }, workspace: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, 'audit-dir': { type: 'string' }, quiet: { type: 'boolean' },
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'tls-client-ca': { type: 'string' }, 'insecure-http': { type: 'boolean' },
    'pg-port': { type: 'string' }, 'state-url': { type: 'string' }, 'shutdown-timeout': { type: 'string' },
  });
  if (values.help) { out.write(HELP.split('\n').slice(4, 19).join('\n') + '\n'); return 0; }
  const host = values.host ?? '127.0.0.1';
  const port = Number(values.port ?? (process.env.GATEHOUSE_PORT || undefined) ?? DEFAULT_PORT);
  if (!!values['tls-cert'] !== !!values['tls-key']) throw new GatehouseError('REQUEST_INVALID', 'give both --tls-cert and --tls-key');
  if (values['tls-client-ca'] && !values['tls-cert']) throw new GatehouseError('REQUEST_INVALID', '--tls-client-ca (mTLS) needs --tls-cert and --tls-key');
  const tls = values['tls-cert'] ? {
    cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']),
    ...(values['tls-client-ca'] ? { ca: readFileSync(values['tls-client-ca']) } : {}),
  } : null;
  const drainMs = seconds(values['shutdown-timeout'], '--shutdown-timeout', 10) * 1000;
  const schedulerSeconds = seconds(process.env.GATEHOUSE_SCHEDULER_SECONDS || undefined, 'GATEHOUSE_SCHEDULER_SECONDS', 300);
  // An empty environment variable counts as unset.
  const pgPort = values['pg-port'] ?? (process.env.GATEHOUSE_PG_PORT || undefined) ?? (values.demo ? String(DEFAULT_PG_PORT) : undefined);
  let dir: string;
  let keys: Record<string, string> | null = null;
  let passwords: Readonly<Record<string, string>> = {};
  if (values.demo) {
    const { createDemoWorkspace } = await import('../demo/workspace.ts');
    if (!existsSync(join(DEMO_DIR, 'data'))) out.write('creating the demo workspace (100,000 synthetic patients; first run only)…\n');
    const demo = await createDemoWorkspace(DEMO_DIR, { identity: true });
    dir = demo.dir;
    keys = demo.keys;
    passwords = demo.passwords;
  } else if (values.workspace) {
    dir = values.workspace;
  } else {
    throw new GatehouseError('REQUEST_INVALID', 'give --workspace DIR or --demo');
  }
  // Production option: audit log and privacy budgets in PostgreSQL, shared by several nodes
  // (docs/state-postgres.md). Default: files and node:sqlite beside the workspace.
  const stateUrl = values['state-url'] ?? (process.env.GATEHOUSE_STATE_URL || undefined);
  const { startNode } = await import('../node/start.ts');
  const { serveUntilSignal } = await import('../node/signals.ts');
  const node = await startNode({
    workspaceDir: dir,
    state: stateUrl ? { kind: 'postgres', url: stateUrl, ...(process.env.GATEHOUSE_STATE_PASSWORD ? { password: process.env.GATEHOUSE_STATE_PASSWORD } : {}) } : { kind: 'files' },
    ...(values['audit-dir'] ? { auditDir: values['audit-dir'] } : {}),
    http: { host, port, insecureHttp: values['insecure-http'] === true, version: VERSION },
    wire: pgPort === undefined ? null : { port: Number(pgPort) },
    tls,
    demo: values.demo === true || isDemo(dir),
    setup: { users: passwords, demoGovernance: values.demo === true },
    scheduler: schedulerSeconds > 0 ? { intervalMs: schedulerSeconds * 1000 } : null,
    reloadOnChange: true,
    notify: (line, err) => { out.write(`${line}\n`); if (err !== undefined) fail(out, err); },
  });
  const gh = node.gatehouse;
  if (node.stateDescription) out.write(`${node.stateDescription}\n`);
  out.write(`Gatehouse ${VERSION} serving ${gh.workspace.workspace.name} at ${node.http.url}\npolicy version ${gh.policyVersion}\n`);
  // The PostgreSQL wire protocol (psql, JDBC, BI tools): the same path, the same decisions.
  const wire = node.wire;
  if (wire) out.write(`PostgreSQL wire protocol on ${host}:${wire.port} (psql: see README "Connect psql")\n`);
  if (keys) {
    out.write(`\nDemo principals (API keys in ${DEMO_DIR}/demo-keys.json, passwords in ${DEMO_DIR}/demo-passwords.json):\n`);
    const roles: Record<string, string> = { rhea: 'research contractor — must sign in with MFA; purpose research: DP on encounters, aggregates only elsewhere', ivan: 'insurer (us-east) — own region, SSNs masked, purpose claims-processing', ada: 'internal analyst — row level, identifiers masked, purpose operations', audrey: 'auditor — reads the audit log', olivia: 'data owner — approves elevation requests' };
    for (const [p, k] of Object.entries(keys)) out.write(`  ${p.padEnd(7)} ${passwords[p] ? `password ${passwords[p]} (API key refused: MFA required)` : k}   ${roles[p] ?? ''}\n`);
    out.write(`\nTry it:\n  npx gatehouse query --key ${keys.ivan} --purpose claims-processing "SELECT name, ssn, region FROM patients LIMIT 5"\n`);
    if (wire) {
      out.write(`  # the same through psql: a connection password, then the purpose as a connection option\n`);
      out.write(`  eval "$(npx gatehouse pg-password --key ${keys.ivan} | grep ^export)"; PGOPTIONS="-c gatehouse.purpose=claims-processing" psql -h 127.0.0.1 -p ${wire.port} -d gatehouse\n`);
    }
    if (passwords.rhea) {
      out.write(`  # the contractor enrols an authenticator, then signs in with password + code:\n`);
      out.write(`  SECRET=$(npx gatehouse mfa enrol --principal rhea --password ${passwords.rhea} --json | npx node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).secret))')\n`);
      out.write(`  npx gatehouse mfa confirm --principal rhea --password ${passwords.rhea} --code $(npx gatehouse mfa code --secret $SECRET)\n`);
      out.write(`  export GATEHOUSE_API_KEY=$(npx gatehouse login --principal rhea --password ${passwords.rhea} --code $(npx gatehouse mfa code --secret $SECRET --next) --token-only)\n`);
      out.write(`  npx gatehouse query --purpose research "SELECT diagnosis, count(*) AS encounters, avg(cost) AS avg_cost FROM encounters GROUP BY diagnosis ORDER BY encounters DESC"\n`);
    }
  }
  out.write('\nEditing the workspace reloads it; Ctrl-C (or SIGTERM) drains requests in flight and stops.\n');
  await serveUntilSignal(node, { drainMs, notify: (line) => out.write(`${line}\n`) });
  out.write('stopped\n');
  return 0;
}

export async function main(argv: string[], out: Out = process.stdout): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve': return await cmdServe(rest, out);
      case 'validate': return await cmdValidate(rest, out);
      case 'query': return await cmdQuery(rest, out);
      case 'datasets': return await cmdDatasets(rest, out);
      case 'policy': return await cmdPolicy(rest, out);
      case 'audit': return await cmdAudit(rest, out);
      case 'witness': return await cmdWitness(rest, out);
      case 'login': return await cmdLogin(rest, out);
      case 'logout': return await cmdLogout(rest, out);
      case 'pg-password': return await cmdPgPassword(rest, out);
      case 'results': return await cmdResults(rest, out);
      case 'ingest': return await cmdIngest(rest, out);
      case 'mfa': return await cmdMfa(rest, out);
      case 'user': return await cmdUser(rest, out);
      case 'access': return await cmdAccess(rest, out);
      case 'elevation': return await cmdElevation(rest, out);
      case 'admin': return await cmdAdmin(rest, out);
      case 'demo': return await cmdDemo(rest, out);
      case 'vendor': case 'agreement': case 'grant': case 'acknowledge': case 'training': case 'gate': case 'keys':
      case 'retention': case 'classify': case 'finding': case 'flows': case 'report':
        return await (await import('./governance.ts')).governanceCommand(cmd, rest, out);
      case undefined: case '--help': case '-h': case 'help': out.write(`${HELP}\n`); return 0;
      case '--version': case '-v': out.write(`${VERSION}\n`); return 0;
      default: out.write(`unknown command "${cmd}"\n\n${HELP}\n`); return 2;
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      out.write(`${(err as Error).message}\nRun "gatehouse ${cmd} --help".\n`);
      return 2;
    }
    return fail(out, err, argv.includes('--json'));
  }
}
