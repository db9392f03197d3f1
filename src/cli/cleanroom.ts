/**
 * `gatehouse cleanroom create|invite|join|contribute|rules|approve|query|psi|leave|list|demo`
 *
 * Each sub-command is one call to the node's clean-room routes (src/server/cleanroom-routes.ts;
 * --url, default http://127.0.0.1:7480, or GATEHOUSE_URL; --key or GATEHOUSE_API_KEY), where
 * the node audits it. `demo` starts three served bank nodes on this machine (each its own
 * process, node key, policy, engine, log and governance; src/cleanroom/served-cluster.ts),
 * records on the compute node the agreements its deliveries need (each result lands in the
 * receiving members' partner workspaces first, issue 23) and walks through docs/cleanrooms.md.
 *
 *   gatehouse cleanroom create --id fraud-ring --name "Shared fraud rings" --purpose fraud-detection
 *   gatehouse cleanroom invite fraud-ring --node bank-b --abilities query,receive,approve
 *   gatehouse cleanroom join fraud-ring
 *   gatehouse cleanroom contribute fraud-ring --table a_accounts --dataset accounts --columns account_key:VARCHAR,... --rule rule.json
 *   gatehouse cleanroom query fraud-ring --sql "SELECT …"      (or --template NAME --param V …)
 *   gatehouse cleanroom psi fraud-ring --table a_accounts --column account_key --peer-table b_accounts --mode cardinality
 */
import { existsSync, readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CommandSpec, OptionTable } from './commands.ts';
import { errorFromBody, UsageError } from './exit.ts';

type Out = NodeJS.WritableStream;

const CLIENT: OptionTable = {
  key: { type: 'string', arg: 'KEY', help: 'API key or session token of a node administrator (or GATEHOUSE_API_KEY)' },
  url: { type: 'string', arg: 'URL', help: 'the node to call (default http://127.0.0.1:7480, or GATEHOUSE_URL)' },
  json: { type: 'boolean', help: 'machine-readable output (errors too, on stderr)' },
};

export const CLEANROOM_COMMAND: CommandSpec = {
  summary: 'Clean rooms between organisations: collaborations, analysis rules, PSI (docs/cleanrooms.md).',
  usage: ['gatehouse cleanroom <sub> [ID] [options]'],
  subs: {
    create: 'gatehouse cleanroom create --name TEXT --purpose P [--id ID] [--require-attestation FILE.json]',
    invite: 'gatehouse cleanroom invite ID --node NODE --abilities query,receive,approve   (signed with this node\'s key)',
    join: 'gatehouse cleanroom join ID   (accept the invitation this node received)',
    contribute: 'gatehouse cleanroom contribute ID --table T --dataset D --columns c:TYPE,… --rule FILE.json',
    rules: 'gatehouse cleanroom rules ID --table T --rule FILE.json | --template NAME --text FILE.sql',
    approve: 'gatehouse cleanroom approve ID --template NAME [--hash sha256:…]',
    query: 'gatehouse cleanroom query ID --sql TEXT | --template NAME [--param V …]',
    psi: 'gatehouse cleanroom psi ID --table T --column C --peer-table PT [--mode cardinality|intersection|sum] [--value-column V]',
    leave: 'gatehouse cleanroom leave ID   (the creator ends it)',
    list: 'gatehouse cleanroom list [ID]',
    demo: 'gatehouse cleanroom demo [--accounts N] [--dir DIR]   (three served bank nodes on this machine)',
    measurement: 'gatehouse cleanroom measurement   (the local sandbox attester\'s measurement, for --require-attestation; no server)',
  },
  options: {
    id: { type: 'string', arg: 'ID', help: 'create: the collaboration id' },
    name: { type: 'string', arg: 'TEXT', help: 'create: a name' },
    purpose: { type: 'string', arg: 'P', help: 'create: the purpose every member\'s policy is asked about' },
    'require-attestation': { type: 'string', arg: 'FILE', help: 'create: members release columns only to a compute node attested as this JSON says: {format, measurements, pcrs?, maxAgeSeconds?}' },
    node: { type: 'string', arg: 'NODE', help: 'invite: the pinned node to invite' },
    abilities: { type: 'string', arg: 'LIST', help: 'invite: query, receive, approve (comma-separated)' },
    table: { type: 'string', arg: 'T', help: 'the table name inside the collaboration' },
    dataset: { type: 'string', arg: 'D', help: 'contribute: this node\'s dataset it is read from' },
    columns: { type: 'string', arg: 'LIST', help: 'contribute: name:TYPE pairs, comma-separated' },
    rule: { type: 'string', arg: 'FILE', help: 'contribute, rules: the analysis rule (JSON)' },
    template: { type: 'string', arg: 'NAME', help: 'rules: propose; approve; query: run' },
    text: { type: 'string', arg: 'FILE', help: 'rules --template: the template\'s SQL' },
    hash: { type: 'string', arg: 'HASH', help: 'approve: the template hash you reviewed (default: its current one)' },
    sql: { type: 'string', arg: 'TEXT', help: 'query: the analysis' },
    param: { type: 'string', multiple: true, arg: 'V', help: 'query --template: $1, $2, … in order' },
    column: { type: 'string', arg: 'C', help: 'psi: this node\'s join column' },
    'peer-table': { type: 'string', arg: 'PT', help: 'psi: the other member\'s table' },
    mode: { type: 'string', arg: 'MODE', help: 'psi: cardinality (default), intersection or sum' },
    'value-column': { type: 'string', arg: 'V', help: 'psi --mode sum: the peer column summed' },
    accounts: { type: 'string', arg: 'N', help: 'demo: accounts per bank (default 2000)' },
    dir: { type: 'string', arg: 'DIR', help: 'demo: a new or empty directory where the three nodes keep their state (default: a temporary directory, removed after)' },
    ...CLIENT,
  },
  more: 'Every step is audited on the node that makes it, and on each member whose data it touches.',
};

