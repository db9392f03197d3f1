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
import { COMMANDS, commandHelp, DEFAULT_PG_PORT, DEFAULT_PORT, DEMO_DIR, parseOptions } from './commands.ts';
import { errorFromBody, errorStream, EXIT, EXIT_CODES_HELP, reportError, UsageError } from './exit.ts';
import { formatTable } from './table.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
export { DEFAULT_PORT, DEFAULT_PG_PORT, DEMO_DIR } from './commands.ts';

const GOVERNANCE_GROUPS = ['vendor', 'agreement', 'grant', 'acknowledge', 'training', 'gate', 'keys', 'retention', 'classify', 'finding', 'flows', 'report', 'lineage', 'workspace'] as const;

const HELP = `gatehouse ${VERSION} — governed data sharing: partners query, never copy.

Usage: gatehouse <command> [<sub-command>] [options]
       (in the checkout: npx --no gatehouse …; the --no never fetches a package from npm)

${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n')}
  ${GOVERNANCE_GROUPS.join('|')}
               Contractor governance: partners and vendor risk, agreements, grants,
               acknowledgements, training, key rotation, retention, classification, the
               data-flow map, compliance reports and findings (docs/contractor-governance.md).

Run "gatehouse <command> --help" (or "gatehouse <command> <sub-command> --help") for its options.
Data commands call a server (--url, default http://127.0.0.1:${DEFAULT_PORT}, or GATEHOUSE_URL) with
--key (or GATEHOUSE_API_KEY), or run in-process on a workspace (--workspace DIR): the same request path.

${EXIT_CODES_HELP}
Docs: README.md, docs/cli.md.`;

type Out = NodeJS.WritableStream;

/** Parses a command's arguments with its option table (src/cli/commands.ts). */
function parse(argv: string[], command: string | ParseArgsConfig['options']): { values: Record<string, any>; positionals: string[] } {
  const options = typeof command === 'string' ? parseOptions(COMMANDS[command]!.options) : command;
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
}

/** The options of the built-in-user commands (login, mfa, pg-password). */
const AUTH_OPTIONS = parseOptions({ ...COMMANDS.mfa!.options, ...COMMANDS.login!.options });

/** A command line missing something it needs: exit 2, with the command's usage as the hint. */
function usage(command: string, message: string): UsageError {
  return new UsageError(message, { hint: `gatehouse ${command} --help` });
}

