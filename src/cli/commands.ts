/**
 * The commands of `gatehouse` as data: each command's usage, sub-commands and option table.
 *
 * The option table is what the command parses (node:util parseArgs) AND what its `--help`
 * prints, so an option cannot be parsed without being documented, nor documented without
 * being parsed (test/cli-help.test.ts walks every command and sub-command). The governance
 * commands (vendor, agreement, …) derive theirs from the governance op table
 * (src/cli/governance.ts).
 */
import type { ParseArgsConfig } from 'node:util';
import { EXIT_CODES_HELP } from './exit.ts';
import { CLEANROOM_COMMAND } from './cleanroom.ts';

export const DEFAULT_PORT = 7480;
/** The demo's PostgreSQL wire-protocol port (psql -h 127.0.0.1 -p 7432). */
export const DEFAULT_PG_PORT = 7432;
export const DEMO_DIR = '.gatehouse/demo';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly short?: string;
  /** The value's placeholder in help (`DIR`, `N`); booleans have none. */
  readonly arg?: string;
  readonly help: string;
}
export type OptionTable = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec {
  /** One line for `gatehouse --help`. */
  readonly summary: string;
  /** `gatehouse <command> …` lines. */
  readonly usage: readonly string[];
  /** Sub-command → its usage line(s) (commands that have sub-commands). */
  readonly subs?: Readonly<Record<string, string>>;
  readonly options: OptionTable;
  /** Paragraph after the options. */
  readonly more?: string;
}

const URL_HELP = `server to call (default http://127.0.0.1:${DEFAULT_PORT}, or GATEHOUSE_URL)`;

const CLIENT: OptionTable = {
  key: { type: 'string', arg: 'KEY', help: 'API key or session token (or GATEHOUSE_API_KEY)' },
  url: { type: 'string', arg: 'URL', help: URL_HELP },
  workspace: { type: 'string', arg: 'DIR', help: 'run in-process on a workspace instead of calling a server' },
  'audit-dir': { type: 'string', arg: 'DIR', help: 'with --workspace: the transparency log directory (default DIR/audit)' },
  json: { type: 'boolean', help: 'machine-readable output (errors too, on stderr)' },
};

const AUTH: OptionTable = {
  principal: { type: 'string', arg: 'ID', help: 'the built-in user' },
  password: { type: 'string', arg: 'PW', help: 'the password (or GATEHOUSE_PASSWORD)' },
  code: { type: 'string', arg: 'CODE', help: 'the current TOTP code from the authenticator' },
  key: CLIENT.key!, url: CLIENT.url!, workspace: CLIENT.workspace!, json: CLIENT.json!,
};