function options(): ParseArgsConfig['options'] {
  return Object.fromEntries(Object.entries(CLEANROOM_COMMAND.options).map(([k, v]) => [k, { type: v.type, ...(v.multiple ? { multiple: true } : {}), ...(v.short ? { short: v.short } : {}) }]));
}

function usage(message: string): UsageError {
  return new UsageError(message, { hint: 'gatehouse cleanroom --help' });
}

async function call<T>(values: Record<string, any>, method: string, path: string, body?: unknown): Promise<T> {
  const url = values.url ?? process.env.GATEHOUSE_URL ?? 'http://127.0.0.1:7480';
  const key = values.key ?? process.env.GATEHOUSE_API_KEY;
  const res = await fetch(new URL(path, url), {
    method, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(600_000),
  });
  const parsed = await res.json().catch(() => ({})) as { error?: { code?: unknown; message?: unknown; hint?: unknown; reasons?: unknown } };
  if (!res.ok) throw errorFromBody(parsed.error, res.status);
  return parsed as T;
}

function need(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw usage(`give ${what}`);
  return v;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(resolve(file), 'utf8'));
  } catch (err) {
    throw usage(`${file} is not a readable JSON file (${(err as Error).message})`);
  }
}

function columnsOf(list: string): { name: string; type: string }[] {
  return list.split(',').map((p) => {
    const [name, type] = p.split(':');
    if (!name || !type) throw usage(`--columns takes name:TYPE pairs ("${p}" is not one)`);
    return { name: name.trim(), type: type.trim().toUpperCase() };
  });
}