/** A node without listeners for one command (`--workspace`): the same wiring as `serve`. */
async function inProcess<T>(workspace: string, auditDir: string | undefined, fn: (gh: import('../pipeline/gatehouse.ts').Gatehouse) => Promise<T>): Promise<T> {
  const { startNode } = await import('../node/start.ts');
  const dir = resolve(workspace);
  // A one-shot command on a federated workspace must not bind the configured node-to-node
  // port (a served node may hold it): its residency listener, if any, takes a free one.
  const node = await startNode({ workspaceDir: dir, ...(auditDir ? { auditDir } : {}), demo: isDemo(dir), federation: { listen: { port: 0 } } });
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

function unreachable(url: string, err: unknown): GatehouseError {
  return new GatehouseError('UNAVAILABLE', `cannot reach ${url}: ${(err as Error).message}`, { hint: 'start the server ("npm start" or "gatehouse serve"), set --url (or GATEHOUSE_URL), or pass --workspace DIR to run in-process' });
}

function serverUrl(values: Record<string, any>): string {
  return values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
}

async function http<T>(url: string, path: string, key: string | undefined, init: { method?: string; body?: unknown } = {}): Promise<T> {
  // The identity modules are loaded only by a call that sends a key (--help, --version and the
  // local commands start without them, ~40 ms of CPU each). A malformed key is the caller's
  // error (its own code), not an unreachable server, so it is checked before the request.
  const authorization = key ? (await import('../identity/credentials.ts')).bearerHeader(key) : null;
  let res: Response;
  try {
    res = await fetch(new URL(path, url), {
      method: init.method ?? 'GET',
      headers: { ...(authorization !== null ? { authorization } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
      body: init.body ? JSON.stringify(init.body) : null,
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    throw unreachable(url, err);
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string; hint?: string | null; reasons?: string[] } };
  if (!res.ok) throw errorFromBody(body.error, res.status);
  return body as T;
}

/** The SQL of `query`: the arguments, a file (-f FILE) or stdin (-f - or a lone "-"). */
async function sqlOf(values: Record<string, any>, positionals: string[]): Promise<string> {
  const fromStdin = values.file === '-' || (positionals.length === 1 && positionals[0] === '-');
  if (values.file !== undefined && positionals.length > 0 && !fromStdin) throw usage('query', 'give the SQL either as an argument or with -f FILE, not both');
  let sql: string;
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(Buffer.from(c as Buffer));
    sql = Buffer.concat(chunks).toString('utf8');
  } else if (values.file !== undefined) {
    try {
      sql = readFileSync(values.file, 'utf8');
    } catch (err) {
      throw usage('query', `cannot read the SQL file ${values.file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  } else {
    sql = positionals.join(' ');
  }
  sql = sql.trim().replace(/;\s*$/, '');
  if (!sql) throw usage('query', 'give the SQL to run, e.g. gatehouse query --purpose research "SELECT 1" (or -f FILE, or - for stdin)');
  return sql;
}

/** Two significant digits: how an interval's half-width is shown (precision.ts). */
const twoDigits = (x: number): string => (x >= 10 ? String(Math.round(Number(x.toPrecision(2)))) : x.toPrecision(2));

/**
 * Adds "did you mean" to an unknown dataset or a purpose no dataset allows, from the caller's
 * own dataset listing (so it never names a dataset the caller may not see).
 */
async function withSuggestion(err: unknown, purpose: string, list: () => Promise<{ datasets: readonly { name: string; purposes: readonly string[] }[] }>): Promise<unknown> {
  if (!(err instanceof GatehouseError) || (err.code !== 'SQL_UNKNOWN_DATASET' && err.code !== 'POLICY_DENIED')) return err;
  const { closest } = await import('./suggest.ts');
  let visible: readonly { name: string; purposes: readonly string[] }[];
  try {
    visible = (await list()).datasets;
  } catch {
    return err;
  }
  let hint: string | null = null;
  if (err.code === 'SQL_UNKNOWN_DATASET') {
    const name = /"([^"]+)"/.exec(err.message)?.[1] ?? /unknown dataset (\S+)/.exec(err.message)?.[1];
    const near = name ? closest(name, visible.map((d) => d.name)) : null;
    if (near) hint = `did you mean "${near}"? (gatehouse datasets lists yours)`;
  } else {
    const purposes = new Set(visible.flatMap((d) => d.purposes));
    const near = purposes.has(purpose) ? null : closest(purpose, purposes);
    if (near) hint = `did you mean --purpose ${near}? (your purposes: ${[...purposes].sort().join(', ')})`;
  }
  if (!hint) return err;
  return new GatehouseError(err.code, err.message, { hint: err.hint ? `${hint}; ${err.hint}` : hint, reasons: err.reasons, detail: err.detail, retryAfterSeconds: err.retryAfterSeconds });
}

async function cmdQuery(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(argv, 'query');
  const sql = await sqlOf(values, positionals);
  if (!values.purpose) throw usage('query', 'give a purpose with --purpose (why you query, e.g. research)');
  const { ROW_FORMATS, formatRows } = await import('./rows.ts');
  const format = (values.format ?? 'table') as import('./rows.ts').RowFormat;
  if (!ROW_FORMATS.includes(format)) throw usage('query', `--format must be one of ${ROW_FORMATS.join(', ')}`);
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const meta = { credential: key ?? null, source: '127.0.0.1', channel: 'cli' } as const;
  const suggest = (err: unknown): Promise<unknown> => withSuggestion(err, values.purpose, () => (values.workspace
    ? inProcess(values.workspace, values['audit-dir'], (gh) => gh.datasets({ ...meta, purpose: null }))
    : http(serverUrl(values), '/v1/datasets', key)));
  if (values.estimate) {
    type Est = import('../pipeline/gatehouse.ts').QueryEstimate;
    const est: Est = await (values.workspace
      ? inProcess(values.workspace, values['audit-dir'], (gh) => gh.estimate({ ...meta, sql, purpose: values.purpose }))
      : http<Est>(serverUrl(values), '/v1/query/estimate', key, { method: 'POST', body: { sql, purpose: values.purpose } })).catch(async (e) => { throw await suggest(e); });
    const p = est.privacy;
    // A query that does not fit the budget would be refused: the estimate says so in its status.
    const status = p && !p.affordable ? EXIT.refused : EXIT.ok;
    if (values.json) { out.write(`${JSON.stringify(est, null, 2)}\n`); return status; }
    out.write(`allowed · policy ${est.policyVersion.slice(0, 19)} · audit #${est.auditId}\nobligations: ${est.obligationsApplied.join(', ')}\n`);
    if (!p) { out.write('no differential privacy applies: the query spends no privacy budget\n'); return status; }
    out.write(`differential privacy (${p.mechanism}, ${p.guarantee}): this query costs ε=${p.epsilon}, δ=${p.delta} (ρ=${p.rho.toPrecision(3)})\n`);
    for (const n of p.noise) out.write(n.ci95 === null ? `  ${n.output}: a quantile from a noisy histogram (noise scale ${n.scale.toPrecision(3)} per bucket); each value comes with its own 95% interval\n` : `  ${n.output}: noise scale ${n.scale.toPrecision(3)}, 95% of answers within ±${twoDigits(n.ci95)}\n`);
    if (p.selection) out.write(`partition selection (${p.selection.strategy}): a group is kept with probability ${p.selection.expectedKeptFraction.map((k) => `${k.units} unit${k.units === 1 ? '' : 's'} ${twoDigits(k.fraction * 100)}%`).join(', ')}\n`);
    if (p.budget) out.write(`budget (${p.budget.subject}): ε=${p.budget.spentEpsilon.toFixed(3)} of ${p.budget.epsilon} spent at δ=${p.budget.delta}${p.budget.resetsAt ? `, resets ${p.budget.resetsAt}` : ''}; ${p.affordable ? 'this query fits' : 'this query does NOT fit the remaining budget'}\n`);
    if (status !== EXIT.ok) errorStream(out).write('refused: the query does not fit the remaining privacy budget (exit 3)\n');
    return status;
  }
  const body = { sql, purpose: values.purpose, ...(values.save ? { save: true } : {}) };
  const res = await (values.workspace
    ? inProcess(values.workspace, values['audit-dir'], (gh) => gh.query({ ...meta, ...body }))
    : http<import('../pipeline/gatehouse.ts').QueryResponse>(serverUrl(values), '/v1/query', key, { method: 'POST', body })).catch(async (e) => { throw await suggest(e); });
  if (values.json) { out.write(`${JSON.stringify(res, null, 2)}\n`); return 0; }
  out.write(formatRows(res, format));
  // With a machine format, stdout holds only the rows; the governance summary goes to stderr.
  const info = format === 'table' ? out : errorStream(out);
  const g = res.governance;
  info.write(`${format === 'table' ? '\n' : ''}${res.rows.length} row${res.rows.length === 1 ? '' : 's'}${g.truncated ? ` (truncated at the row cap of ${g.rowCap})` : ''} · audit #${g.auditId} · policy ${g.policyVersion.slice(0, 19)}\n`);
  if (g.obligationsApplied.length) info.write(`obligations: ${g.obligationsApplied.join(', ')}\n`);
  if (g.resultId) info.write(`saved encrypted as ${g.resultId} (gatehouse results get ${g.resultId})\n`);
  if (g.privacy) {
    const p = g.privacy;
    info.write(`differential privacy: ε=${p.epsilon}, δ=${p.delta} spent; 95% intervals: ${p.noise.map((n) => (n.ci95 === null ? `${n.output} per value (--json)` : `${n.output} ±${twoDigits(n.ci95)}`)).join(', ')}\n`);
    if (p.budget) info.write(`budget (${p.budget.subject}): ε=${p.budget.spentEpsilon.toFixed(3)} of ${p.budget.epsilon} spent${p.budget.resetsAt ? `, resets ${p.budget.resetsAt}` : ''}\n`);
  }
  return 0;
}

async function cmdDatasets(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, 'datasets');
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
  const { values, positionals } = parse(argv, 'validate');
  if (positionals.length !== 1) throw usage('validate', 'give the workspace directory: gatehouse validate DIR');
  const { loadWorkspace } = await import('../workspace/validate.ts');
  const { WorkspaceInvalid } = await import('../workspace/load.ts');
  let l: Awaited<ReturnType<typeof loadWorkspace>>;
  try {
    l = await loadWorkspace(positionals[0]!);
  } catch (err) {
    // --json: the report is the answer (on stdout), problems included; exit 1 when invalid.
    if (!values.json || !(err instanceof WorkspaceInvalid)) throw err;
    out.write(`${JSON.stringify({ ok: false, problems: err.problems }, null, 2)}\n`);
    return EXIT.error;
  }
  const ws = l.workspace;
  if (values.json) {
    out.write(`${JSON.stringify({ ok: true, problems: [], name: ws.name, datasets: [...ws.datasets.keys()], policies: [...l.policy.policies.keys()], obligations: [...ws.obligations.keys()], principals: ws.principals.size, policyVersion: ws.policyVersion }, null, 2)}\n`);
    return 0;
  }
  out.write(`OK: ${ws.name} — ${ws.datasets.size} datasets, ${l.policy.policies.size} policies, ${ws.obligations.size} obligation sets, ${ws.principals.size} principals\npolicy version ${ws.policyVersion}\n`);
  return 0;
}

async function cmdPolicy(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'whatif') return (await import('./policy-whatif.ts')).cmdPolicyWhatif(rest, out);
  if (sub !== 'show' && sub !== 'test') throw usage('policy', sub === undefined ? 'give a sub-command: policy show DIR or policy test DIR …' : `unknown sub-command "policy ${sub}"`);
  const { values, positionals } = parse(rest, 'policy');
  if (positionals.length !== 1) throw usage(`policy ${sub}`, `give the workspace directory: gatehouse policy ${sub} DIR`);
  const { loadWorkspace } = await import('../workspace/validate.ts');
  const l = await loadWorkspace(positionals[0]!);
  if (sub === 'show' && values.json) {
    const policies = [...l.policy.policies.values()].map((p) => ({ id: p.id, effect: p.effect, file: p.file, dataset: p.dataset ?? null, obligations: p.obligationNames }));
    const obligations = [...l.workspace.obligations.values()].map((o) => ({
      name: o.name, rowFilter: o.rowFilter ?? null, aggregationOnly: o.aggregationOnly ?? null, rowCap: o.rowCap ?? null,
      unmask: o.unmask, masks: Object.fromEntries(Object.entries(o.masks).map(([c, m]) => [c, m.kind])), joinOnly: o.joinOnly,
    }));
    out.write(`${JSON.stringify({ policyVersion: l.workspace.policyVersion, policies, obligations }, null, 2)}\n`);
    return 0;
  }
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
  const { closest } = await import('./suggest.ts');
  const near = (name: string, all: Iterable<string>): { hint?: string } => { const c = closest(name, all); return c ? { hint: `did you mean "${c}"?` } : {}; };
  if (!principal) throw new UsageError(`no principal "${values.principal ?? ''}" in the workspace (--principal)`, near(values.principal ?? '', l.workspace.principals.keys()));
  if (!dataset) throw new UsageError(`no dataset "${values.dataset ?? ''}" in the workspace (--dataset)`, near(values.dataset ?? '', l.workspace.datasets.keys()));
  if (!values.purpose) throw usage('policy test', 'give --purpose');
  const d = l.policy.decide(principal, dataset, { purpose: values.purpose, sourceIp: values.source ?? '127.0.0.1', channel: 'cli', time: values.time ? new Date(values.time) : new Date() });
  if (values.json) { out.write(`${JSON.stringify({ ...d, obligations: d.obligations.map((o) => o.name) }, null, 2)}\n`); return d.allowed ? 0 : 3; }
  out.write(`${d.allowed ? 'ALLOW' : 'DENY'}: ${principal.id} → query ${dataset.name} for "${values.purpose}" (policy ${l.workspace.policyVersion.slice(0, 19)})\n`);
  if (d.policies.length) out.write(`  determining policies: ${d.policies.join(', ')}\n`);
  for (const r of d.reasons) out.write(`  reason: ${r}\n`);
  if (d.obligations.length) out.write(`  obligations: ${d.obligations.map((o) => o.name).join(', ')}\n`);
  return d.allowed ? 0 : 3;
}

async function cmdDemo(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'init' && sub !== 'reset') throw usage('demo', sub === undefined ? 'give a sub-command: demo init or demo reset' : `unknown sub-command "demo ${sub}"`);
  const { values, positionals } = parse(rest, 'demo');
  const dir = positionals[0] ?? DEMO_DIR;
  const passwordNote = '(MFA required; serve creates the user)';
  if (sub === 'reset') {
    const { resetDemoWorkspace } = await import('../demo/reset.ts');
    const demo = await resetDemoWorkspace(dir);
    out.write(`demo workspace ${demo.dir} reset (removed: ${demo.removed.join(', ') || 'nothing'}); the data and the keys are kept.\nStart it again with: npm start\n`);
    return 0;
  }
  const patients = values.patients === undefined ? undefined : Number(values.patients);
  if (patients !== undefined && (!Number.isInteger(patients) || patients < 100)) throw usage('demo init', '--patients must be a whole number of at least 100');
  const { createDemoWorkspace } = await import('../demo/workspace.ts');
  const demo = await createDemoWorkspace(dir, { identity: true, ...(patients !== undefined ? { patients } : {}) });
  out.write(`demo workspace in ${demo.dir}\n${Object.entries(demo.keys).map(([p, k]) => `  ${p.padEnd(7)} ${k}${demo.passwords[p] ? `   password ${demo.passwords[p]} ${passwordNote}` : ''}`).join('\n')}\n`);
  return 0;
}

function passwordOf(values: Record<string, any>): string {
  const pw = values.password ?? process.env.GATEHOUSE_PASSWORD;
  if (!pw) throw new UsageError('give --password (or GATEHOUSE_PASSWORD)');
  return pw;
}

async function authCall<T>(values: Record<string, any>, path: string, body: unknown, inProc: (gh: import('../pipeline/gatehouse.ts').Gatehouse) => Promise<T>, key?: string): Promise<T> {
  if (values.workspace) return inProcess(values.workspace, undefined, inProc);
  return http<T>(serverUrl(values), path, key, { method: 'POST', body });
}

const CLI_META = { credential: null, source: '127.0.0.1', channel: 'cli' } as const;

async function cmdLogin(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, 'login');
  if (!values.principal) throw usage('login', 'give --principal');
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
  if (sub !== 'list' && sub !== 'get') throw usage('results', sub === undefined ? 'give a sub-command: results list or results get ID' : `unknown sub-command "results ${sub}"`);
  const { values, positionals } = parse(rest, 'results');
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
  if (!id) throw usage('results get', 'give the result id: gatehouse results get ID');
  type G = Awaited<ReturnType<import('../pipeline/gatehouse.ts').Gatehouse['getResult']>>;
  const r: G = values.workspace ? await inProcess(values.workspace, values['audit-dir'], (gh) => gh.getResult(meta, id)) : await http<G>(base, `/v1/results/${encodeURIComponent(id)}`, key ?? undefined, { method: 'GET' });
  if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
  const c = r.content as { columns: { name: string }[]; rows: unknown[][] };
  out.write(`${formatTable(c.columns.map((x) => x.name), c.rows as never)}\n\nsaved result ${r.id} from ${r.createdAt}\n`);
  return 0;
}

async function cmdIngest(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parse(argv, 'ingest');
  if (!values.workspace || !values.dataset || positionals.length !== 1) throw usage('ingest', 'give --workspace DIR, --dataset NAME and one FILE');
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(values.dataset)) throw usage('ingest', 'the dataset name must be lower-case letters, digits and _');
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
  const { values } = parse(argv, { ...AUTH_OPTIONS, name: { type: 'string' }, list: { type: 'boolean' }, revoke: { type: 'string' } });
  if (values.help) {
    out.write('gatehouse pg-password [--name NAME] [--key CREDENTIAL] [--url URL | --workspace DIR] [--json]\n'
      + '  a password for psql/JDBC on the wire-protocol port (serve --pg-port); shown once. One per tool:\n'
      + '  issuing --name NAME again replaces only that one (default name: default)\n'
      + 'gatehouse pg-password --list      your active connection passwords (names and expiry)\n'
      + 'gatehouse pg-password --revoke NAME   revoke one; the tool using it fails from its next query\n');
    return 0;
  }
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  if (!key) throw new GatehouseError('REQUEST_INVALID', 'give your session token or API key with --key (or GATEHOUSE_API_KEY)', { hint: 'sign in first: gatehouse login' });
  const meta = { ...CLI_META, credential: key };
  const base = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  if (values.list) {
    const r = values.workspace
      ? await inProcess(values.workspace, undefined, (gh) => gh.listConnectionPasswords(meta))
      : await http<{ passwords: { name: string; id: string; createdAt: string; expiresAt: string }[] }>(base, '/v1/auth/connection-passwords', key);
    if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
    if (r.passwords.length === 0) { out.write('no active connection passwords\n'); return 0; }
    for (const p of r.passwords) out.write(`${p.name}\tissued ${p.createdAt}\tvalid until ${p.expiresAt}\n`);
    return 0;
  }
  if (values.revoke !== undefined) {
    const name = values.revoke;
    const r = values.workspace
      ? await inProcess(values.workspace, undefined, (gh) => gh.revokeConnectionPassword(meta, name))
      : await http<{ name: string; revoked: boolean }>(base, `/v1/auth/connection-passwords/${encodeURIComponent(name)}`, key, { method: 'DELETE' });
    if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
    out.write(`connection password ${r.name} revoked\n`);
    return 0;
  }
  const body = values.name !== undefined ? { name: values.name } : {};
  const r = await authCall<{ name: string; username: string; password: string; expiresAt: string }>(values, '/v1/auth/connection-password', body, (gh) => gh.issueConnectionPassword(meta, body), key);
  if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
  out.write(`user ${r.username}, password "${r.name}", valid until ${r.expiresAt} (issuing --name ${r.name} again replaces it; other names keep working)\n`);
  out.write(`export PGUSER=${r.username} PGPASSWORD=${r.password}\n`);
  return 0;
}

