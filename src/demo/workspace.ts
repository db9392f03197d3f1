/**
 * The demo workspace: St Avery Health, a hospital group sharing with outside parties.
 * Synthetic, deterministic data (the same rows on every machine; no real person) written
 * as Parquet by DuckDB, plus the workspace files a data owner would write by hand.
 *
 * Principals:
 *   rhea  — Northwind Research, a research contractor: differentially private aggregates
 *           (or, in fixtures that test the rule, threshold-only aggregates), purpose research;
 *   ivan  — Keystone Mutual, an insurer in us-east: its region's rows, SSNs masked;
 *   ada   — St Avery's internal analyst: row-level access, direct identifiers masked or hashed;
 *   audrey — a compliance auditor: reads the audit log, no data;
 *   olivia — St Avery's data owner: approves privileged-access (elevation) requests.
 */
import { withFileWriter } from '../engine/file-writer.ts';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { apiKeyDigest } from '../identity/digest.ts';
import { quoteString } from '../query/render/sql.ts';

export interface DemoOptions {
  readonly patients?: number;
  readonly encountersPerPatient?: number;
  /** Fixed API keys (tests); random for any principal not given. */
  readonly keys?: Readonly<Partial<Record<DemoPrincipal, string>>>;
  /** The served demo: the research contractor must sign in with a password and TOTP (MFA). */
  readonly identity?: boolean;
  /**
   * How the research contractor sees patients and claims. Differential privacy is the only
   * protection that survives any number of queries (docs/privacy.md, "What aggregation-only
   * without DP can and cannot promise"), so the served demo (`identity: true`) uses it for
   * every dataset; test fixtures that exercise the aggregation-only rule keep it there.
   */
  readonly researchPrivacy?: 'differential-privacy' | 'aggregation-only';
}

export type DemoPrincipal = 'rhea' | 'ivan' | 'ada' | 'audrey' | 'olivia';
export const DEMO_PRINCIPALS: readonly DemoPrincipal[] = ['rhea', 'ivan', 'ada', 'audrey', 'olivia'];

export interface DemoWorkspace {
  readonly dir: string;
  readonly keys: Readonly<Record<DemoPrincipal, string>>;
  /** Built-in users' initial passwords (identity demos only), by principal. */
  readonly passwords: Readonly<Record<string, string>>;
}

