/**
 * Benchmark (3): policy decision latency, `PolicyEngine.decide()`, at 10 and 100 Cedar
 * policies (goal p50 ≤ 100 µs at 100), plus 1,000 for the trend.
 *
 * Workspaces are built in memory (the validated `Workspace` shape, as the loader produces
 * it) and compiled with `PolicyEngine.compile`, which validates every policy against the
 * schema in strict mode and pre-parses the set once. Policies have realistic shapes: group
 * membership scopes, dataset-scoped and broad permits with purpose checks, attribute
 * matches between principal and resource (org/owner, region), resource tags and
 * classification, time-of-day and source-address conditions, and forbids (about one in
 * five). Each call is timed on its own over a rotating mix of principals, datasets and
 * purposes that yields both allows and denies.
 *
 *   node bench/policy.ts [--quick]
 */
import { createHash } from 'node:crypto';
import { PolicyEngine, type RequestContext } from '../src/policy/engine.ts';
import type { Classification, DatasetDef, ObligationDef, PrincipalDef, Workspace } from '../src/model/types.ts';
import { isMain, isQuick, log, machineInfo, round, summarize, writeResult, type BenchResult } from './run.ts';
import { DEMO_CEDAR_SCHEMA } from '../src/demo/workspace.ts';

const NAME = 'policy';

const SCHEMA = DEMO_CEDAR_SCHEMA;

const ORGS = ['st-avery', 'northwind-research', 'keystone-mutual', 'harbor-health', 'medicore-labs'];
const REGIONS = ['us-east', 'us-west', 'us-central'];
const PURPOSES = ['research', 'operations', 'quality', 'claims-processing', 'billing', 'marketing'];
const CLASSES: readonly Classification[] = ['public', 'internal', 'confidential', 'regulated'];
const TAGS = ['phi', 'pii', 'financial', 'clinical', 'reference'];
const GROUPS = 10;
const DATASETS = 40;
const OBLIGATIONS = ['region-filter', 'aggregates', 'mask-ssn', 'row-cap'];

function datasets(): Map<string, DatasetDef> {
  const m = new Map<string, DatasetDef>();
  for (let i = 0; i < DATASETS; i++) {
    const name = `ds${i}`;
    m.set(name, {
      name, description: null, source: { kind: 'parquet', path: `/nonexistent/${name}.parquet` },
      classification: CLASSES[i % CLASSES.length]!, tags: [TAGS[i % TAGS.length]!, TAGS[(i + 2) % TAGS.length]!],
      privacyUnit: 'patient_id', region: REGIONS[i % REGIONS.length]!, owner: ORGS[i % ORGS.length]!,
      purposes: PURPOSES.filter((_, j) => (i + j) % 3 !== 0),
      columns: [
        { name: 'patient_id', type: 'BIGINT', classification: 'confidential', tags: ['id.patient'], mask: null, bounds: null, description: null },
        { name: 'region', type: 'VARCHAR', classification: 'internal', tags: [], mask: null, bounds: null, description: null },
        { name: 'cost', type: 'DOUBLE', classification: 'confidential', tags: [], mask: null, bounds: [0, 100000], description: null },
      ],
    });
  }
  return m;
}

function principals(): Map<string, PrincipalDef> {
  const m = new Map<string, PrincipalDef>();
  for (let i = 0; i < 12; i++) {
    const id = `user${i}`;
    m.set(id, {
      id, kind: i % 4 === 3 ? 'service' : 'user', displayName: null,
      groups: [`g${i % GROUPS}`, `g${(i * 7 + 3) % GROUPS}`, `g${(i * 3 + 5) % GROUPS}`, ...(i % 3 === 0 ? ['phi-cleared'] : [])],
      attributes: { org: ORGS[i % ORGS.length]!, region: REGIONS[i % REGIONS.length]! },
      apiKeySha256: [createHash('sha256').update(id).digest('hex')],
    });
  }
  return m;
}

function obligations(): Map<string, ObligationDef> {
  const base = { rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [] };
  return new Map<string, ObligationDef>([
    ['region-filter', { ...base, name: 'region-filter', rowFilter: 'region = principal.region' }],
    ['aggregates', { ...base, name: 'aggregates', aggregationOnly: { minGroupSize: 11 }, joinOnly: ['patient_id'] }],
    ['mask-ssn', { ...base, name: 'mask-ssn', masks: { patient_id: { kind: 'hash' } } }],
    ['row-cap', { ...base, name: 'row-cap', rowCap: 1000 }],
  ]);
}