async function cmdLogout(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, 'logout');
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  if (!key) throw usage('logout', 'give the session token with --key (or GATEHOUSE_API_KEY)');
  await authCall(values, '/v1/auth/logout', {}, (gh) => gh.logout({ ...CLI_META, credential: key }), key);
  out.write('session revoked\n');
  return 0;
}

async function cmdMfa(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'code' && sub !== 'enrol' && sub !== 'confirm') throw usage('mfa', sub === undefined ? 'give a sub-command: mfa enrol, confirm or code' : `unknown sub-command "mfa ${sub}"`);
  const { values } = parse(rest, 'mfa');
  if (sub === 'code') {
    if (!values.secret) throw usage('mfa code', 'give --secret (the Base32 secret from "mfa enrol")');
    const { generateTotp, totpStep } = await import('../identity/totp.ts');
    out.write(`${await generateTotp(values.secret, { now: (totpStep() + (values.next ? 1 : 0)) * 30_000 })}\n`);
    return 0;
  }
  if (!values.principal) throw usage(`mfa ${sub}`, 'give --principal');
  if (sub === 'enrol') {
    const body = { principal: values.principal, password: passwordOf(values) };
    const e = await authCall<{ otpauthUri: string; secret: string }>(values, '/v1/auth/totp/enrol', body, (gh) => gh.enrolTotp(CLI_META, body));
    if (values.json) { out.write(`${JSON.stringify(e, null, 2)}\n`); return 0; }
    out.write(`Add this to your authenticator app (or scan it as a QR code):\n  ${e.otpauthUri}\nsecret: ${e.secret}\nThen: gatehouse mfa confirm --principal ${values.principal} --password … --code <current code>\n`);
    return 0;
  }
  if (sub === 'confirm') {
    if (!values.code) throw usage('mfa confirm', 'give --code (the current code from your authenticator)');
    const body = { principal: values.principal, password: passwordOf(values), code: values.code };
    const r = await authCall<{ recoveryCodes: string[] }>(values, '/v1/auth/totp/confirm', body, (gh) => gh.confirmTotp(CLI_META, body));
    if (values.json) { out.write(`${JSON.stringify(r, null, 2)}\n`); return 0; }
    out.write(`MFA is on. Recovery codes (each works once; store them safely — they are not shown again):\n${r.recoveryCodes.map((c) => `  ${c}`).join('\n')}\n`);
  }
  return 0;
}

