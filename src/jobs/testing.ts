/**
 * Test and demo support for code-to-data: adds to a demo workspace the job principal
 * (`northwind-jobs`, a service principal in group `approved-jobs` that may read encounters and
 * patients row by row, through the catalog's masks, for research), an output checker (`oscar`)
 * and a partner engineer (`nadia`), and makes partner signing keys and signed bundles. Used by test/jobs*.test.ts, test/airlock*.test.ts and the demo walk-through
 * in docs/code-to-data.md.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { apiKeyDigest } from '../identity/digest.ts';
import { signBundle, type CodeBundle, type Manifest } from './bundle.ts';

export const JOB_PRINCIPAL = 'northwind-jobs';
export const OSCAR_KEY = 'test-key-oscar-0123456789abcde';
export const NADIA_KEY = 'test-key-nadia-0123456789abcde';

/** The jobs policy; with `obligations`, its permits carry that obligation set (a row cap in tests). */
export function jobsPolicy(obligations: string | null = null): string {
  const ob = obligations ? `@obligations("${obligations}")\n` : '';
  return `// Approved code-to-data jobs read encounters and patients row by row for research, with the
// catalog's masks; the job's outputs leave only through the airlock (docs/code-to-data.md).
@id("approved-jobs-encounters")
${ob}permit (principal in Group::"approved-jobs", action == Action::"query", resource == Dataset::"encounters")
when { context.purpose == "research" };

@id("approved-jobs-patients")
${ob}permit (principal in Group::"approved-jobs", action == Action::"query", resource == Dataset::"patients")
when { context.purpose == "research" };
`;
}

/**
 * Adds to a demo workspace directory: the job principal, an output checker (oscar), a
 * Northwind engineer who submits bundles (nadia, no data access of her own) and the jobs policy.
 */
export function addJobPrincipals(wsDir: string, oscarKey = OSCAR_KEY, nadiaKey = NADIA_KEY, options: { rowCap?: number; jobKey?: string } = {}): void {
  const file = join(wsDir, 'gatehouse.yaml');
  let yaml = readFileSync(file, 'utf8');
  if (options.rowCap !== undefined) yaml = yaml.replace(/^obligations:\n/m, `obligations:\n  approved-job:\n    rowCap: ${options.rowCap}\n`);
  writeFileSync(file, yaml.replace(/^principals:\n/m, `principals:
  ${JOB_PRINCIPAL}:
    kind: service
    displayName: Northwind Research approved jobs
    groups: [approved-jobs]
    attributes: { org: northwind-research, region: us-east }
${options.jobKey ? `    apiKeySha256: [${apiKeyDigest(options.jobKey)}]\n` : ''}  oscar:
    displayName: Oscar Reyes (St Avery Health output checker)
    groups: [output-checkers]
    attributes: { org: st-avery, region: us-east }
    apiKeySha256: [${apiKeyDigest(oscarKey)}]
  nadia:
    displayName: Nadia Kim (Northwind Research engineer, submits job bundles)
    groups: [partner-engineers]
    attributes: { org: northwind-research, region: us-east }
    apiKeySha256: [${apiKeyDigest(nadiaKey)}]
`));
  writeFileSync(join(wsDir, 'policies', 'jobs.cedar'), jobsPolicy(options.rowCap !== undefined ? 'approved-job' : null));
}

/** The job principal's key where a test gives it one (`addJobPrincipals(…, { jobKey: JOB_KEY })`). */
export const JOB_KEY = 'test-key-northwind-jobs-0123456';

/**
 * Under the demo's governance (`setupDemoGovernance`), what a job's release needs: the job
 * principal reads regulated data, so it signs the acceptable-use document (with JOB_KEY) and
 * has the hipaa-privacy training on record; the release itself needs Northwind's agreement,
 * which the demo's governance records (issue 23: released outputs go into the partner's
 * workspace under it).
 */
export async function admitJobPrincipal(gh: { governanceOp(meta: { credential: string | null; source: string; channel: string }, op: string, args: unknown): Promise<unknown> }, adminKey: string, now: Date, jobKey = JOB_KEY): Promise<void> {
  const as = (credential: string) => ({ credential, source: '127.0.0.1', channel: 'test' });
  const aup = await gh.governanceOp(as(jobKey), 'acknowledge.show', { name: 'acceptable-use' }) as { document: { sha256: string } };
  await gh.governanceOp(as(jobKey), 'acknowledge.sign', { name: 'acceptable-use', sha256: aup.document.sha256 });
  const day = 86_400_000;
  await gh.governanceOp(as(adminKey), 'training.record', { principal: JOB_PRINCIPAL, course: 'hipaa-privacy', completedAt: new Date(now.getTime() - day).toISOString(), expiresAt: new Date(now.getTime() + 400 * day).toISOString() });
}

export interface PartnerKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
}

export function partnerKey(keyId = 'northwind-2026'): PartnerKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId, privateKey, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