const FIRST = ['Ava', 'Liam', 'Olivia', 'Noah', 'Emma', 'Oliver', 'Sophia', 'Elijah', 'Isabella', 'Lucas', 'Mia', 'Mateo', 'Amelia', 'Levi', 'Harper', 'Ezra', 'Evelyn', 'Kai', 'Aaliyah', 'Yusuf', 'Mei', 'Aarav', 'Zoe', 'Diego', 'Fatima', 'Hiro', 'Chloe', 'Omar', 'Priya', 'Jonah'];
const LAST = ['Smith', 'Johnson', 'Williams', 'Brown', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Nguyen', 'Kim', 'Patel', 'Okafor', 'Cohen', 'Rossi', 'Schmidt', 'Silva', 'Tanaka', 'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Hill', 'Green', 'Adams', 'Baker'];
const DIAGNOSES: readonly [string, string, number][] = [
  ['I10', 'Essential hypertension', 1800], ['E11.9', 'Type 2 diabetes without complications', 2600], ['J45.909', 'Asthma, uncomplicated', 900],
  ['F32.9', 'Major depressive disorder', 1200], ['M54.5', 'Low back pain', 700], ['U07.1', 'COVID-19', 5400], ['N18.3', 'Chronic kidney disease, stage 3', 7200],
  ['C50.919', 'Breast cancer', 28000], ['I21.9', 'Acute myocardial infarction', 31000], ['S72.001A', 'Fracture of femoral neck', 24000],
  ['O80', 'Uncomplicated delivery', 9800], ['J18.9', 'Pneumonia', 11000], ['K35.80', 'Acute appendicitis', 16000], ['B20', 'HIV disease', 14000], ['G30.9', "Alzheimer's disease", 8800],
];
const DEPARTMENTS = ['emergency', 'cardiology', 'oncology', 'primary-care', 'orthopedics', 'obstetrics', 'nephrology', 'psychiatry'];
const REGIONS = ['us-east', 'us-west', 'us-central'];
const PAYERS = ['Keystone Mutual', 'Harbor Health Plan', 'Medicare', 'Medicaid'];

function list(values: readonly string[]): string {
  return `[${values.map(quoteString).join(', ')}]`;
}

/** Deterministic pseudo-random integer in [0, n) from a row number and a salt. */
function pick(n: number, expr: string, salt: number): string {
  return `(hash(${expr}, ${salt}) % ${n})`;
}

async function writeData(dataDir: string, patients: number, perPatient: number): Promise<void> {
  mkdirSync(dataDir, { recursive: true });
  const encounters = patients * perPatient;
  // A locked-down writer that never spills to disk (src/engine/file-writer.ts, docs/engines.md).
  await withFileWriter({}, async (c) => {
  await c.run(`CREATE TABLE patients AS
    SELECT
      i AS patient_id,
      list_element(${list(FIRST)}, 1 + ${pick(FIRST.length, 'i', 1)}::INT) || ' ' || list_element(${list(LAST)}, 1 + ${pick(LAST.length, 'i', 2)}::INT) AS name,
      lpad(CAST(100 + ${pick(799, 'i', 3)} AS VARCHAR), 3, '0') || '-' || lpad(CAST(1 + ${pick(98, 'i', 4)} AS VARCHAR), 2, '0') || '-' || lpad(CAST(1 + ${pick(9998, 'i', 5)} AS VARCHAR), 4, '0') AS ssn,
      DATE '1932-01-01' + CAST(${pick(32000, 'i', 6)} AS INTEGER) AS date_of_birth,
      CASE WHEN ${pick(2, 'i', 7)} = 0 THEN 'F' ELSE 'M' END AS sex,
      lower(list_element(${list(FIRST)}, 1 + ${pick(FIRST.length, 'i', 1)}::INT) || '.' || list_element(${list(LAST)}, 1 + ${pick(LAST.length, 'i', 2)}::INT)) || CAST(i AS VARCHAR) || '@' || list_element(['mailbox.example', 'post.example', 'inbox.example'], 1 + ${pick(3, 'i', 8)}::INT) AS email,
      '(' || CAST(200 + ${pick(700, 'i', 9)} AS VARCHAR) || ') 555-' || lpad(CAST(${pick(10000, 'i', 10)} AS VARCHAR), 4, '0') AS phone,
      lpad(CAST(${pick(99999, 'i', 11)} AS VARCHAR), 5, '0') AS zip,
      list_element(${list(REGIONS)}, 1 + ${pick(REGIONS.length, 'i', 12)}::INT) AS region
    FROM range(1, ${patients + 1}) r(i)`);
  await c.run(`CREATE TABLE dx AS SELECT * FROM (VALUES ${DIAGNOSES.map(([code, desc, cost], i) => `(${i}, ${quoteString(code)}, ${quoteString(desc)}, ${cost})`).join(', ')}) v(k, code, description, base_cost)`);
  await c.run(`CREATE TABLE encounters AS
    SELECT
      e.i AS encounter_id,
      p.patient_id,
      DATE '2021-01-01' + CAST(${pick(1826, 'e.i', 21)} AS INTEGER) AS admitted_on,
      CAST(${pick(12, 'e.i', 22)} AS INTEGER) AS length_of_stay_days,
      dx.code AS diagnosis_code,
      dx.description AS diagnosis,
      list_element(${list(DEPARTMENTS)}, 1 + ${pick(DEPARTMENTS.length, 'e.i', 23)}::INT) AS department,
      'F' || lpad(CAST(1 + ${pick(24, 'e.i', 24)} AS VARCHAR), 2, '0') AS facility_id,
      CASE WHEN ${pick(10, 'e.i', 25)} = 0 THEN list_element(${list(REGIONS)}, 1 + ${pick(REGIONS.length, 'e.i', 26)}::INT) ELSE p.region END AS facility_region,
      round(dx.base_cost * (0.6 + (${pick(1000, 'e.i', 27)}) / 1000.0 * 1.2), 2) AS cost
    FROM (SELECT i, 1 + ${pick(patients, 'i', 20)} AS pid FROM range(1, ${encounters + 1}) r(i)) e
    JOIN patients p ON p.patient_id = e.pid
    JOIN dx ON dx.k = ${pick(DIAGNOSES.length, 'e.i', 28)}`);
  await c.run(`CREATE TABLE claims AS
    SELECT
      row_number() OVER (ORDER BY encounter_id) AS claim_id,
      encounter_id, patient_id,
      list_element(${list(PAYERS)}, 1 + ${pick(PAYERS.length, 'encounter_id', 31)}::INT) AS payer,
      facility_region AS region,
      cost AS amount_billed,
      CASE WHEN ${pick(10, 'encounter_id', 32)} = 0 THEN 0 ELSE round(cost * (0.55 + ${pick(400, 'encounter_id', 33)} / 1000.0), 2) END AS amount_paid,
      CASE WHEN ${pick(10, 'encounter_id', 32)} = 0 THEN 'denied' WHEN ${pick(20, 'encounter_id', 34)} = 0 THEN 'pending' ELSE 'paid' END AS status,
      admitted_on + CAST(length_of_stay_days + ${pick(30, 'encounter_id', 35)} AS INTEGER) AS submitted_on
    FROM encounters WHERE ${pick(5, 'encounter_id', 30)} < 3`);
  for (const t of ['patients', 'encounters', 'claims']) {
    await c.run(`COPY (SELECT * FROM ${t} ORDER BY 1) TO ${quoteString(join(dataDir, `${t}.parquet`))} (FORMAT parquet)`);
  }
  });
}

/** The demo's Cedar schema (also used by bench/policy.ts). */
export const DEMO_CEDAR_SCHEMA = `// Cedar schema for the St Avery Health demo. Gatehouse supplies these attributes.
entity Group;
entity Principal in [Group] {
  kind: String,
  org: String,
  region: String,
};
entity Dataset {
  classification: String,
  region: String,
  owner: String,
  purposes: Set<String>,
  tags: Set<String>,
};
action query appliesTo {
  principal: Principal,
  resource: Dataset,
  context: {
    purpose: String,
    sourceIp: ipaddr,
    channel: String,
    time: Long,
    hour: Long,
    // From contractor governance (src/governance/gate.ts): usable in policies.
    vendorRiskTier: Long,
    agreementActive: Bool,
  },
};
`;

const RESEARCH_AGGREGATES = `// Northwind Research (contractor), for research only:
// encounters through differential privacy (noisy answers, error bars, a monthly budget);
// patients and claims as aggregates over groups of at least 11 patients.
@id("research-dp")
@obligations("research-dp")
@reason("research contractors query encounters with differential privacy")
permit (principal in Group::"research-contractors", action == Action::"query", resource == Dataset::"encounters")
when { context.purpose == "research" };

@id("research-aggregates")
@obligations("research-aggregates")
@reason("research contractors may run aggregate queries for research")
permit (principal in Group::"research-contractors", action == Action::"query", resource)
when { context.purpose == "research" && resource.purposes.contains("research") && resource != Dataset::"encounters" };
`;

/**
 * Differential privacy wherever it applies: every demo dataset the contractor may read is
 * released with noise and a budget. Aggregation-only stays only for datasets added later
 * without a DP obligation (it cannot promise anything across many queries).
 */
const RESEARCH_DP = `// Northwind Research (contractor), for research only: every dataset through differential
// privacy (noisy answers, error bars, a monthly budget per organisation and dataset).
// Threshold-only aggregates cannot hold up against many queries (docs/privacy.md).
@id("research-dp")
@obligations("research-dp")
@reason("research contractors query encounters with differential privacy")
permit (principal in Group::"research-contractors", action == Action::"query", resource == Dataset::"encounters")
when { context.purpose == "research" };

@id("research-dp-claims")
@obligations("research-dp-claims")
@reason("research contractors query claims with differential privacy")
permit (principal in Group::"research-contractors", action == Action::"query", resource == Dataset::"claims")
when { context.purpose == "research" };

@id("research-dp-patients")
@obligations("research-dp-patients")
@reason("research contractors query patients with differential privacy")
permit (principal in Group::"research-contractors", action == Action::"query", resource == Dataset::"patients")
when { context.purpose == "research" };

@id("research-aggregates")
@obligations("research-aggregates")
@reason("research contractors may run aggregate queries for research on datasets without a DP release")
permit (principal in Group::"research-contractors", action == Action::"query", resource)
when { context.purpose == "research" && resource.purposes.contains("research") && resource != Dataset::"encounters" && resource != Dataset::"claims" && resource != Dataset::"patients" };
`;

const POLICIES: Record<string, string> = {
  'insurer.cedar': `// Keystone Mutual (insurer): its own region's claims and patients, SSNs masked.
@id("insurer-claims")
@obligations("insurer-claims")
permit (principal in Group::"insurers", action == Action::"query", resource == Dataset::"claims")
when { context.purpose == "claims-processing" };

// With a time-boxed elevation (role claims-auditor, approved by a data owner), the insurer
// may audit its region's encounters.
@id("insurer-claims-audit")
@obligations("insurer-encounters")
permit (principal in Group::"elevated:claims-auditor", action == Action::"query", resource == Dataset::"encounters")
when { context.purpose == "claims-audit" };

@id("insurer-patients")
@obligations("insurer-patients")
permit (principal in Group::"insurers", action == Action::"query", resource == Dataset::"patients")
when { context.purpose == "claims-processing" };
`,
  'internal.cedar': `// St Avery's own analysts: row-level access for operations and quality work.
@id("internal-analysts")
@obligations("internal-analyst")
permit (principal in Group::"internal-analysts", action == Action::"query", resource)
when { principal.org == resource.owner && ["operations", "quality", "research"].contains(context.purpose) };
`,
  'guardrails.cedar': `// Regulated data is never used for marketing, whoever asks.
@id("no-marketing-on-regulated")
@reason("regulated data may not be used for marketing")
forbid (principal, action == Action::"query", resource)
when { resource.classification == "regulated" && context.purpose == "marketing" };
`,
};

const IDENTITY_YAML = `
# Contractors reach nothing without multi-factor authentication: API keys are refused for
# them; they sign in with a password and a TOTP code (docs/identity.md).
identity:
  mfa: { requiredForGroups: [research-contractors] }
  sessions: { ttlMinutes: 15 }
  elevation:
    roles:
      claims-auditor: { approvers: [data-owners], maxMinutes: 120 }
`;

function yamlText(keys: Record<DemoPrincipal, string>, identity = false): string {
  return baseYaml(keys) + (identity ? IDENTITY_YAML : '');
}

function baseYaml(keys: Record<DemoPrincipal, string>): string {
  return `# St Avery Health — Gatehouse demo workspace (synthetic data; no real person).
# Format: docs/workspace.md · JSON Schema: docs/workspace.schema.json
version: 1
name: st-avery-health
defaults:
  rowCap: 10000
  statementTimeoutMs: 20000
  memoryLimit: 4GB
secrets:
  hashKeyFile: secrets/hash.key
policies: [policies]
schema: schema.cedarschema

datasets:
  patients:
    description: Registered patients of the St Avery hospital group
    source: { parquet: data/patients.parquet }
    classification: regulated
    owner: st-avery
    region: us
    privacyUnit: patient_id
    oneRowPerUnit: true
    purposes: [research, operations, quality, claims-processing]
    tags: [phi]
    columns:
      patient_id:    { type: BIGINT,  classification: confidential, tags: [id.patient] }
      name:          { type: VARCHAR, classification: regulated, tags: [pii.name], mask: redact }
      ssn:           { type: VARCHAR, classification: regulated, tags: [pii.ssn], mask: last4 }
      date_of_birth: { type: DATE,    classification: regulated, tags: [pii.dob], mask: year }
      sex:           { type: VARCHAR, classification: confidential, tags: [phi.demographic] }
      email:         { type: VARCHAR, classification: regulated, tags: [pii.email], mask: email_domain }
      phone:         { type: VARCHAR, classification: regulated, tags: [pii.phone], mask: redact }
      zip:           { type: VARCHAR, classification: confidential, tags: [pii.location] }
      region:        { type: VARCHAR, classification: internal }

  encounters:
    description: Hospital encounters with diagnosis and cost
    source: { parquet: data/encounters.parquet }
    classification: regulated
    owner: st-avery
    region: us
    privacyUnit: patient_id
    purposes: [research, operations, quality, claims-audit]
    tags: [phi]
    columns:
      encounter_id:        { type: BIGINT,  classification: internal }
      patient_id:          { type: BIGINT,  classification: confidential, tags: [id.patient] }
      admitted_on:         { type: DATE,    classification: confidential }
      length_of_stay_days: { type: INTEGER, classification: confidential, bounds: [0, 60] }
      diagnosis_code:      { type: VARCHAR, classification: regulated, tags: [phi.diagnosis] }
      diagnosis:           { type: VARCHAR, classification: regulated, tags: [phi.diagnosis] }
      department:          { type: VARCHAR, classification: internal }
      facility_id:         { type: VARCHAR, classification: internal }
      facility_region:     { type: VARCHAR, classification: internal }
      cost:                { type: DOUBLE,  classification: confidential, bounds: [0, 40000] }

  claims:
    description: Insurance claims per encounter
    source: { parquet: data/claims.parquet }
    classification: regulated
    owner: st-avery
    region: us
    privacyUnit: patient_id
    purposes: [research, operations, claims-processing]
    columns:
      claim_id:      { type: BIGINT,  classification: internal }
      encounter_id:  { type: BIGINT,  classification: internal }
      patient_id:    { type: BIGINT,  classification: confidential, tags: [id.patient] }
      payer:         { type: VARCHAR, classification: internal }
      region:        { type: VARCHAR, classification: internal }
      amount_billed: { type: DOUBLE,  classification: confidential, bounds: [0, 100000] }
      amount_paid:   { type: DOUBLE,  classification: confidential, bounds: [0, 100000] }
      status:        { type: VARCHAR, classification: internal }
      submitted_on:  { type: DATE,    classification: internal }

obligations:
  research-dp:
    differentialPrivacy:
      mechanism: gaussian
      epsilon: 1                   # per query
      delta: 1.0e-7
      maxGroupsPerUnit: 3          # a patient counts in at most 3 groups of a query
      maxRowsPerUnitPerGroup: 3    # and with at most 3 encounters per group
      publicGroups:
        department: [${DEPARTMENTS.join(', ')}]
        facility_region: [${REGIONS.join(', ')}]
      budget: { epsilon: 10, delta: 1.0e-6, window: calendar-month, per: org }
    joinOnly: [patient_id]
    rowCap: 5000
    dlp: { actions: { regulated: block, confidential: block, internal: alert } }
  research-dp-claims:
    differentialPrivacy:
      mechanism: gaussian
      epsilon: 1
      delta: 1.0e-7
      maxGroupsPerUnit: 3
      maxRowsPerUnitPerGroup: 3
      publicGroups:
        payer: [${PAYERS.join(', ')}]
        region: [${REGIONS.join(', ')}]
        status: [paid, pending, denied]
      budget: { epsilon: 10, delta: 1.0e-6, window: calendar-month, per: org }
    joinOnly: [patient_id]
    rowCap: 5000
    dlp: { actions: { regulated: block, confidential: block, internal: alert } }
  research-dp-patients:
    differentialPrivacy:
      mechanism: gaussian
      epsilon: 1
      delta: 1.0e-7
      maxGroupsPerUnit: 3
      maxRowsPerUnitPerGroup: 1
      publicGroups:
        region: [${REGIONS.join(', ')}]
        sex: [F, M]
      budget: { epsilon: 10, delta: 1.0e-6, window: calendar-month, per: org }
    joinOnly: [patient_id]
    rowCap: 5000
    dlp: { actions: { regulated: block, confidential: block, internal: alert } }
  research-aggregates:
    aggregationOnly: { minGroupSize: 11 }
    joinOnly: [patient_id]
    rowCap: 5000
    dlp: { actions: { regulated: block, confidential: block, internal: alert } }
  insurer-claims:
    rowFilter: "region = principal.region"
    rowCap: 1000
    dlp: { actions: { regulated: block, confidential: redact, internal: alert } }
  insurer-encounters:
    rowFilter: "facility_region = principal.region"
    rowCap: 1000
    dlp: { actions: { regulated: block, confidential: redact, internal: alert } }
  insurer-patients:
    rowFilter: "region = principal.region"
    unmask: [name, date_of_birth]
    rowCap: 1000
    dlp: { actions: { regulated: block, confidential: redact, internal: alert } }
  internal-analyst:
    unmask: [name, email, date_of_birth]
    masks: { ssn: hash }

principals:
  rhea:
    displayName: Rhea Okafor (Northwind Research)
    groups: [research-contractors]
    attributes: { org: northwind-research, region: us-east }
    apiKeySha256: [${apiKeyDigest(keys.rhea)}]
  ivan:
    displayName: Ivan Petrov (Keystone Mutual)
    groups: [insurers]
    attributes: { org: keystone-mutual, region: us-east }
    apiKeySha256: [${apiKeyDigest(keys.ivan)}]
  ada:
    displayName: Ada Lindqvist (St Avery Health analytics)
    groups: [internal-analysts]
    attributes: { org: st-avery, region: us-east }
    apiKeySha256: [${apiKeyDigest(keys.ada)}]
  audrey:
    displayName: Audrey Brennan (compliance auditor)
    groups: [auditors]
    attributes: { org: st-avery, region: us-east }
    apiKeySha256: [${apiKeyDigest(keys.audrey)}]
  olivia:
    displayName: Olivia Hart (St Avery Health data owner)
    groups: [data-owners, admins]
    attributes: { org: st-avery, region: us-east }
    apiKeySha256: [${apiKeyDigest(keys.olivia)}]
`;
}

/** The size of the demo data already generated in `dir` (its completion marker), or null. */
function completeDataOf(dir: string): { patients: number; perPatient: number } | null {
  if (!existsSync(join(dir, 'data'))) return null;
  for (const f of readdirSync(join(dir, 'data'))) {
    const m = /^\.complete-(\d+)-(\d+)$/.exec(f);
    if (m) return { patients: Number(m[1]), perPatient: Number(m[2]) };
  }
  return null;
}

export function newApiKey(): string {
  return `gh_${randomBytes(24).toString('base64url')}`;
}

/**
 * Creates (or reuses) the demo workspace in `dir`. Data files are generated once; the
 * API keys are kept in `dir/demo-keys.json` (mode 0600) so restarts print the same keys.
 */
export async function createDemoWorkspace(dir: string, options: DemoOptions = {}): Promise<DemoWorkspace> {
  // Without an explicit size, data generated earlier (any size, e.g. `demo init --patients N`) is reused.
  const existing = options.patients === undefined && options.encountersPerPatient === undefined ? completeDataOf(dir) : null;
  const patients = options.patients ?? existing?.patients ?? 100_000;
  const perPatient = options.encountersPerPatient ?? existing?.perPatient ?? 5;
  const marker = join(dir, 'data', `.complete-${patients}-${perPatient}`);
  const keysFile = join(dir, 'demo-keys.json');
  const saved: Partial<Record<DemoPrincipal, string>> = !options.keys && existsSync(keysFile) && existsSync(join(dir, 'gatehouse.yaml'))
    ? JSON.parse(readFileSync(keysFile, 'utf8')) as Partial<Record<DemoPrincipal, string>> : {};
  const given = options.keys ?? saved;
  const keys: Record<DemoPrincipal, string> = {
    rhea: given.rhea ?? newApiKey(), ivan: given.ivan ?? newApiKey(), ada: given.ada ?? newApiKey(), audrey: given.audrey ?? newApiKey(),
    olivia: given.olivia ?? newApiKey(),
  };
  mkdirSync(join(dir, 'policies'), { recursive: true });
  mkdirSync(join(dir, 'secrets'), { recursive: true, mode: 0o700 });
  if (!existsSync(marker)) {
    rmSync(join(dir, 'data'), { recursive: true, force: true });
    await writeData(join(dir, 'data'), patients, perPatient);
    writeFileSync(marker, new Date().toISOString());
  }
  const hashKey = join(dir, 'secrets', 'hash.key');
  if (!existsSync(hashKey)) writeFileSync(hashKey, randomBytes(32).toString('hex'), { mode: 0o600 });
  // The owner's files are written once; later edits (a revoked policy, a new mask) are kept.
  const writeOnce = (file: string, text: string): void => { if (!existsSync(file)) writeFileSync(file, text); };
  writeOnce(join(dir, 'schema.cedarschema'), DEMO_CEDAR_SCHEMA);
  for (const [f, t] of Object.entries(POLICIES)) writeOnce(join(dir, 'policies', f), t);
  const research = options.researchPrivacy ?? (options.identity ? 'differential-privacy' : 'aggregation-only');
  writeOnce(join(dir, 'policies', 'research.cedar'), research === 'differential-privacy' ? RESEARCH_DP : RESEARCH_AGGREGATES);
  writeOnce(join(dir, 'gatehouse.yaml'), yamlText(keys, options.identity ?? false));
  writeFileSync(keysFile, JSON.stringify(keys, null, 2), { mode: 0o600 });
  let passwords: Record<string, string> = {};
  if (options.identity) {
    const pwFile = join(dir, 'demo-passwords.json');
    passwords = existsSync(pwFile) ? JSON.parse(readFileSync(pwFile, 'utf8')) as Record<string, string> : { rhea: `demo-${randomBytes(9).toString('base64url')}` };
    writeFileSync(pwFile, JSON.stringify(passwords, null, 2), { mode: 0o600 });
  }
  return { dir, keys, passwords };
}