async function cmdElevation(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || !COMMANDS.elevation!.subs![sub]) throw usage('elevation', sub === undefined ? 'give a sub-command: request, approve, deny, break-glass or list' : `unknown sub-command "elevation ${sub}"`);
  const { values, positionals } = parse(rest, 'elevation');
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const meta = { ...CLI_META, credential: key ?? null };
  const url = serverUrl(values);
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
      throw usage('elevation', `unknown sub-command "elevation ${sub}"`);
  }
  out.write(`${JSON.stringify(res, null, 2)}\n`);
  return 0;
}

async function cmdAdmin(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || !COMMANDS.admin!.subs![sub]) throw usage('admin', sub === undefined ? 'give a sub-command (gatehouse admin --help lists them)' : `unknown sub-command "admin ${sub}"`);
  const { values, positionals } = parse(rest, 'admin');
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const url = serverUrl(values);
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
    default: throw usage('admin', `unknown sub-command "admin ${sub}"`);
  }
  out.write(`${JSON.stringify(res, null, 2)}\n`);
  return 0;
}

async function cmdUser(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'create') throw usage('user', sub === undefined ? 'give a sub-command: user create' : `unknown sub-command "user ${sub}"`);
  const { values } = parse(rest, 'user');
  if (!values.workspace || !values.principal) throw usage('user create', 'give --workspace DIR and --principal ID');
  const pw = passwordOf(values);
  await inProcess(values.workspace, undefined, (gh) => gh.createUser({ ...CLI_META, admin: `cli:${process.env.USER ?? 'admin'}` }, values.principal, pw));
  out.write(`created built-in user ${values.principal}\n`);
  return 0;
}