/** A job that counts encounters and sums length of stay per department. */
export const DEPARTMENT_STAYS_CODE = `export function run(inputs, params, job) {
  const by = new Map();
  let n = 0;
  for (const r of inputs.stays) {
    const k = r.department;
    const cur = by.get(k) ?? { department: k, encounters: 0, total_days: 0 };
    cur.encounters += 1;
    cur.total_days += r.length_of_stay_days;
    by.set(k, cur);
    if (++n % 1000 === 0) job.progress(n / params.expected);
  }
  job.log('departments', by.size);
  return { stays_by_department: [...by.values()].filter((x) => x.encounters >= params.min_count) };
}
`;

export const DEPARTMENT_STAYS: Manifest = {
  name: 'department-stays',
  version: '1.0.0',
  purpose: 'research',
  datasets: ['encounters'],
  inputs: { stays: { dataset: 'encounters', sql: 'SELECT department, length_of_stay_days FROM encounters' } },
  parameters: { min_count: { type: 'number', default: 10 }, expected: { type: 'number', default: 10000 } },
  outputs: { stays_by_department: { kind: 'table', columns: ['department', 'encounters', 'total_days'], countColumn: 'encounters' } },
  limits: { cpuMs: 5_000 },
};

export function bundleOf(key: PartnerKey, manifest: Manifest = DEPARTMENT_STAYS, code = DEPARTMENT_STAYS_CODE): CodeBundle {
  return signBundle(manifest, code, key.keyId, key.privateKey);
}

// --- WebAssembly test modules ---

/** A minimal WebAssembly binary encoder (core spec §5) to build test modules without a toolchain. */
const u32 = (n: number): number[] => { const out: number[] = []; do { let b = n & 0x7f; n >>>= 7; if (n !== 0) b |= 0x80; out.push(b); } while (n !== 0); return out; };
export const s32 = (n: number): number[] => { const out: number[] = []; for (;;) { const b = n & 0x7f; n >>= 7; if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out; } out.push(b | 0x80); } };
const vec = (items: number[][]): number[] => [...u32(items.length), ...items.flat()];
const str = (t: string): number[] => { const b = [...Buffer.from(t)]; return [...u32(b.length), ...b]; };
const section = (id: number, body: number[]): number[] => [id, ...u32(body.length), ...body];
const I32 = 0x7f;
const functype = (params: number[], results: number[]): number[] => [0x60, ...vec(params.map((p) => [p])), ...vec(results.map((r) => [r]))];

export interface WasmSpec {
  types: number[][];
  imports?: { module: string; name: string; desc: number[] }[];
  funcs: { type: number; locals?: number; body: number[] }[];
  ownMemory?: boolean;
  data?: { offset: number; bytes: string };
  runIndex: number;
}

export function wasm(m: WasmSpec): string {
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(m.types)),
    ...(m.imports ? section(2, vec(m.imports.map((i) => [...str(i.module), ...str(i.name), ...i.desc]))) : []),
    ...section(3, vec(m.funcs.map((f) => u32(f.type)))),
    ...(m.ownMemory ? section(5, vec([[0x00, 0x01]])) : []),
    ...section(7, vec([[...str('run'), 0x00, ...u32(m.runIndex)]])),
    ...section(10, vec(m.funcs.map((f) => { const body = [...(f.locals ? vec([[...u32(f.locals), I32]]) : vec([])), ...f.body, 0x0b]; return [...u32(body.length), ...body]; }))),
    ...(m.data ? section(11, vec([[0x00, 0x41, ...s32(m.data.offset), 0x0b, ...str(m.data.bytes)]])) : []),
  ];
  return Buffer.from(bytes).toString('base64');
}

export const MEMORY = { module: 'env', name: 'memory', desc: [0x02, 0x00, 0x01] };
export const fn = (type: number) => [0x00, ...u32(type)];
// types: 0 () → (); 1 (i32 i32 i32) → i32; 2 (i32 i32) → ()
export const TYPES = [functype([], []), functype([I32, I32, I32], [I32]), functype([I32, I32], [])];

/**
 * A WebAssembly job for the department-stays manifest: reads one batch of its input through
 * the bridge (so the governed read happens) and answers a constant, empty table.
 */
export function wasmDepartmentStays(): string {
  const answer = '{"stays_by_department":[]}';
  return wasm({
    types: TYPES, imports: [MEMORY, { module: 'gatehouse', name: 'input_next', desc: fn(1) }, { module: 'gatehouse', name: 'output', desc: fn(2) }],
    funcs: [{ type: 0, body: [0x41, 0x00, 0x41, ...s32(1024), 0x41, ...s32(60000), 0x10, 0x00, 0x1a, 0x41, 0x00, 0x41, ...s32(answer.length), 0x10, 0x01] }],
    data: { offset: 0, bytes: answer }, runIndex: 2,
  });
}
