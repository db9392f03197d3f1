/**
 * `gatehouse job keygen|sign|signer-add|submit|mock|approve|run|status|logs`
 *
 * The partner signs a bundle offline (`keygen`, `sign`), develops against mock rows (`mock`),
 * and submits it; the data owner registers the partner's key (`signer-add`), approves the code
 * hash (`approve`) and runs it (`run`, with progress on stderr while it runs). Each call goes
 * to a server (--url, --key) or runs in-process on a workspace (--workspace DIR), through the
 * same audited façade methods either way.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { signBundle, validateManifest } from '../jobs/bundle.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { bearerHeader } from '../identity/credentials.ts';
import { GatehouseError } from '../errors.ts';
import { COMMANDS, DEFAULT_PORT, DEMO_DIR, parseOptions } from './commands.ts';
import { newApiKey } from '../demo/workspace.ts';
import { errorFromBody, UsageError } from './exit.ts';

type Out = NodeJS.WritableStream;

export function parseFor(command: string, argv: string[]): { values: Record<string, any>; positionals: string[] } {
  return parseArgs({ args: argv, options: parseOptions(COMMANDS[command]!.options), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
}

export function usage(command: string, message: string): UsageError {
  return new UsageError(message, { hint: `gatehouse ${command} --help` });
}

/** One call: over HTTP (default) or in-process on --workspace. */
export async function call<T>(values: Record<string, any>, http: { method: string; path: string; body?: unknown }, inProc: (gh: Gatehouse, meta: { credential: string | null; source: string; channel: string }) => Promise<T>): Promise<T> {
  const key: string | undefined = values.key ?? process.env.GATEHOUSE_API_KEY;
  if (values.workspace) {
    const { startNode } = await import('../node/start.ts');
    const dir = resolve(values.workspace as string);
    const node = await startNode({ workspaceDir: dir, ...(values['audit-dir'] ? { auditDir: values['audit-dir'] as string } : {}), demo: existsSync(join(dir, 'demo-keys.json')) });
    try {
      return await inProc(node.gatehouse, { credential: key ?? null, source: '127.0.0.1', channel: 'cli' });
    } finally {
      await node.close();
    }
  }
  const url: string = values.url ?? process.env.GATEHOUSE_URL ?? `http://127.0.0.1:${DEFAULT_PORT}`;
  let res: Response;
  try {
    res = await fetch(new URL(http.path, url), {
      method: http.method,
      headers: { ...(key ? { authorization: bearerHeader(key) } : {}), ...(http.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: http.body !== undefined ? JSON.stringify(http.body) : null,
      signal: AbortSignal.timeout(600_000),
    });
  } catch (err) {
    throw new GatehouseError('UNAVAILABLE', `cannot reach ${url}: ${(err as Error).message}`, { hint: 'start the server (gatehouse serve), set --url, or pass --workspace DIR to run in-process' });
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string; hint?: string | null; reasons?: string[] } };
  if (!res.ok) throw errorFromBody(body.error, res.status);
  return body as T;
}

function readJson(file: string | undefined, what: string): unknown {
  if (!file) throw usage('job', `give ${what}`);
  try { return JSON.parse(readFileSync(file, 'utf8')); } catch { throw usage('job', `${what} (${file}) is not a readable JSON file`); }
}

function params(values: Record<string, any>): Record<string, unknown> {
  if (values.params === undefined) return {};
  try { return JSON.parse(values.params as string) as Record<string, unknown>; } catch { throw usage('job', '--params must be a JSON object'); }
}

function passphrase(): string {
  const p = process.env.GATEHOUSE_JOB_KEY_PASSPHRASE;
  if (!p || p.length < 12) throw usage('job', 'set GATEHOUSE_JOB_KEY_PASSPHRASE (12+ characters): the signing key is stored encrypted under it');
  return p;
}

/** Progress while a job runs, on stderr (stdout keeps the JSON answer for scripts). */
function progressLine(): (p: { phase: string; input?: string | null; rows: number; fraction?: number | null }) => void {
  return (p) => {
    const what = p.phase === 'input' ? `read ${p.rows} rows for input "${p.input}" (governed query)` : p.fraction !== null && p.fraction !== undefined ? `job reports ${Math.round(p.fraction * 100)} %` : `sandbox: ${p.rows} rows of "${p.input}" through the bridge`;
    process.stderr.write(`  … ${what}\n`);
  };
}

export async function jobCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || !COMMANDS.job!.subs![sub]) throw usage('job', sub === undefined ? 'give a sub-command (gatehouse job --help lists them)' : `unknown sub-command "job ${sub}"`);
  const { values, positionals } = parseFor('job', rest);
  const print = (v: unknown) => { out.write(`${JSON.stringify(v, null, 2)}\n`); return 0; };
  switch (sub) {
    case 'demo-setup': {
      const dir = positionals[0] ?? DEMO_DIR;
      if (!existsSync(join(dir, 'demo-keys.json'))) throw usage('job', `${dir} is not a demo workspace (gatehouse demo init first)`);
      const keysFile = join(dir, 'code-to-data-keys.json');
      if (existsSync(keysFile)) { out.write(readFileSync(keysFile, 'utf8')); return 0; }
      const { addJobPrincipals } = await import('../jobs/testing.ts');
      const keys = { oscar: newApiKey(), nadia: newApiKey() };
      addJobPrincipals(dir, keys.oscar, keys.nadia);
      writeFileSync(keysFile, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
      out.write(`${JSON.stringify(keys, null, 2)}\n`);
      return 0;
    }
    case 'keygen': {
      const dir = values.out as string | undefined;
      if (!dir) throw usage('job', 'give --out DIR for the new signing key');
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, 'signing.key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: passphrase() }), { mode: 0o600 });
      writeFileSync(join(dir, 'signing.pub.pem'), publicKey.export({ format: 'pem', type: 'spki' }));
      out.write(`signing key in ${dir}/signing.key.pem (encrypted); give ${dir}/signing.pub.pem to the data owner\n`);
      return 0;
    }
    case 'sign': {
      const manifest = validateManifest(readJson(values.manifest, '--manifest FILE.json'));
      if (!values.code || !values['key-file'] || !values.signer || !values.out) throw usage('job', 'give --code FILE.js --key-file PEM --signer KEY_ID --out BUNDLE.json');
      const key = createPrivateKey({ key: readFileSync(values['key-file'] as string), passphrase: passphrase() });
      const bundle = signBundle(manifest, readFileSync(values.code as string, 'utf8'), values.signer as string, key);
      writeFileSync(values.out as string, `${JSON.stringify(bundle, null, 2)}\n`);
      out.write(`signed ${manifest.name} ${manifest.version} → ${values.out}\n`);
      return 0;
    }
    case 'signer-add': {
      if (!values['key-id'] || !values.org || !values['public-key']) throw usage('job', 'give --key-id ID --org ORG --public-key FILE.pem');
      const body = { keyId: values['key-id'] as string, org: values.org as string, publicKeyPem: readFileSync(values['public-key'] as string, 'utf8') };
      return print(await call(values, { method: 'POST', path: '/v1/jobs/signers', body }, (gh, m) => gh.addJobSigner(m, body)));
    }
    case 'submit': {
      const bundle = readJson(positionals[0], 'the bundle file (gatehouse job submit BUNDLE.json)');
      return print(await call(values, { method: 'POST', path: '/v1/jobs', body: bundle }, (gh, m) => gh.submitJob(m, bundle)));
    }
    case 'mock-publish': {
      if (!values.datasets || !values.out) throw usage('job', 'give --datasets a,b --out FILE');
      const body = { datasets: String(values.datasets).split(',').filter(Boolean), ...(values.rows ? { rows: Number(values.rows) } : {}) };
      const mock = await call(values, { method: 'POST', path: '/v1/jobs/mock/publish', body }, (gh, m) => gh.publishMock(m, body));
      writeFileSync(values.out as string, `${JSON.stringify(mock)}\n`);
      out.write(`mock data of ${body.datasets.join(', ')} → ${values.out}\n`);
      return 0;
    }
    case 'mock': {
      const manifest = readJson(values.manifest, '--manifest FILE.json');
      if (!values.code) throw usage('job', 'give --code FILE.js');
      if (values['mock-data']) {
        const { runOnMock } = await import('../jobs/offline-mock.ts');
        return print(await runOnMock(manifest, readFileSync(values.code as string, 'utf8'), readJson(values['mock-data'] as string, '--mock-data FILE') as never, params(values), (p) => progressLine()({ phase: 'sandbox', ...p })));
      }
      const body = { manifest, code: readFileSync(values.code as string, 'utf8'), params: params(values), ...(values.rows ? { rows: Number(values.rows) } : {}) };
      return print(await call(values, { method: 'POST', path: '/v1/jobs/mock', body }, (gh, m) => gh.mockJob(m, body as never, progressLine())));
    }
    case 'approve': {
      const jobId = positionals[0];
      if (!jobId || !values['code-hash'] || !values.datasets || !values.purpose || !values.principal) throw usage('job', 'give JOB_ID --code-hash H --datasets a,b --purpose P --principal ID');
      const body = { codeHash: values['code-hash'] as string, datasets: String(values.datasets).split(',').filter(Boolean), purpose: values.purpose as string, principal: values.principal as string, measurements: (values.measurement as string[] | undefined) ?? [] };
      return print(await call(values, { method: 'POST', path: `/v1/jobs/${encodeURIComponent(jobId)}/approve`, body }, (gh, m) => gh.approveJob(m, { ...body, jobId })));
    }
    case 'run': {
      const jobId = positionals[0];
      if (!jobId) throw usage('job', 'give the job id (gatehouse job run JOB_ID)');
      const p = params(values);
      (process.stderr as Out).write(`running ${jobId} …\n`);
      return print(await call(values, { method: 'POST', path: `/v1/jobs/${encodeURIComponent(jobId)}/run`, body: { params: p } }, (gh, m) => gh.runJob(m, { jobId, params: p }, progressLine())));
    }
    case 'status': {
      const jobId = positionals[0] ?? null;
      return print(await call(values, { method: 'GET', path: jobId ? `/v1/jobs/${encodeURIComponent(jobId)}` : '/v1/jobs' }, (gh, m) => gh.jobStatus(m, jobId)));
    }
    case 'logs': {
      const runId = positionals[0];
      if (!runId) throw usage('job', 'give the run id (gatehouse job logs RUN_ID)');
      const r = await call<{ logs: readonly string[] }>(values, { method: 'GET', path: `/v1/jobs/runs/${encodeURIComponent(runId)}/logs` }, (gh, m) => gh.jobLogs(m, runId));
      if (values.json) return print(r);
      for (const line of r.logs) out.write(`${line}\n`);
      return 0;
    }
    default:
      throw usage('job', `unknown sub-command "job ${sub}"`);
  }
}