async function cmdAccess(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'review') throw usage('access', sub === undefined ? 'give a sub-command: access review' : `unknown sub-command "access ${sub}"`);
  const { values } = parse(rest, 'access');
  if (!values.workspace) throw usage('access review', 'give --workspace DIR');
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

/**
 * Runs one of src/audit/cli.ts's commands. They print their own errors as `error CODE: message`
 * on the stream they write results to and return 2; this keeps results on `out` and turns such
 * a line back into a GatehouseError, so it reaches stderr (JSON under --json) with the exit
 * status of its code, and `audit keys > log.vkey` never writes an error into the file.
 */
async function auditCall(out: Out, run: (to: NodeJS.WritableStream) => Promise<number>): Promise<number> {
  const { PassThrough } = await import('node:stream');
  const { AUDIT_CODES } = await import('../audit/errors.ts');
  const { CODE_BY_STATUS, codeFor, isErrorCode } = await import('../errors.ts');
  const sink = new PassThrough();
  let error: string | null = null;
  let pending = Promise.resolve();
  sink.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    if (/^error[ :]/.test(text)) { error = text.trim(); return; }
    if (!out.write(chunk)) pending = new Promise((r) => out.once('drain', () => r()));
  });
  const status = await run(sink);
  sink.end();
  await pending;
  if (status === 0 || error === null) return status;
  const m = /^error (\S+): ([\s\S]*)$/.exec(error as string);
  const detail = m?.[1] ?? null;
  const message = m?.[2] ?? (error as string).replace(/^error:\s*/, '');
  const statusCode = /server answered (\d{3})/.exec(message)?.[1];
  const code = detail && isErrorCode(detail) ? detail : statusCode && CODE_BY_STATUS[Number(statusCode)] ? CODE_BY_STATUS[Number(statusCode)]! : detail ? codeFor(detail, AUDIT_CODES) : 'INTERNAL';
  throw new GatehouseError(code, message, { detail: detail && !isErrorCode(detail) ? detail : null });
}