export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  serve: {
    summary: 'Run the HTTP API (and the PostgreSQL wire protocol) for a workspace or the demo.',
    usage: ['gatehouse serve --demo | --workspace DIR [options]'],
    options: {
      demo: { type: 'boolean', help: `create (first run) and serve the demo workspace in ${DEMO_DIR}` },
      workspace: { type: 'string', arg: 'DIR', help: 'serve a workspace directory (gatehouse.yaml + policies + schema)' },
      host: { type: 'string', arg: 'ADDR', help: 'listen address (default 127.0.0.1; plain HTTP only on loopback)' },
      port: { type: 'string', arg: 'N', help: `HTTP port (default ${DEFAULT_PORT}, or GATEHOUSE_PORT; 0 picks a free one)` },
      'pg-port': { type: 'string', arg: 'N', help: `also serve the PostgreSQL wire protocol (default ${DEFAULT_PG_PORT} with --demo, or GATEHOUSE_PG_PORT)` },
      'audit-dir': { type: 'string', arg: 'DIR', help: 'transparency log directory (default DIR/audit)' },
      'state-url': { type: 'string', arg: 'URL', help: 'shared state in PostgreSQL (or GATEHOUSE_STATE_URL; docs/state-postgres.md)' },
      'tls-cert': { type: 'string', arg: 'FILE', help: 'serve HTTPS (TLS 1.2+) with this certificate (with --tls-key)' },
      'tls-key': { type: 'string', arg: 'FILE', help: 'the private key of --tls-cert' },
      'tls-client-ca': { type: 'string', arg: 'FILE', help: 'require client certificates signed by this CA (mTLS)' },
      'insecure-http': { type: 'boolean', help: 'plain HTTP off loopback (behind a TLS-terminating proxy only)' },
      'shutdown-timeout': { type: 'string', arg: 'SECONDS', help: 'on SIGTERM/SIGINT, let requests in flight finish this long (default 10); a second signal exits at once' },
      witness: { type: 'string', multiple: true, arg: 'URL', help: 'a witness that must cosign each checkpoint before it is published (repeatable; pair each with --witness-key)' },
      'witness-key': { type: 'string', multiple: true, arg: 'VKEY', help: 'the pinned cosignature key of the --witness in the same position (gatehouse witness prints it)' },
      'witness-quorum': { type: 'string', arg: 'K', help: 'cosignatures needed (default: every witness); the demo also runs one local witness' },
      quiet: { type: 'boolean', help: 'print only the listening addresses, not the demo banner' },
      cleanroom: { type: 'boolean', help: 'serve clean-room collaborations on the node-to-node listener (a federated workspace: region: and federation: in gatehouse.yaml; docs/cleanrooms.md)' },
    },
    more: 'The workspace is re-read when its files change (or on SIGHUP): a valid change applies to the next\nrequest, an invalid one is reported and ignored. GATEHOUSE_SCHEDULER_SECONDS (default 300, 0 = off)\nsets how often retention and reports run.',
  },
  validate: {
    summary: 'Check a workspace (YAML, columns against CSV headers, masks, Cedar policies, row filters).',
    usage: ['gatehouse validate DIR [--json]'],
    options: { json: { type: 'boolean', help: 'print {ok, problems:[{file,line,message}], …} instead of text' } },
    more: 'Prints every problem with file:line; exit 1 if there is any.',
  },
  query: {
    summary: 'Run a governed query (or --estimate its privacy cost).',
    usage: ['gatehouse query "SQL" --purpose P [options]', 'gatehouse query -f FILE.sql --purpose P', 'echo "SQL" | gatehouse query - --purpose P'],
    options: {
      purpose: { type: 'string', arg: 'P', help: 'why you query (research, claims-processing, …); decided by policy' },
      file: { type: 'string', short: 'f', arg: 'FILE', help: 'read the SQL from a file ("-" for stdin)' },
      format: { type: 'string', arg: 'table|csv|tsv|json', help: 'how rows are printed (default table; csv/tsv/json print only the rows, governance goes to stderr)' },
      estimate: { type: 'boolean', help: 'show the decision, cost (ε) and accuracy without running; exit 3 if it does not fit the budget' },
      save: { type: 'boolean', help: 'keep the result encrypted (gatehouse results get ID); ending the agreement destroys it' },
      ...CLIENT,
      json: { type: 'boolean', help: 'print the full response {columns, rows, intervals, governance}' },
    },
  },
  activity: {
    summary: 'Who is accessing data now, under what conditions, for what purpose, and what they took (docs/monitoring.md).',
    usage: ['gatehouse activity [--minutes N] [--watch] [--json] [--url URL] [--key KEY]'],
    options: { minutes: { type: 'string', arg: 'N', help: '"recent" means the last N minutes (default: the workspace\'s monitoring.recentMinutes)' }, watch: { type: 'boolean', help: 'then follow requests and alerts live (server-sent events)' }, key: CLIENT.key!, url: CLIENT.url!, json: CLIENT.json! },
  },
  drill: {
    summary: 'Run an incident-response drill on a throwaway demo and print its timeline (docs/monitoring.md).',
    usage: ['gatehouse drill exfiltration [--patients N] [--json]'],
    options: { patients: { type: 'string', arg: 'N', help: 'size of the throwaway demo (default 400 patients)' }, json: CLIENT.json! },
  },
  trace: {
    summary: 'Name the partner, query and audit entry that most likely released a leaked extract (docs/monitoring.md).',
    usage: ['gatehouse trace FILE [--json] [--url URL] [--key KEY]'],
    options: { key: CLIENT.key!, url: CLIENT.url!, json: CLIENT.json! },
  },
  datasets: {
    summary: 'List the datasets you may query and how you will see each column.',
    usage: ['gatehouse datasets [--purpose P] [options]'],
    options: { purpose: { type: 'string', arg: 'P', help: 'only what this purpose allows' }, ...CLIENT },
  },
  policy: {
    summary: 'Show a workspace\'s policies, or test a decision.',
    usage: ['gatehouse policy show DIR [--json]', 'gatehouse policy test DIR --principal ID --dataset NAME --purpose P [--source IP] [--time ISO] [--json]', 'gatehouse policy whatif --draft DIR [--workspace DIR] [--days N] [--json] [--acknowledge --as ADMIN --signing-key FILE]'],
    subs: { show: 'gatehouse policy show DIR [--json]\n  the policies, their obligations and the policy version', test: 'gatehouse policy test DIR --principal ID --dataset NAME --purpose P [--source IP] [--time ISO] [--json]\n  the decision, determining policies, reasons and obligations; exit 3 on DENY', whatif: 'gatehouse policy whatif --draft DIR [--workspace DIR] [--audit-dir DIR] [--days N] [--json] [--acknowledge --as ADMIN --signing-key FILE]\n  replays the logged requests of the last N days under the draft: what changes per principal and dataset, policy analysis,\n  regulated columns newly unmasked (exit 3 when there are any); --acknowledge signs them as an administrator (docs/policy-whatif.md)' },
    options: {
      draft: { type: 'string', arg: 'DIR', help: 'whatif: the draft workspace to replay under' },
      workspace: { type: 'string', arg: 'DIR', help: `whatif: the workspace in force, not being served (default ${DEMO_DIR})` },
      'audit-dir': { type: 'string', arg: 'DIR', help: 'whatif: its transparency log (default DIR/audit)' },
      days: { type: 'string', arg: 'N', help: 'whatif: how many days of logged requests to replay (default 30)' },
      acknowledge: { type: 'boolean', help: 'whatif: sign the draft\'s regulated widenings as intended (writes DRAFT/acknowledgements/)' },
      as: { type: 'string', arg: 'ADMIN', help: 'whatif --acknowledge: the administrator signing' },
      'signing-key': { type: 'string', arg: 'FILE', help: 'whatif --acknowledge: the administrator\'s Ed25519 private key (PEM)' },
      principal: { type: 'string', arg: 'ID', help: 'test: the principal' },
      dataset: { type: 'string', arg: 'NAME', help: 'test: the dataset' },
      purpose: { type: 'string', arg: 'P', help: 'test: the declared purpose' },
      source: { type: 'string', arg: 'IP', help: 'test: the source address (default 127.0.0.1)' },
      time: { type: 'string', arg: 'ISO', help: 'test: the time of the request (default now)' },
      json: { type: 'boolean', help: 'machine-readable output' },
    },
  },
  login: {
    summary: 'Sign in a built-in user (password + TOTP code); prints the session token.',
    usage: ['gatehouse login --principal ID --password PW [--code CODE] [--token-only]'],
    options: { ...AUTH, 'token-only': { type: 'boolean', help: 'print only the token (GATEHOUSE_API_KEY=$(gatehouse login … --token-only))' } },
  },
  logout: {
    summary: 'Revoke a session token (and the connection passwords it issued).',
    usage: ['gatehouse logout [--key TOKEN]'],
    options: { key: CLIENT.key!, url: CLIENT.url!, workspace: CLIENT.workspace!, json: CLIENT.json! },
  },
  'pg-password': {
    summary: 'A password for psql/JDBC/BI tools on the wire-protocol port (shown once).',
    usage: ['gatehouse pg-password [--key CREDENTIAL] [--url URL | --workspace DIR] [--json]'],
    options: { ...AUTH },
  },
  results: {
    summary: 'Your saved results (query --save), encrypted at rest.',
    usage: ['gatehouse results list|get ID [options]'],
    subs: { list: 'gatehouse results list [options]', get: 'gatehouse results get ID [options]' },
    options: { ...CLIENT },
  },
  ingest: {
    summary: 'Store a CSV/Parquet file encrypted under its own data key.',
    usage: ['gatehouse ingest --workspace DIR --dataset NAME FILE.csv|FILE.parquet [--out PATH]'],
    options: {
      workspace: { type: 'string', arg: 'DIR', help: 'the workspace whose state directory holds the key' },
      dataset: { type: 'string', arg: 'NAME', help: 'the dataset name' },
      out: { type: 'string', arg: 'PATH', help: 'where to write (default DIR/datasets/NAME.ghd)' },
    },
    more: 'Point the dataset at it with source: { encrypted: PATH } (crypto-shred with gatehouse keys shred-dataset).',
  },
  mfa: {
    summary: 'Enrol an authenticator (TOTP), or compute a code like oathtool.',
    usage: ['gatehouse mfa enrol|confirm --principal ID --password PW [--code CODE]', 'gatehouse mfa code --secret SECRET [--next]'],
    subs: {
      enrol: 'gatehouse mfa enrol --principal ID --password PW [--json]\n  prints the secret and otpauth URI',
      confirm: 'gatehouse mfa confirm --principal ID --password PW --code CODE\n  activates MFA and prints single-use recovery codes',
      code: 'gatehouse mfa code --secret SECRET [--next]\n  the current (or next) TOTP code for a secret',
    },
    options: { ...AUTH, secret: { type: 'string', arg: 'SECRET', help: 'code: the Base32 secret from "mfa enrol"' }, next: { type: 'boolean', help: 'code: the next 30-second window\'s code' } },
  },
  user: {
    summary: 'Create a built-in user for a workspace principal (in-process; audited).',
    usage: ['gatehouse user create --workspace DIR --principal ID --password PW'],
    subs: { create: 'gatehouse user create --workspace DIR --principal ID --password PW' },
    options: { workspace: CLIENT.workspace!, principal: AUTH.principal!, password: AUTH.password! },
  },
  access: {
    summary: 'Access review: each principal\'s effective access and grants unused for N days.',
    usage: ['gatehouse access review --workspace DIR [--days 90] [--json]'],
    subs: { review: 'gatehouse access review --workspace DIR [--days 90] [--json]\n  run it where the log lives, not while a server holds the log' },
    options: { workspace: CLIENT.workspace!, 'audit-dir': CLIENT['audit-dir']!, days: { type: 'string', arg: 'N', help: 'unused after N days (default 90)' }, json: CLIENT.json! },
  },
  elevation: {
    summary: 'Privileged access: request a role for a time window; someone else approves.',
    usage: ['gatehouse elevation request|approve|deny|break-glass|list [options]'],
    subs: {
      request: 'gatehouse elevation request --role R --purpose P --minutes N --justification TEXT',
      approve: 'gatehouse elevation approve ID   (an approver of the role, never the requester)',
      deny: 'gatehouse elevation deny ID [--reason TEXT]',
      'break-glass': 'gatehouse elevation break-glass --role R --justification TEXT   (immediate; raises an alert)',
      list: 'gatehouse elevation list',
    },
    options: {
      role: { type: 'string', arg: 'R', help: 'the privileged role' }, purpose: { type: 'string', arg: 'P', help: 'the purpose it is for' },
      minutes: { type: 'string', arg: 'N', help: 'how long (default 60)' }, justification: { type: 'string', arg: 'TEXT', help: 'why (audited)' },
      reason: { type: 'string', arg: 'TEXT', help: 'deny: why' }, key: CLIENT.key!, url: CLIENT.url!, workspace: CLIENT.workspace!, json: CLIENT.json!,
    },
  },
  job: {
    summary: 'Code-to-data jobs: sign, mock, submit, approve, run (docs/code-to-data.md).',
    usage: ['gatehouse job <sub> [options]'],
    subs: {
      keygen: 'gatehouse job keygen --out DIR   (partner: an Ed25519 signing key, encrypted under GATEHOUSE_JOB_KEY_PASSPHRASE)',
      sign: 'gatehouse job sign --manifest M.json --code JOB.js --key-file DIR/signing.key.pem --signer KEY_ID --out BUNDLE.json',
      'signer-add': 'gatehouse job signer-add --key-id ID --org ORG --public-key PUB.pem   (data owners)',
      submit: 'gatehouse job submit BUNDLE.json',
      mock: 'gatehouse job mock --manifest M.json --code JOB.js [--mock-data FILE | --rows N] [--params JSON]   (--mock-data: offline, no server)',
      'mock-publish': 'gatehouse job mock-publish --datasets a,b [--rows N] --out FILE   (data owners: mock rows for offline development)',
      approve: 'gatehouse job approve JOB_ID --code-hash H --datasets a,b --purpose P --principal ID [--measurement PCR0]...   (data owners)',
      run: 'gatehouse job run JOB_ID [--params JSON]   (progress on stderr; outputs are held for the airlock)',
      status: 'gatehouse job status [JOB_ID]',
      logs: 'gatehouse job logs RUN_ID   (data owners)',
      'demo-setup': 'gatehouse job demo-setup [DIR]   (adds scenario 3\'s job principal, output checker and partner engineer to the demo workspace; prints their keys)',
    },
    options: {
      out: { type: 'string', arg: 'PATH', help: 'keygen: the key directory; sign: the bundle file; mock-publish: the mock data file' },
      manifest: { type: 'string', arg: 'FILE', help: 'sign, mock: the manifest (JSON)' },
      code: { type: 'string', arg: 'FILE', help: 'sign, mock: the job module (JavaScript)' },
      'key-file': { type: 'string', arg: 'PEM', help: 'sign: the partner signing key' },
      signer: { type: 'string', arg: 'KEY_ID', help: 'sign: the key id the data owner registered' },
      'key-id': { type: 'string', arg: 'ID', help: 'signer-add: the key id' },
      org: { type: 'string', arg: 'ORG', help: 'signer-add: the partner organisation' },
      'public-key': { type: 'string', arg: 'FILE', help: 'signer-add: the partner public key (PEM)' },
      'code-hash': { type: 'string', arg: 'H', help: 'approve: the code hash you reviewed' },
      datasets: { type: 'string', arg: 'a,b', help: 'approve, mock-publish: the datasets' },
      purpose: { type: 'string', arg: 'P', help: 'approve: the purpose (as the manifest declares)' },
      principal: { type: 'string', arg: 'ID', help: 'approve: the principal the job reads as' },
      measurement: { type: 'string', multiple: true, arg: 'HEX', help: 'approve: an enclave measurement (PCR0) allowed to receive keys (repeatable)' },
      params: { type: 'string', arg: 'JSON', help: 'mock, run: parameter values' },
      rows: { type: 'string', arg: 'N', help: 'mock: mock rows per input (default 200); mock-publish: rows per dataset (default 1000)' },
      'mock-data': { type: 'string', arg: 'FILE', help: 'mock: run offline on a published mock data file' },
      ...CLIENT,
    },
  },
  erasure: {
    summary: 'Erasure and consent withdrawal of one data subject, with a receipt the subject can verify (docs/erasure.md).',
    usage: ['gatehouse erasure <sub> [options]'],
    subs: {
      record: 'gatehouse erasure record --unit COLUMN --value ID [--kind erasure|opt-out] [--purpose P]… [--out FILE]   (administrators)',
      list: 'gatehouse erasure list   (administrators; never lists the subjects\' identifiers)',
      receipt: 'gatehouse erasure receipt FILE [--out FILE]   (refresh the receipt\'s log proof against the latest checkpoint)',
      verify: 'gatehouse erasure verify FILE --value ID --public-key VKEY|FILE   (offline; exit 1 when it does not verify)',
    },
    options: {
      unit: { type: 'string', arg: 'COLUMN', help: 'record: the privacy-unit column (patient_id)' },
      value: { type: 'string', arg: 'ID', help: 'record, verify: the subject\'s identifier in that column' },
      kind: { type: 'string', arg: 'erasure|opt-out', help: 'record: an erasure (every purpose, the default) or an opt-out' },
      purpose: { type: 'string', multiple: true, arg: 'P', help: 'record: with opt-out, a purpose the subject withdrew consent from (repeat or commas)' },
      out: { type: 'string', arg: 'FILE', help: 'record, receipt: write the receipt to a file' },
      'public-key': { type: 'string', multiple: true, arg: 'VKEY|FILE', help: 'verify: the log\'s public key (a vkey or a file of vkeys)' },
      ...CLIENT,
    },
  },
  airlock: {
    summary: 'The airlock: job outputs leave only after automatic checks and two reviewers (docs/code-to-data.md).',
    usage: ['gatehouse airlock <sub> [options]'],
    subs: {
      submit: 'gatehouse airlock submit RUN_ID',
      review: 'gatehouse airlock review ID --approve|--reject --reason TEXT   (reviewers; never your own)',
      release: 'gatehouse airlock release ID [--out FILE]',
      list: 'gatehouse airlock list',
    },
    options: {
      approve: { type: 'boolean', help: 'review: approve' },
      reject: { type: 'boolean', help: 'review: reject' },
      reason: { type: 'string', arg: 'TEXT', help: 'review: why' },
      out: { type: 'string', arg: 'FILE', help: 'release: write the outputs to a file' },
      ...CLIENT,
    },
  },
  bundle: {
    summary: 'Signed, encrypted bundles for air-gapped sites (docs/code-to-data.md).',
    usage: ['gatehouse bundle <sub> [options]'],
    subs: {
      keygen: 'gatehouse bundle keygen --id SITE --dir DIR   (keys encrypted under GATEHOUSE_BUNDLE_PASSPHRASE)',
      export: 'gatehouse bundle export --kind job-code|results|audit-export|mock-data --identity DIR --to PUB.json --file F... --out BUNDLE.json [--state DIR]',
      import: 'gatehouse bundle import BUNDLE.json --identity DIR --trust PUB.json... --out DIR [--state DIR]',
      verify: 'gatehouse bundle verify BUNDLE.json --trust PUB.json... [--identity DIR]',
    },
    options: {
      id: { type: 'string', arg: 'SITE', help: 'keygen: this site\'s id' },
      dir: { type: 'string', arg: 'DIR', help: 'keygen: where to write the identity' },
      identity: { type: 'string', arg: 'DIR', help: 'this site\'s identity (gatehouse bundle keygen)' },
      to: { type: 'string', arg: 'FILE', help: 'export: the recipient\'s identity.json' },
      trust: { type: 'string', multiple: true, arg: 'FILE', help: 'import, verify: a sender\'s identity.json (repeatable)' },
      kind: { type: 'string', arg: 'KIND', help: 'export: what the bundle carries' },
      file: { type: 'string', multiple: true, arg: 'FILE', help: 'export: a file to carry (repeatable)' },
      out: { type: 'string', arg: 'PATH', help: 'export: the bundle file; import: the directory for its files' },
      state: { type: 'string', arg: 'DIR', help: 'sequence ledger directory (default: the identity directory)' },
      json: { type: 'boolean', help: 'machine-readable output' },
    },
  },
  admin: {
    summary: 'Identity administration over the API (an administrator\'s --key); audited.',
    usage: ['gatehouse admin <sub> [options]'],
    subs: {
      'user-create': 'gatehouse admin user-create --principal ID --password PW', 'user-disable': 'gatehouse admin user-disable --principal ID',
      'user-enable': 'gatehouse admin user-enable --principal ID', 'mfa-reset': 'gatehouse admin mfa-reset --principal ID',
      'mfa-reset-approve': 'gatehouse admin mfa-reset-approve --principal ID', 'key-create': 'gatehouse admin key-create --principal ID --datasets a,b [--expires ISO]',
      'key-revoke': 'gatehouse admin key-revoke KEY_ID', 'key-list': 'gatehouse admin key-list --principal ID',
    },
    options: {
      principal: AUTH.principal!, password: AUTH.password!, datasets: { type: 'string', arg: 'a,b', help: 'key-create: the datasets the key may reach' },
      expires: { type: 'string', arg: 'ISO', help: 'key-create: expiry' }, key: CLIENT.key!, url: CLIENT.url!, json: CLIENT.json!,
    },
  },
  audit: {
    summary: 'Read and verify the transparency log (docs/audit.md).',
    usage: ['gatehouse audit tail|keys|export|proof|verify|verify-receipt|receipt [options]'],
    subs: {
      tail: 'gatehouse audit tail [--limit 20] [--json]', keys: 'gatehouse audit keys   (the log\'s verifier keys, one per line)',
      export: 'gatehouse audit export --output FILE [--principal ID] [--dataset D] [--decision allow|deny|error] [--purpose P] [--from ISO] [--to ISO]',
      proof: 'gatehouse audit proof --index N --size N | --first N --second N [--json]',
      verify: 'gatehouse audit verify EXPORT.jsonl --public-key VKEY [--trusted CHECKPOINT] [--save-checkpoint FILE]',
      'verify-receipt': 'gatehouse audit verify-receipt RECEIPT.json --public-key VKEY',
      receipt: 'gatehouse audit receipt AUDIT_ID [--output FILE]',
    },
    options: {
      dir: { type: 'string', arg: 'DIR', help: 'read a log directory instead of a server' }, url: CLIENT.url!, key: CLIENT.key!,
      token: { type: 'string', arg: 'KEY', help: 'same as --key' }, export: { type: 'string', arg: 'FILE', help: 'verify: the export file' },
      limit: { type: 'string', arg: 'N', help: 'tail: how many entries' }, json: CLIENT.json!, output: { type: 'string', arg: 'FILE', help: 'export/receipt: write here' },
      principal: { type: 'string', arg: 'ID', help: 'export filter' }, dataset: { type: 'string', arg: 'D', help: 'export filter' },
      decision: { type: 'string', arg: 'D', help: 'export filter: allow|deny|error' }, purpose: { type: 'string', arg: 'P', help: 'export filter' },
      from: { type: 'string', arg: 'ISO', help: 'export filter' }, to: { type: 'string', arg: 'ISO', help: 'export filter' },
      index: { type: 'string', arg: 'N', help: 'proof: inclusion of entry N' }, size: { type: 'string', arg: 'N', help: 'proof: in the tree of size N' },
      first: { type: 'string', arg: 'N', help: 'proof: consistency from size N' }, second: { type: 'string', arg: 'N', help: 'proof: to size N' },
      'public-key': { type: 'string', multiple: true, arg: 'VKEY', help: 'verify: the log\'s verifier key (repeatable)' },
      trusted: { type: 'string', arg: 'FILE', help: 'verify: a checkpoint you trust' }, 'save-checkpoint': { type: 'string', arg: 'FILE', help: 'verify: keep the verified checkpoint' },
      demo: { type: 'boolean', help: 'the log directory belongs to the demo' },
    },
  },
  witness: {
    summary: 'Run a witness that cosigns consistent checkpoints (docs/audit.md).',
    usage: ['gatehouse witness --state-dir DIR --name NAME --log-key VKEY [--port 7380]'],
    options: {
      'state-dir': { type: 'string', arg: 'DIR', help: 'where the witness keeps its key and the checkpoints it saw' }, name: { type: 'string', arg: 'NAME', help: 'the witness name' },
      'log-key': { type: 'string', multiple: true, arg: 'VKEY', help: 'a log\'s verifier key (repeatable)' }, 'key-file': { type: 'string', arg: 'FILE', help: 'the witness signing key' },
      host: { type: 'string', arg: 'ADDR', help: 'listen address' }, port: { type: 'string', arg: 'N', help: 'listen port (default 7380)' }, demo: { type: 'boolean', help: 'demo key passphrase' },
    },
  },
  node: {
    summary: 'This node\'s identity in a federation: create it, list the pinned peers, check them (docs/residency.md).',
    usage: ['gatehouse node init --workspace DIR --id ID --region R --jurisdiction J [--force]', 'gatehouse node peers --workspace DIR', 'gatehouse node status --workspace DIR [--json]'],
    subs: {
      init: 'gatehouse node init --workspace DIR --id ID --region R --jurisdiction J [--force]\n  create the node key (Ed25519, mode 0600) and certificate in the state directory; print the pin for peers',
      peers: 'gatehouse node peers --workspace DIR\n  list the peers gatehouse.yaml pins (node, region, jurisdiction, url, key)',
      status: 'gatehouse node status --workspace DIR [--json]\n  this node\'s identity, whether it matches gatehouse.yaml, and whether each pinned peer answers over mTLS',
    },
    options: {
      workspace: { type: 'string', arg: 'DIR', help: 'the workspace (gatehouse.yaml with region: and federation:)' },
      'state-dir': { type: 'string', arg: 'DIR', help: 'where the node key lives (default DIR/state)' },
      id: { type: 'string', arg: 'ID', help: 'init: the node id (lower-case letters, digits, dashes)' },
      region: { type: 'string', arg: 'R', help: 'init: the region the node serves (eu-west, us-east, ...)' },
      jurisdiction: { type: 'string', arg: 'J', help: 'init: the jurisdiction (EU, US, ...)' },
      force: { type: 'boolean', help: 'init: replace an existing identity (every peer must re-pin the new key)' },
      json: { type: 'boolean', help: 'machine-readable output' },
    },
  },
  residency: {
    summary: 'Scenario 4: start an eu-west and a us-east node locally and show what crosses the border.',
    usage: ['gatehouse residency demo [--dir DIR] [--keep]'],
    subs: {
      demo: 'gatehouse residency demo [--dir DIR] [--keep]\n  create both workspaces, start both nodes as processes, run the scenario, stop them',
    },
    options: {
      dir: { type: 'string', arg: 'DIR', help: 'where to create the two workspaces (default a fresh temporary directory)' },
      keep: { type: 'boolean', help: 'keep the nodes running after the walk-through (stop with Ctrl-C)' },
    },
  },
  fl: {
    summary: 'Federated learning across nodes: join a job, start one, follow it, read the model (docs/federated.md).',
    usage: ['gatehouse fl join --job J --coordinator NODE --dataset D --label COL [--epsilon E --delta D]', 'gatehouse fl start --job J --participants A,B,C --agreement ID --features F1,F2 [--rounds N] [--dp-noise Z] [--wait]', 'gatehouse fl status --job J [--wait] [--json]', 'gatehouse fl model --job J [--out FILE]', 'gatehouse fl demo [--dir DIR] [--rounds N] [--keep]'],
    subs: {
      join: 'gatehouse fl join --job J --coordinator NODE --dataset D --label COL [--holdout F] [--epsilon E --delta D] [--trust-coordinator]\n  gatehouse fl join --job J --coordinator NODE --key-authority   (this node decrypts the job\'s verified CKKS sums)\n  on a participant node: train on dataset D (read through this node\'s policy, purpose model-training) for job J; E, D: the dataset\'s lifetime budget',
      start: 'gatehouse fl start --job J --participants A,B,C --agreement ID (--features F1,F2 | --config FILE) [--rounds N] [--model logistic|mlp --hidden H] [--algorithm fedavg|fedprox] [--clip C] [--degree K --threshold T | --ckks KEY-AUTHORITY | --robust krum|trimmed-mean|median --byzantine F] [--dp-noise Z --dp-delta D] [--wait]\n  on the coordinator node: train over the pinned participant nodes with secure aggregation',
      status: 'gatehouse fl status --job J [--wait] [--json]\n  per-round progress: participants, dropouts, accuracy, loss, ε',
      model: 'gatehouse fl model --job J [--out FILE]\n  the trained model (JSON weights) and its model card',
      demo: 'gatehouse fl demo [--dir DIR] [--rounds N] [--keep]\n  three bank nodes as processes train a fraud model; audit on every node; the agreement ends and the model is shredded',
    },
    options: {
      url: { type: 'string', arg: 'URL', help: 'the node\'s partner API (default http://127.0.0.1:8080, or GATEHOUSE_URL)' }, key: { type: 'string', arg: 'KEY', help: 'API key (or GATEHOUSE_API_KEY)' },
      job: { type: 'string', arg: 'J', help: 'the job name both sides agree on' }, coordinator: { type: 'string', arg: 'NODE', help: 'join: the coordinator node id (pinned)' },
      dataset: { type: 'string', arg: 'D', help: 'join: the dataset to train on' }, label: { type: 'string', arg: 'COL', help: 'join: the 0/1 label column' },
      holdout: { type: 'string', arg: 'F', help: 'join: held-out fraction for evaluation (default 0.25)' },
      epsilon: { type: 'string', arg: 'E', help: 'join: lifetime ε of the dataset\'s budget for DP training' }, delta: { type: 'string', arg: 'D', help: 'join: δ of that budget (default 1e-6)' },
      participants: { type: 'string', arg: 'A,B', help: 'start: participant node ids' }, agreement: { type: 'string', arg: 'ID', help: 'start: the agreement the model is kept under' },
      config: { type: 'string', arg: 'FILE', help: 'start: training configuration (JSON)' }, features: { type: 'string', arg: 'F1,F2', help: 'start: feature columns' },
      rounds: { type: 'string', arg: 'N', help: 'rounds' }, model: { type: 'string', arg: 'KIND', help: 'start: logistic or mlp' }, hidden: { type: 'string', arg: 'H', help: 'start: MLP hidden units' },
      algorithm: { type: 'string', arg: 'A', help: 'start: fedavg or fedprox' }, clip: { type: 'string', arg: 'C', help: 'start: L2 clipping bound' },
      degree: { type: 'string', arg: 'K', help: 'start: SecAgg+ neighbourhood size' }, threshold: { type: 'string', arg: 'T', help: 'start: Shamir threshold' },
      'dp-noise': { type: 'string', arg: 'Z', help: 'start: noise multiplier of the distributed discrete Gaussian' }, 'dp-delta': { type: 'string', arg: 'D', help: 'start: δ for reporting ε' },
      'trust-coordinator': { type: 'boolean', help: 'join: let this job\'s updates go in the clear to the coordinator (robust aggregation)' },
      'key-authority': { type: 'boolean', help: 'join: be the job\'s CKKS key authority (no dataset)' }, ckks: { type: 'string', arg: 'NODE', help: 'start: aggregate with CKKS; NODE decrypts (not the coordinator)' },
      robust: { type: 'string', arg: 'RULE', help: 'start: secure aggregation off, robust rule krum, trimmed-mean or median' }, byzantine: { type: 'string', arg: 'F', help: 'start: Byzantine participants the robust rule tolerates' },
      wait: { type: 'boolean', help: 'follow the job until it ends' }, json: { type: 'boolean', help: 'machine-readable output' }, out: { type: 'string', arg: 'FILE', help: 'model: write to FILE (mode 0600)' },
      dir: { type: 'string', arg: 'DIR', help: 'demo: where to create the three workspaces' }, keep: { type: 'boolean', help: 'demo: keep the nodes running' },
    },
  },
  demo: {
    summary: 'Create the demo workspace, or reset it to a fresh start.',
    usage: ['gatehouse demo init [DIR] [--patients N]', 'gatehouse demo reset [DIR]'],
    subs: {
      init: `gatehouse demo init [DIR] [--patients N]\n  create the demo workspace (default ${DEMO_DIR}, 100,000 synthetic patients) and print its API keys`,
      reset: `gatehouse demo reset [DIR]\n  with the server stopped: forget everything the demo did (users and MFA enrolments, sessions,\n  agreements and grants, saved results, budgets, the audit log); keeps the data and the API keys`,
    },
    options: { patients: { type: 'string', arg: 'N', help: 'init: how many synthetic patients (default 100000)' } },
  },
  cleanroom: CLEANROOM_COMMAND,
};

/** Strips help text: what node:util parseArgs takes. */
export function parseOptions(table: OptionTable): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [k, o] of Object.entries(table)) out[k] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  return out;
}

export function formatOptions(table: OptionTable): string {
  const rows = Object.entries(table).map(([k, o]) => [`${o.short ? `-${o.short}, ` : ''}--${k}${o.arg ? ` ${o.arg}` : ''}`, o.help] as const);
  const w = Math.min(34, Math.max(...rows.map(([l]) => l.length)));
  return rows.map(([l, h]) => `  ${l.padEnd(w)}  ${h}`).join('\n');
}

/** `gatehouse <command> [<sub>] --help`. */
export function commandHelp(name: string, sub?: string): string | null {
  const c = COMMANDS[name];
  if (!c) return null;
  const head = sub && c.subs?.[sub] ? c.subs[sub]! : [...c.usage, ...(c.subs ? ['', 'Sub-commands:', ...Object.values(c.subs).map((u) => `  ${u.split('\n')[0]}`)] : [])].join('\n');
  return `${c.summary}\n\n${head}\n\nOptions:\n${formatOptions(c.options)}\n${c.more ? `\n${c.more}\n` : ''}\n${EXIT_CODES_HELP}\n`;
}