export async function cleanroomCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || !CLEANROOM_COMMAND.subs![sub]) throw usage(sub === undefined ? `give a sub-command: ${Object.keys(CLEANROOM_COMMAND.subs!).join(', ')}` : `unknown sub-command "cleanroom ${sub}"`);
  const { values, positionals } = parseArgs({ args: rest, options: options(), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  const id = positionals[0];
  const cid = (): string => encodeURIComponent(need(id, 'the collaboration id'));
  let res: unknown;
  switch (sub) {
    case 'create':
      res = await call(values, 'POST', '/v1/cleanrooms', {
        ...(values.id ? { id: values.id } : {}), name: need(values.name, '--name'), purpose: need(values.purpose, '--purpose'),
        ...(values['require-attestation'] ? { compute: { requireAttestation: readJson(values['require-attestation']) } } : {}),
      });
      break;
    case 'invite':
      res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/invitations`, { node: need(values.node, '--node'), abilities: need(values.abilities, '--abilities').split(',').map((a: string) => a.trim()) });
      break;
    case 'join': res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/join`); break;
    case 'contribute':
      res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/contributions`, { table: need(values.table, '--table'), dataset: need(values.dataset, '--dataset'), columns: columnsOf(need(values.columns, '--columns')), rule: readJson(need(values.rule, '--rule')) });
      break;
    case 'rules':
      if (values.template) res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/templates`, { name: values.template, text: readFileSync(resolve(need(values.text, '--text')), 'utf8') });
      else res = await call(values, 'PUT', `/v1/cleanrooms/${cid()}/rules/${encodeURIComponent(need(values.table, '--table'))}`, { rule: readJson(need(values.rule, '--rule')) });
      break;
    case 'approve':
      res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/templates/${encodeURIComponent(need(values.template, '--template'))}/approve`, values.hash ? { hash: values.hash } : {});
      break;
    case 'query':
      if (!values.sql && !values.template) throw usage('give --sql or --template');
      res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/queries`, { ...(values.sql ? { sql: values.sql } : {}), ...(values.template ? { template: values.template } : {}), ...(values.param ? { params: values.param } : {}) });
      break;
    case 'psi':
      res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/psi`, {
        table: need(values.table, '--table'), column: need(values.column, '--column'), peerTable: need(values['peer-table'], '--peer-table'),
        mode: values.mode ?? 'cardinality', ...(values['value-column'] ? { valueColumn: values['value-column'] } : {}),
      });
      break;
    case 'leave': res = await call(values, 'POST', `/v1/cleanrooms/${cid()}/leave`); break;
    case 'list': res = id ? await call(values, 'GET', `/v1/cleanrooms/${cid()}`) : await call(values, 'GET', '/v1/cleanrooms'); break;
    case 'demo': return demo(values, out);
    case 'measurement': {
      const { sandboxMeasurement } = await import('../cleanroom/compute-attester.ts');
      res = { format: 'sample', measurement: sandboxMeasurement() };
      break;
    }
    default: throw usage(`unknown sub-command "cleanroom ${sub}"`);
  }
  out.write(`${JSON.stringify(res, null, 2)}\n`);
  return 0;
}

/** The three-bank walkthrough of docs/cleanrooms.md, on three local nodes. */
async function demo(values: Record<string, any>, out: Out): Promise<number> {
  const { startServedBanks } = await import('../cleanroom/served-cluster.ts');
  const { ACCOUNT_COLUMNS, CLEANROOM_PURPOSE } = await import('../cleanroom/demo-bank.ts');
  const accounts = Number(values.accounts ?? 2000);
  if (!Number.isInteger(accounts) || accounts < 1000 || accounts > 1_000_000) throw usage('--accounts is a whole number from 1,000 to 1,000,000');
  // Each run makes fresh nodes (new keys, agreements and vault passphrase), so --dir must not hold an earlier run's.
  if (values.dir && existsSync(resolve(values.dir)) && readdirSync(resolve(values.dir)).length > 0) throw usage(`--dir ${values.dir} is not empty: give a new or empty directory for the demo's three nodes`);
  const dir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'gatehouse-cleanroom-demo-'));
  const step = (s: string): void => { out.write(`\n▶ ${s}\n`); };
  const show = (v: unknown): void => { out.write(`${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}\n`); };
  step(`starting three served bank nodes (${accounts} accounts each) under ${dir}`);
  const cl = await startServedBanks(dir, ['bank-a', 'bank-b', 'bank-c'].map((nodeId) => ({ nodeId, accounts, offset: Math.floor(accounts / 2) })));
  try {
    for (const n of cl.nodes) show(`${n.nodeId}: node key ${n.publicKey}, node-to-node ${n.nodeUrl}, API ${n.httpUrl}`);
    const ok = async (node: string, method: string, path: string, body?: unknown): Promise<any> => {
      const r = await cl.node(node).call(method, path, body);
      if (r.status !== 200) throw errorFromBody(r.body.error, r.status);
      return r.body;
    };
    const refusal = async (node: string, method: string, path: string, body?: unknown, withHint = false): Promise<string> => {
      const r = await cl.node(node).call(method, path, body);
      if (r.status === 200) return 'allowed (unexpected)';
      return `refused ${r.body.error.code}: ${r.body.error.message}${withHint && r.body.error.hint ? `\n  what to do: ${r.body.error.hint}` : ''}`;
    };
    step('bank-a creates the collaboration and invites bank-b and bank-c (signed invitations)');
    await ok('bank-a', 'POST', '/v1/cleanrooms', { id: 'fraud-ring', name: 'Shared fraud rings', purpose: 'fraud-detection' });
    await ok('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/invitations', { node: 'bank-b', abilities: ['query', 'receive', 'approve'] });
    await ok('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/invitations', { node: 'bank-c', abilities: ['query', 'receive', 'approve'] });
    step('bank-b and bank-c verify the invitations against bank-a\'s pinned key and join');
    await ok('bank-b', 'POST', '/v1/cleanrooms/fraud-ring/join');
    const joined = await ok('bank-c', 'POST', '/v1/cleanrooms/fraud-ring/join');
    show(joined.collaboration.members.map((m: any) => `${m.nodeId}: ${m.status}, may ${m.abilities.join('/')}`).join('\n'));
    step('each bank contributes its accounts: join on hashed account keys only, aggregates over ≥ 25 distinct customers');
    const rule = { kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'], aggregateColumns: [{ column: 'exposure', functions: ['sum', 'avg', 'count'] }], scalarFunctions: ['round'], joinRequired: true, privacyUnit: 'customer_id', minDistinctUnits: 25 };
    for (const b of ['a', 'b', 'c']) await ok(`bank-${b}`, 'POST', '/v1/cleanrooms/fraud-ring/contributions', { table: `${b}_accounts`, dataset: 'accounts', columns: ACCOUNT_COLUMNS, rule });
    step('PSI: how many accounts do bank-a and bank-b share? (neither learns which)');
    const card = await ok('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/psi', { table: 'a_accounts', column: 'account_key', peerTable: 'b_accounts', mode: 'cardinality' });
    show(`shared accounts: ${card.cardinality} (bytes ${card.bytesSent} sent, ${card.bytesReceived} received)`);
    step('intersection-sum: bank-b\'s total exposure on those shared accounts (Paillier; bank-a never sees a single value)');
    const sum = await ok('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/psi', { table: 'a_accounts', column: 'account_key', peerTable: 'b_accounts', mode: 'sum', valueColumn: 'exposure' });
    show(`shared accounts: ${sum.cardinality}, total exposure at bank-b: ${sum.sum}`);
    const ANALYSIS = 'SELECT a.segment, count(*) AS accounts, sum(b.exposure) AS exposure FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key WHERE b.flagged GROUP BY a.segment ORDER BY a.segment';
    step('the compute node (bank-a) puts each result in every receiving member\'s partner workspace first: without an agreement with bank-b and bank-c, nothing is delivered');
    show(await refusal('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/queries', { sql: ANALYSIS }, true));
    step(`bank-a registers bank-b and bank-c as partner organisations and records an agreement with each: its accounts, for ${CLEANROOM_PURPOSE}, results kept 30 days`);
    for (const member of ['bank-b', 'bank-c']) {
      await ok('bank-a', 'POST', '/v1/governance/vendors', { name: member });
      const { agreement } = await ok('bank-a', 'POST', '/v1/governance/agreements', {
        kind: 'DPA', title: `Fraud-ring clean room: bank-a and ${member}`, partner: member, effectiveFrom: new Date().toISOString(), endsOn: null,
        datasets: ['accounts'], purposes: [CLEANROOM_PURPOSE], resultRetentionDays: 30,
      });
      show(`${member}: agreement ${agreement.id} (${agreement.kind}), datasets ${agreement.datasets.join(', ')}, purposes ${agreement.purposes.join(', ')}`);
    }
    step('an analysis on the compute node (bank-a): exposure at bank-b of accounts bank-b flagged, by bank-a\'s segment');
    const q = await ok('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/queries', { sql: ANALYSIS });
    show(q.rows.map((r: unknown[]) => r.join('\t')).join('\n'));
    show(`groups withheld (fewer than 25 customers, or to protect them): ${q.rowsSuppressed}; result ${q.resultDigest}`);
    step('the result was deposited in bank-b\'s and bank-c\'s partner workspaces on bank-a before it was delivered');
    for (const member of ['bank-b', 'bank-c']) {
      const { items } = await ok('bank-a', 'GET', `/v1/governance/workspace?org=${member}`);
      const item = (items as { id: string; item: string; name: string; expiresAt: string | null; source: string }[]).find((i) => i.item === 'room-result' && i.source === `cleanroom:fraud-ring/${q.queryId}`);
      show(item ? `${member}: ${item.item} ${item.id} (${item.name}), expires ${item.expiresAt ?? 'never'}` : `${member}: no deposit (unexpected)`);
    }
    step('rules hold: projecting the join column, and a table alone');
    show(await refusal('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/queries', { sql: 'SELECT a.account_key, count(*) FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.account_key' }));
    show(await refusal('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/queries', { sql: 'SELECT segment, count(*) FROM a_accounts GROUP BY segment' }));
    step('bank-a verifies bank-b\'s receipt for releasing its columns, from bank-b\'s own transparency log');
    const receipt = await ok('bank-a', 'GET', `/v1/cleanrooms/fraud-ring/receipts/bank-b/${q.receipts['bank-b']}`);
    show(`verified: ${receipt.verified}; bank-b log entry #${receipt.index}: ${receipt.entry.action}, columns ${receipt.entry.columns.join(', ')}`);
    step('bank-c leaves: its table is gone from the next analysis at once');
    await ok('bank-c', 'POST', '/v1/cleanrooms/fraud-ring/leave');
    show(await refusal('bank-a', 'POST', '/v1/cleanrooms/fraud-ring/queries', { sql: 'SELECT a.segment, count(*) FROM a_accounts a JOIN c_accounts c ON a.account_key = c.account_key GROUP BY a.segment' }));
    step('done; stopping the three nodes');
  } finally {
    await cl.stop();
    if (!values.dir) rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