async function cmdAudit(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || !COMMANDS.audit!.subs![sub]) throw usage('audit', sub === undefined ? 'give a sub-command (gatehouse audit --help lists them)' : `unknown sub-command "audit ${sub}"`);
  const cli = await import('../audit/cli.ts');
  const { values, positionals } = parse(rest, 'audit');
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  if (values.token && !values.key) values.key = values.token;
  const src = { ...(values.dir ? { dir: values.dir } : {}), ...(values.url ? { url: values.url } : {}), ...(values.key ? { token: values.key } : {}), demo: values.demo ?? (values.dir ? resolve(values.dir).startsWith(resolve(DEMO_DIR)) : false) };
  const dflt = !values.dir && !values.url ? { url: process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}` } : {};
  const token = values.key ?? process.env.GATEHOUSE_API_KEY ?? process.env.GATEHOUSE_TOKEN;
  const s = { ...dflt, ...src, ...(token ? { token } : {}) };
  const exportFile = values.export ?? positionals[0];
  switch (sub) {
    case 'tail': return auditCall(out, (to) => cli.auditTail({ ...s, limit: num(values.limit) ?? 20, json: values.json }, to as never));
    case 'keys': return auditCall(out, (to) => cli.auditKeys(s, to as never));
    case 'export': return auditCall(out, (to) => cli.auditExport({ ...s, output: values.output, principal: values.principal, dataset: values.dataset, decision: values.decision, purpose: values.purpose, from: values.from, to: values.to }, to as never));
    case 'proof': return auditCall(out, (to) => cli.auditProof({ ...s, index: num(values.index), size: num(values.size), first: num(values.first), second: num(values.second), json: values.json }, to as never));
    case 'verify': return auditCall(out, (to) => cli.auditVerify({ export: exportFile, ...(exportFile ? {} : { url: s.url }), token, publicKey: values['public-key'], trusted: values.trusted, saveCheckpoint: values['save-checkpoint'], json: values.json }, to as never));
    // A receipt file, or an audit id fetched with the partner's own credential and verified offline.
    case 'verify-receipt': return auditCall(out, (to) => cli.auditVerifyReceipt({ ...s, receipt: positionals[0], publicKey: values['public-key'], output: values.output, json: values.json }, to as never));
    case 'receipt': {
      if (!positionals[0]) throw usage('audit receipt', 'give the audit id: gatehouse audit receipt AUDIT_ID [--output FILE]');
      const r = await http<unknown>(s.url ?? `http://127.0.0.1:${DEFAULT_PORT}`, `/v1/audit/receipt/${encodeURIComponent(positionals[0])}`, token);
      const text = `${JSON.stringify(r, null, 2)}\n`;
      if (values.output) { (await import('node:fs')).writeFileSync(values.output, text); out.write(`receipt written to ${values.output}\n`); } else out.write(text);
      return 0;
    }
    default:
      throw usage('audit', `unknown sub-command "audit ${sub}"`);
  }
}