/** The i-th policy: one of eight realistic shapes, one in five a forbid. */
function policyText(i: number): string {
  const g = `g${i % GROUPS}`;
  const ds = `ds${(i * 3) % DATASETS}`;
  const purpose = PURPOSES[i % (PURPOSES.length - 1)]!;
  const obl = OBLIGATIONS[i % OBLIGATIONS.length]!;
  const head = (effect: string, reason: string) => `@id("p${i}")\n${effect === 'permit' ? `@obligations("${obl}")\n` : ''}@reason("${reason}")\n${effect}`;
  switch (i % 10) {
    case 0: case 5:
      return `${head('permit', `group ${g} may query ${ds} for ${purpose}`)} (principal in Group::"${g}", action == Action::"query", resource == Dataset::"${ds}")
when { context.purpose == "${purpose}" && resource.purposes.contains(context.purpose) };`;
    case 1:
      return `${head('permit', 'own organisation data for operations and quality')} (principal in Group::"${g}", action == Action::"query", resource)
when { principal.org == resource.owner && ["operations", "quality", "${purpose}"].contains(context.purpose) };`;
    case 2:
      return `${head('permit', 'regional non-regulated data')} (principal in Group::"${g}", action == Action::"query", resource)
when { principal.region == resource.region && resource.classification != "regulated" && context.purpose == "${purpose}" };`;
    case 3:
      return `${head('permit', 'clinical research during working hours')} (principal, action == Action::"query", resource)
when { principal in Group::"${g}" && resource.tags.contains("clinical") && context.purpose == "research" && context.hour >= 6 && context.hour < 22 };`;
    case 4:
      return `${head('forbid', 'regulated data may not be used for marketing')} (principal, action == Action::"query", resource)
when { resource.classification == "regulated" && context.purpose == "marketing" };`;
    case 6:
      return `${head('permit', 'internal service access from the private network')} (principal in Group::"${g}", action == Action::"query", resource)
when { principal.kind == "service" && context.sourceIp.isInRange(ip("10.0.0.0/8")) && ["public", "internal"].contains(resource.classification) };`;
    case 7:
      return `${head('permit', 'partner access to shared datasets')} (principal in Group::"${g}", action == Action::"query", resource == Dataset::"${ds}")
when { ["research", "quality"].contains(context.purpose) && !(resource.tags.contains("financial")) && context.channel == "http" };`;
    case 8:
      return `${head('permit', 'region-scoped claims work')} (principal, action == Action::"query", resource)
when { principal in Group::"${g}" && context.purpose == "claims-processing" && (resource.region == principal.region || resource.classification == "public") };`;
    default:
      return `${head('forbid', 'PHI requires clearance')} (principal in Group::"${g}", action == Action::"query", resource)
when { resource.tags.contains("phi") } unless { principal in Group::"phi-cleared" };`;
  }
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function workspaceWith(policyCount: number): Workspace {
  const files = new Map<string, string>();
  const perFile = 10;
  for (let f = 0; f * perFile < policyCount; f++) {
    const texts: string[] = [];
    for (let i = f * perFile; i < Math.min(policyCount, (f + 1) * perFile); i++) texts.push(policyText(i));
    files.set(`policies/p${String(f).padStart(3, '0')}.cedar`, `${texts.join('\n\n')}\n`);
  }
  const h = createHash('sha256').update(SCHEMA);
  for (const [f, t] of files) h.update(f).update(t);
  return {
    dir: '/nonexistent/bench-workspace', name: `bench-${policyCount}`,
    defaults: { rowCap: 10_000, statementTimeoutMs: 30_000, memoryLimit: '4GB' },
    datasets: datasets(), obligations: obligations(), principals: principals(),
    policyFiles: files, cedarSchema: SCHEMA, hashKey: Buffer.alloc(32, 7), policyVersion: `sha256:${h.digest('hex')}`,
  };
}

export async function runPolicyBench(quick: boolean): Promise<BenchResult> {
  const sizes = [10, 100, 1000];
  const calls = quick ? 2_000 : 20_000;
  const warmup = quick ? 500 : 2_000;
  const figures: Record<string, unknown> = { callsPerSize: calls, warmupPerSize: warmup, groups: GROUPS, datasets: DATASETS };
  for (const n of sizes) {
    const ws = workspaceWith(n);
    const t = performance.now();
    const { engine, problems } = PolicyEngine.compile(ws);
    const compileMs = performance.now() - t;
    if (!engine) throw new Error(`the ${n}-policy workspace does not compile:\n${problems.map((p) => `${p.file}:${p.line ?? '?'}: ${p.message}`).join('\n')}`);
    const ps = [...ws.principals.values()];
    const ds = [...ws.datasets.values()];
    const hours = [3, 9, 14, 23];
    const ips = ['127.0.0.1', '10.1.2.3', '192.0.2.10'];
    // A fixed pseudo-random request mix (seeded, the same on every run).
    const rnd = mulberry32(42);
    const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const requests: { p: PrincipalDef; d: DatasetDef; c: RequestContext }[] = [];
    for (let i = 0; i < 1000; i++) {
      const time = new Date(Date.UTC(2025, 0, 1 + Math.floor(rnd() * 7), pickOf(hours)));
      requests.push({ p: pickOf(ps), d: pickOf(ds), c: { purpose: pickOf(PURPOSES), sourceIp: pickOf(ips), channel: rnd() < 0.25 ? 'cli' : 'http', time } });
    }
    for (let i = 0; i < warmup; i++) { const r = requests[i % requests.length]!; engine.decide(r.p, r.d, r.c); }
    const samples = new Array<number>(calls);
    let allowed = 0;
    let errors = 0;
    const wall = performance.now();
    // Every call gets a distinct time (one more second), so the engine's memo (keyed by the
    // exact inputs) never answers: this measures a real Cedar evaluation.
    const base = Date.UTC(2030, 0, 1);
    for (let i = 0; i < calls; i++) {
      const r = requests[i % requests.length]!;
      const c = { ...r.c, time: new Date(base + i * 1000 + (r.c.time.getUTCHours() * 3600_000)) };
      const t0 = performance.now();
      const d = engine.decide(r.p, r.d, c);
      samples[i] = (performance.now() - t0) * 1000;
      if (d.allowed) allowed++;
      else if (d.reasons.some((x) => x.includes('could not be evaluated'))) errors++;
    }
    const wallMs = performance.now() - wall;
    const s = summarize(samples, 1);
    // The same requests again within the same second: memo hits, as for repeated queries.
    const memoSamples = new Array<number>(Math.min(calls, 20_000));
    for (let i = 0; i < memoSamples.length; i++) {
      const r = requests[i % requests.length]!;
      const t0 = performance.now();
      engine.decide(r.p, r.d, r.c);
      memoSamples[i] = (performance.now() - t0) * 1000;
    }
    const memo = summarize(memoSamples, 1);
    figures[`policies${n}`] = {
      policies: engine.policies.size, files: ws.policyFiles.size, compileMs: round(compileMs, 1),
      decideUs: s, memoisedDecideUs: memo, decisionsPerSecond: round(calls / (wallMs / 1000), 0), allowedFraction: round(allowed / calls, 3), evaluationErrors: errors,
    };
    log(NAME, `${n} policies: compile ${compileMs.toFixed(0)} ms; decide (evaluated) p50 ${s.p50} µs, p99 ${s.p99} µs; memoised p50 ${memo.p50} µs (${Math.round(allowed / calls * 100)}% allowed)`);
  }
  const at10 = (figures.policies10 as { decideUs: { p50: number; p99: number } }).decideUs;
  const at100 = (figures.policies100 as { decideUs: { p50: number; p99: number } }).decideUs;
  return {
    name: NAME, date: new Date().toISOString(), quick, machine: machineInfo(), figures,
    goals: {
      decideP50At100: { goal: 'p50 ≤ 100 µs at 100 policies', measured: `p50 ${at100.p50} µs, p99 ${at100.p99} µs (at 10: p50 ${at10.p50} µs, p99 ${at10.p99} µs)`, met: at100.p50 <= 100 },
    },
  };
}

if (isMain(import.meta.url)) {
  const r = await runPolicyBench(isQuick());
  log(NAME, `wrote ${writeResult(r)}`);
}