async function cmdWitness(argv: string[], out: Out): Promise<number> {
  const { values } = parse(argv, 'witness');
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
  const { values } = parse(argv, 'serve');
  const host = values.host ?? '127.0.0.1';
  const port = Number(values.port ?? (process.env.GATEHOUSE_PORT || undefined) ?? DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw usage('serve', '--port must be a port number (0 picks a free one)');
  if (!!values['tls-cert'] !== !!values['tls-key']) throw usage('serve', 'give both --tls-cert and --tls-key');
  if (values['tls-client-ca'] && !values['tls-cert']) throw usage('serve', '--tls-client-ca (mTLS) needs --tls-cert and --tls-key');
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
    throw usage('serve', 'give --workspace DIR or --demo');
  }
  // Production option: audit log and privacy budgets in PostgreSQL, shared by several nodes
  // (docs/state-postgres.md). Default: files and node:sqlite beside the workspace.
  const stateUrl = values['state-url'] ?? (process.env.GATEHOUSE_STATE_URL || undefined);
  // Validate before anything is created: an invalid workspace leaves no audit/ or state/ behind.
  // The node starts from this load: compiling the Cedar policies once, not twice, per start.
  const loaded = await (await import('../workspace/validate.ts')).loadWorkspace(dir);
  const { startNode } = await import('../node/start.ts');
  const { serveUntilSignal } = await import('../node/signals.ts');
  const node = await startNode({
    workspaceDir: dir, workspace: loaded,
    state: stateUrl ? { kind: 'postgres', url: stateUrl, ...(process.env.GATEHOUSE_STATE_PASSWORD ? { password: process.env.GATEHOUSE_STATE_PASSWORD } : {}) } : { kind: 'files' },
    // Checkpoints are published only with the witnesses' cosignatures; the demo runs one witness of its own.
    witnesses: {
      remote: ((values.witness ?? []) as string[]).map((url, i) => ({ url, key: ((values['witness-key'] ?? []) as string[])[i] ?? '' })),
      ...(values['witness-quorum'] !== undefined ? { quorum: Number(values['witness-quorum']) } : {}),
      local: values.demo === true,
    },
    ...(values['audit-dir'] ? { auditDir: values['audit-dir'] } : {}),
    http: { host, port, insecureHttp: values['insecure-http'] === true, version: VERSION },
    wire: pgPort === undefined ? null : { port: Number(pgPort) },
    tls,
    demo: values.demo === true || isDemo(dir),
    attestation: { allowSample: values.demo === true },
    setup: { users: passwords, demoGovernance: values.demo === true },
    ...(values.cleanroom === true ? { cleanroom: {} } : {}),
    scheduler: schedulerSeconds > 0 ? { intervalMs: schedulerSeconds * 1000 } : null,
    reloadOnChange: true,
    notify: (line, err) => { out.write(`${line}\n`); if (err !== undefined) reportError(out, err, { json: false }); },
  });
  const gh = node.gatehouse;
  if (node.stateDescription) out.write(`${node.stateDescription}\n`);
  out.write(`Gatehouse ${VERSION} serving ${gh.workspace.workspace.name} at ${node.http.url}\npolicy version ${gh.policyVersion}\n`);
  // The PostgreSQL wire protocol (psql, JDBC, BI tools): the same path, the same decisions.
  const wire = node.wire;
  if (wire) out.write(`PostgreSQL wire protocol on ${host}:${wire.port} (psql: see README "Connect psql")\n`);
  if (node.residency) out.write(`node-to-node (residency) listener on port ${node.residency.port}\n`);
  if (keys && !values.quiet) {
    out.write(`\nDemo principals (API keys in ${DEMO_DIR}/demo-keys.json, passwords in ${DEMO_DIR}/demo-passwords.json):\n`);
    const roles: Record<string, string> = { rhea: 'research contractor — must sign in with MFA; purpose research: every dataset through differential privacy', ivan: 'insurer (us-east) — own region, SSNs masked, purpose claims-processing', ada: 'internal analyst — row level, identifiers masked, purpose operations', audrey: 'auditor — reads the audit log', olivia: 'data owner — approves elevation requests' };
    for (const [p, k] of Object.entries(keys)) out.write(`  ${p.padEnd(7)} ${passwords[p] ? `password ${passwords[p]} (API key refused: MFA required)` : k}   ${roles[p] ?? ''}\n`);
    out.write(`\nTry it:\n  npx --no gatehouse query --key ${keys.ivan} --purpose claims-processing "SELECT name, ssn, region FROM patients LIMIT 5"\n`);
    if (wire) {
      out.write(`  # the same through psql: a connection password, then the purpose as a connection option\n`);
      out.write(`  eval "$(npx --no gatehouse pg-password --key ${keys.ivan} | grep ^export)"; PGOPTIONS="-c gatehouse.purpose=claims-processing" psql -h 127.0.0.1 -p ${wire.port} -d gatehouse\n`);
    }
    if (passwords.rhea) {
      out.write(`  # the contractor enrols an authenticator, then signs in with password + code:\n`);
      out.write(`  SECRET=$(npx --no gatehouse mfa enrol --principal rhea --password ${passwords.rhea} --json | npx node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).secret))')\n`);
      out.write(`  npx --no gatehouse mfa confirm --principal rhea --password ${passwords.rhea} --code $(npx --no gatehouse mfa code --secret $SECRET)\n`);
      out.write(`  export GATEHOUSE_API_KEY=$(npx --no gatehouse login --principal rhea --password ${passwords.rhea} --code $(npx --no gatehouse mfa code --secret $SECRET --next) --token-only)\n`);
      out.write(`  npx --no gatehouse query --purpose research "SELECT diagnosis, count(*) AS encounters, avg(cost) AS avg_cost FROM encounters GROUP BY diagnosis ORDER BY encounters DESC"\n`);
    }
  }
  if (!values.quiet) out.write(`\n${keys ? 'Start over (server stopped): npx --no gatehouse demo reset. ' : ''}Editing the workspace reloads it; Ctrl-C (or SIGTERM) drains requests in flight and stops.\n`);
  await serveUntilSignal(node, { drainMs, notify: (line) => out.write(`${line}\n`) });
  out.write('stopped\n');
  return 0;
}

/** Each command's runner; the governance groups share one (src/cli/governance.ts). */
const RUNNERS: Readonly<Record<string, (argv: string[], out: Out) => Promise<number>>> = {
  serve: cmdServe, validate: cmdValidate, query: cmdQuery, datasets: cmdDatasets, policy: cmdPolicy, audit: cmdAudit,
  witness: cmdWitness, login: cmdLogin, logout: cmdLogout, 'pg-password': cmdPgPassword, results: cmdResults, ingest: cmdIngest,
  mfa: cmdMfa, user: cmdUser, access: cmdAccess, elevation: cmdElevation, admin: cmdAdmin, demo: cmdDemo,
  node: async (argv, out) => (await import('./node.ts')).nodeCommand(argv, out),
  residency: async (argv, out) => (await import('./residency.ts')).residencyCommand(argv, out),
  activity: async (argv, out) => (await import('./activity.ts')).cmdActivity(argv, out),
  trace: async (argv, out) => (await import('./trace.ts')).cmdTrace(argv, out),
  drill: async (argv, out) => (await import('./drill.ts')).cmdDrill(argv, out),
  job: async (a, o) => (await import('./job.ts')).jobCommand(a, o),
  airlock: async (a, o) => (await import('./airlock.ts')).airlockCommand(a, o),
  erasure: async (a, o) => (await import('./erasure.ts')).erasureCommand(a, o),
  bundle: async (a, o) => (await import('./bundle.ts')).bundleCommand(a, o),
  cleanroom: async (argv, out) => (await import('./cleanroom.ts')).cleanroomCommand(argv, out),
  fl: async (argv, out) => (await import('./fl.ts')).flCommand(argv, out),
};

const isHelpFlag = (a: string): boolean => a === '--help' || a === '-h';

export async function main(argv: string[], out: Out = process.stdout): Promise<number> {
  const [cmd, ...rest] = argv;
  // `--` ends the options: an SQL text or a value after it may contain "--help".
  const flags = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  const json = flags.includes('--json');
  try {
    if (cmd === undefined || isHelpFlag(cmd) || cmd === 'help') { out.write(`${HELP}\n`); return EXIT.ok; }
    if (cmd === '--version' || cmd === '-v') { out.write(`${VERSION}\n`); return EXIT.ok; }
    if ((GOVERNANCE_GROUPS as readonly string[]).includes(cmd)) return await (await import('./governance.ts')).governanceCommand(cmd, rest, out);
    const run = RUNNERS[cmd];
    if (!run) {
      const { closest } = await import('./suggest.ts');
      const near = closest(cmd, [...Object.keys(RUNNERS), ...GOVERNANCE_GROUPS]);
      throw new UsageError(`unknown command "${cmd}"`, { hint: near ? `did you mean "gatehouse ${near}"? (gatehouse --help lists the commands)` : 'gatehouse --help lists the commands' });
    }
    if (flags.some(isHelpFlag)) {
      const sub = rest[0] !== undefined && !rest[0].startsWith('-') ? rest[0] : undefined;
      out.write(commandHelp(cmd, sub)!);
      return EXIT.ok;
    }
    return await run(rest, out);
  } catch (err) {
    return reportError(out, err, { json, command: cmd ?? '' });
  }
}
