/**
 * Loads a workspace directory into a validated `Workspace`, or reports every problem found
 * with the file and line it comes from. Nothing is half-loaded: either all of it is valid
 * or `WorkspaceInvalid` lists what to fix.
 */
import { readFileSync, readdirSync, statSync, existsSync, globSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { parseDocument, LineCounter, isMap, isSeq, isScalar, type Document, type Node as YamlNode } from 'yaml';
import { GatehouseError } from '../errors.ts';
import { DlpConfigInvalid } from '../privacy/dlp/errors.ts';
import { parsePostureConfig, PostureConfigInvalid, type PostureConfig } from '../identity/posture.ts';
import type { OidcVerifierOptions } from '../identity/oidc.ts';
import { parseDlpConfig, type DlpConfig } from '../privacy/dlp/policy.ts';
import { maskTypeProblem, parseMaskYaml, unknownMaskMessage } from '../query/masks/registry.ts';
import {
  CLASSIFICATIONS, COLUMN_TYPES, isGlob,
  type AttributeValue, type BudgetWindow, type IdentityConfig, type Classification, type DifferentialPrivacyDef, type ColumnDef, type ColumnType, type DatasetDef, type DatasetSource,
  type MaskSpec, type ObligationDef, type PrincipalDef, type Workspace, type WorkspaceDefaults,
} from '../model/types.ts';

export { formatProblem, lineAt, WorkspaceInvalid, type WorkspaceProblem } from '../model/problems.ts';
import { formatProblem, lineAt, WorkspaceInvalid, type WorkspaceProblem } from '../model/problems.ts';
import { residencySection } from '../federation/residency-config.ts';

const IDENT = /^[a-z_][a-z0-9_]*$/;
const NAME = /^[A-Za-z0-9_.@-]+$/;
const NUMERIC: readonly ColumnType[] = ['BIGINT', 'INTEGER', 'DOUBLE', 'DECIMAL'];

/** Reads YAML with line information and collects problems instead of throwing on the first. */
class Reader {
  readonly problems: WorkspaceProblem[] = [];
  readonly file: string;
  readonly doc: Document;
  readonly lines: LineCounter;

  constructor(file: string, text: string) {
    this.file = file;
    this.lines = new LineCounter();
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: true, uniqueKeys: true });
    for (const e of this.doc.errors) {
      this.problems.push({ file, line: e.linePos?.[0]?.line ?? null, message: `YAML: ${e.message.split('\n')[0]}` });
    }
  }

  lineOf(path: readonly (string | number)[]): number | null {
    for (let i = path.length; i >= 0; i--) {
      const node = this.doc.getIn(path.slice(0, i), true) as YamlNode | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return this.lines.linePos(node.range[0]).line;
      // a map key: find the pair so that the line points at the key itself
    }
    return null;
  }

  problem(path: readonly (string | number)[], message: string): void {
    this.problems.push({ file: this.file, line: this.lineOf(path), message: `${path.join('.') || '(top)'}: ${message}` });
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function allowedKeys(r: Reader, path: (string | number)[], obj: Record<string, Json>, keys: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) r.problem([...path, k], `unknown key "${k}" (expected one of: ${keys.join(', ')})`);
  }
}

function str(r: Reader, path: (string | number)[], v: Json | undefined, required: boolean): string | null {
  if (v === undefined || v === null) {
    if (required) r.problem(path, 'is required');
    return null;
  }
  if (typeof v !== 'string' || v.length === 0) {
    r.problem(path, 'must be a non-empty string');
    return null;
  }
  return v;
}

function strList(r: Reader, path: (string | number)[], v: Json | undefined): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    r.problem(path, 'must be a list of strings');
    return [];
  }
  return v as string[];
}

function positiveInt(r: Reader, path: (string | number)[], v: Json | undefined, fallback: number | null): number | null {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    r.problem(path, 'must be a positive whole number');
    return fallback;
  }
  return v;
}

function classification(r: Reader, path: (string | number)[], v: Json | undefined): Classification {
  if (typeof v === 'string' && (CLASSIFICATIONS as readonly string[]).includes(v)) return v as Classification;
  r.problem(path, `must be one of ${CLASSIFICATIONS.join(', ')}`);
  return 'regulated';
}

export function parseMask(r: Reader, path: (string | number)[], v: Json | undefined): MaskSpec | null {
  if (v === undefined) return null;
  if (v === null) {
    r.problem(path, 'is empty: to null the column write mask: "null" (quoted); to show the value, omit mask');
    return null;
  }
  const mask = parseMaskYaml(v);
  if (!mask) r.problem(path, unknownMaskMessage());
  return mask;
}

/** Why a mask cannot apply to a column type, or null if it can (the kind's own list of types). */
export { maskTypeProblem };

function checkMaskType(r: Reader, path: (string | number)[], mask: MaskSpec, type: ColumnType): void {
  const problem = maskTypeProblem(mask, type);
  if (problem) r.problem(path, problem);
}

const SOURCE_FORMS = '{parquet: FILE_OR_GLOB, hivePartitioning?: true}, {csv: FILE_OR_GLOB}, {duckdb: FILE, table: NAME}, {postgres: {url, table, passwordEnv}} or {encrypted: FILE}';

function parseSource(r: Reader, path: (string | number)[], v: Json | undefined, dir: string): DatasetSource | null {
  if (!isObject(v)) {
    r.problem(path, `is required: ${SOURCE_FORMS}`);
    return null;
  }
  if (Object.keys(v).length === 1 && 'postgres' in v) return parsePostgresSource(r, [...path, 'postgres'], v.postgres);
  const keys = Object.keys(v);
  const fileOf = (key: string, glob: boolean): string | null => {
    const p = str(r, [...path, key], v[key], true);
    if (p === null) return null;
    const full = isAbsolute(p) ? p : resolve(dir, p);
    if (glob && isGlob(p)) {
      if (!globSync(full).some((f) => statSync(f).isFile())) r.problem([...path, key], `no file matches ${p} (relative patterns are resolved against the workspace directory; * and ? match within a folder, ** across folders)`);
    } else if (!existsSync(full)) r.problem([...path, key], `file not found: ${p} (relative paths are resolved against the workspace directory)`);
    return full;
  };
  if (keys.includes('parquet') && keys.every((k) => k === 'parquet' || k === 'hivePartitioning')) {
    const hive = v.hivePartitioning;
    if (hive !== undefined && typeof hive !== 'boolean') r.problem([...path, 'hivePartitioning'], 'must be true or false');
    const p = fileOf('parquet', true);
    return p ? { kind: 'parquet', path: p, ...(hive === true ? { hivePartitioning: true } : {}) } : null;
  }
  if (keys.length === 1 && keys[0] === 'csv') { const p = fileOf('csv', true); return p ? { kind: 'csv', path: p } : null; }
  if (keys.length === 1 && keys[0] === 'encrypted') { const p = fileOf('encrypted', false); return p ? { kind: 'encrypted', path: p } : null; }
  if (keys.length === 2 && keys.includes('duckdb') && keys.includes('table')) {
    const p = fileOf('duckdb', false);
    const t = str(r, [...path, 'table'], v.table, true);
    return p && t ? { kind: 'duckdb', path: p, table: t } : null;
  }
  r.problem(path, `must be exactly one of ${SOURCE_FORMS}`);
  return null;
}

const PG_TABLE = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `{postgres: {url, table, passwordEnv?}}`: the URL names server, database and role; never a password. */
function parsePostgresSource(r: Reader, path: (string | number)[], v: Json | undefined): DatasetSource | null {
  if (!isObject(v)) {
    r.problem(path, 'must be {url: "postgres://ROLE@HOST:PORT/DATABASE", table: "schema.table", passwordEnv: "ENV_VAR"}');
    return null;
  }
  allowedKeys(r, path, v, ['url', 'table', 'passwordEnv']);
  const url = str(r, [...path, 'url'], v.url, true);
  const table = str(r, [...path, 'table'], v.table, true);
  const passwordEnv = str(r, [...path, 'passwordEnv'], v.passwordEnv, false);
  let ok = url !== null && table !== null;
  if (url !== null) {
    let u: URL | null = null;
    try { u = new URL(url); } catch { /* reported below */ }
    if (!u || (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') || !u.hostname) {
      r.problem([...path, 'url'], 'must be a URL like postgres://ROLE@HOST:PORT/DATABASE');
      ok = false;
    } else {
      if (u.password || [...u.searchParams.keys()].some((k) => k.toLowerCase() === 'password')) {
        // Never echo the URL: it holds the secret.
        r.problem([...path, 'url'], 'contains a password: secrets never live in the workspace. Remove it from the URL and put it in an environment variable named by passwordEnv (e.g. passwordEnv: GATEHOUSE_PG_PASSWORD)');
        ok = false;
      }
      if (!u.username) { r.problem([...path, 'url'], 'must name the role to connect as (postgres://ROLE@HOST/DATABASE): a read-only role, see docs/postgres.md'); ok = false; }
      if (u.pathname.replace(/^\//, '') === '') { r.problem([...path, 'url'], 'must name the database (postgres://ROLE@HOST:PORT/DATABASE)'); ok = false; }
    }
  }
  if (table !== null && !PG_TABLE.test(table)) {
    r.problem([...path, 'table'], 'must be a table name, optionally schema-qualified: schema.table (letters, digits, _ and $)');
    ok = false;
  }
  if (passwordEnv !== null && !ENV_NAME.test(passwordEnv)) {
    r.problem([...path, 'passwordEnv'], 'must be the name of an environment variable (letters, digits and _), e.g. GATEHOUSE_PG_PASSWORD');
    ok = false;
  }
  return ok ? { kind: 'postgres', url: url!, table: table!, passwordEnv } : null;
}

function parseDataset(r: Reader, name: string, v: Json, dir: string): DatasetDef | null {
  const path = ['datasets', name];
  if (!IDENT.test(name)) r.problem(path, 'dataset names are lower-case identifiers (a-z, 0-9, _)');
  if (!isObject(v)) { r.problem(path, 'must be a mapping'); return null; }
  allowedKeys(r, path, v, ['description', 'source', 'classification', 'tags', 'privacyUnit', 'oneRowPerUnit', 'region', 'owner', 'purposes', 'columns']);
  const source = parseSource(r, [...path, 'source'], v.source, dir);
  const columns: ColumnDef[] = [];
  if (!isObject(v.columns) || Object.keys(v.columns).length === 0) {
    r.problem([...path, 'columns'], 'must list at least one column: only listed columns are visible');
  } else {
    for (const [cname, cv] of Object.entries(v.columns)) {
      const cpath = [...path, 'columns', cname];
      if (!IDENT.test(cname)) r.problem(cpath, 'column names are lower-case identifiers (a-z, 0-9, _)');
      if (!isObject(cv)) { r.problem(cpath, 'must be a mapping with at least type and classification'); continue; }
      allowedKeys(r, cpath, cv, ['type', 'classification', 'tags', 'mask', 'bounds', 'unique', 'description']);
      const type = typeof cv.type === 'string' && (COLUMN_TYPES as readonly string[]).includes(cv.type.toUpperCase())
        ? (cv.type.toUpperCase() as ColumnType) : null;
      if (type === null) r.problem([...cpath, 'type'], `must be one of ${COLUMN_TYPES.join(', ')}`);
      const mask = parseMask(r, [...cpath, 'mask'], cv.mask);
      if (mask && type) checkMaskType(r, [...cpath, 'mask'], mask, type);
      let bounds: [number, number] | null = null;
      if (cv.bounds !== undefined) {
        const b = cv.bounds;
        if (!Array.isArray(b) || b.length !== 2 || typeof b[0] !== 'number' || typeof b[1] !== 'number' || !(b[0] < b[1])) {
          r.problem([...cpath, 'bounds'], 'must be [low, high] with low < high');
        } else if (type && !NUMERIC.includes(type)) {
          r.problem([...cpath, 'bounds'], `bounds apply to numeric columns, not ${type}`);
        } else bounds = [b[0], b[1]];
      }
      if (cv.unique !== undefined && typeof cv.unique !== 'boolean') r.problem([...cpath, 'unique'], 'must be true or false');
      columns.push({
        name: cname,
        type: type ?? 'VARCHAR',
        classification: classification(r, [...cpath, 'classification'], cv.classification),
        tags: strList(r, [...cpath, 'tags'], cv.tags),
        mask, bounds,
        description: typeof cv.description === 'string' ? cv.description : null,
        ...(cv.unique === true ? { unique: true as const } : {}),
      });
    }
  }
  const privacyUnit = str(r, [...path, 'privacyUnit'], v.privacyUnit, false);
  if (privacyUnit && !columns.some((c) => c.name === privacyUnit)) {
    r.problem([...path, 'privacyUnit'], `names column "${privacyUnit}", which is not among the dataset's columns`);
  }
  if (v.oneRowPerUnit !== undefined && typeof v.oneRowPerUnit !== 'boolean') r.problem([...path, 'oneRowPerUnit'], 'must be true or false');
  if (v.oneRowPerUnit === true && !privacyUnit) r.problem([...path, 'oneRowPerUnit'], 'needs privacyUnit: it declares one row per privacy unit');
  if (!source) return null;
  return {
    name, source, columns, privacyUnit,
    ...(v.oneRowPerUnit === true ? { oneRowPerUnit: true } : {}),
    description: typeof v.description === 'string' ? v.description : null,
    classification: classification(r, [...path, 'classification'], v.classification),
    tags: strList(r, [...path, 'tags'], v.tags),
    region: str(r, [...path, 'region'], v.region, false),
    owner: str(r, [...path, 'owner'], v.owner, false),
    purposes: strList(r, [...path, 'purposes'], v.purposes),
  };
}

function parseObligation(r: Reader, name: string, v: Json): ObligationDef | null {
  const path = ['obligations', name];
  if (!NAME.test(name)) r.problem(path, 'obligation names use letters, digits, _ . @ -');
  if (!isObject(v)) { r.problem(path, 'must be a mapping'); return null; }
  allowedKeys(r, path, v, ['rowFilter', 'aggregationOnly', 'rowCap', 'unmask', 'masks', 'joinOnly', 'differentialPrivacy', 'dlp']);
  let aggregationOnly: ObligationDef['aggregationOnly'] = null;
  if (v.aggregationOnly !== undefined) {
    if (!isObject(v.aggregationOnly)) r.problem([...path, 'aggregationOnly'], 'must be {minGroupSize: N}');
    else {
      allowedKeys(r, [...path, 'aggregationOnly'], v.aggregationOnly, ['minGroupSize', 'rounding', 'maxRowsPerUnit']);
      const k = positiveInt(r, [...path, 'aggregationOnly', 'minGroupSize'], v.aggregationOnly.minGroupSize, null);
      const rounding = v.aggregationOnly.rounding ?? 'none';
      if (rounding !== 'none' && rounding !== 'nearest5' && rounding !== 'midpoint6') r.problem([...path, 'aggregationOnly', 'rounding'], 'must be none, nearest5 or midpoint6');
      if (k === null) r.problem([...path, 'aggregationOnly', 'minGroupSize'], 'is required');
      const maxRowsPerUnit = positiveInt(r, [...path, 'aggregationOnly', 'maxRowsPerUnit'], v.aggregationOnly.maxRowsPerUnit, 50)!;
      if (k !== null) aggregationOnly = { minGroupSize: k, rounding: rounding === 'nearest5' || rounding === 'midpoint6' ? rounding : 'none', maxRowsPerUnit };
    }
  }
  const masks: Record<string, MaskSpec> = {};
  if (v.masks !== undefined) {
    if (!isObject(v.masks)) r.problem([...path, 'masks'], 'must map column names to masks');
    else for (const [col, m] of Object.entries(v.masks)) {
      const mask = parseMask(r, [...path, 'masks', col], m);
      if (mask) masks[col] = mask;
    }
  }
  return {
    name,
    rowFilter: str(r, [...path, 'rowFilter'], v.rowFilter, false),
    aggregationOnly,
    rowCap: positiveInt(r, [...path, 'rowCap'], v.rowCap, null),
    unmask: strList(r, [...path, 'unmask'], v.unmask),
    masks,
    joinOnly: strList(r, [...path, 'joinOnly'], v.joinOnly),
    differentialPrivacy: v.differentialPrivacy === undefined ? null : parseDp(r, [...path, 'differentialPrivacy'], v.differentialPrivacy),
    dlp: v.dlp === undefined ? null : parseDlp(r, [...path, 'dlp'], v.dlp),
  };
}

function parseDlp(r: Reader, path: (string | number)[], v: Json): DlpConfig | null {
  try {
    return parseDlpConfig(v, path.join('.'));
  } catch (err) {
    if (err instanceof DlpConfigInvalid) { for (const m of err.problems) r.problems.push({ file: r.file, line: r.lineOf(path), message: m }); return null; }
    throw err;
  }
}

function fraction(r: Reader, path: (string | number)[], v: Json | undefined, opts: { max?: number; fallback?: number }): number {
  if (v === undefined && opts.fallback !== undefined) return opts.fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (opts.max !== undefined && v >= opts.max)) {
    r.problem(path, `must be a number greater than 0${opts.max !== undefined ? ` and less than ${opts.max}` : ''}`);
    return opts.fallback ?? 1;
  }
  return v;
}

function parseDp(r: Reader, path: (string | number)[], v: Json): DifferentialPrivacyDef | null {
  if (!isObject(v)) { r.problem(path, 'must be a mapping (see docs/privacy.md)'); return null; }
  allowedKeys(r, path, v, ['mechanism', 'epsilon', 'delta', 'maxGroupsPerUnit', 'maxRowsPerUnitPerGroup', 'publicGroups', 'budget']);
  const mechanism = v.mechanism ?? 'gaussian';
  if (mechanism !== 'gaussian' && mechanism !== 'laplace') r.problem([...path, 'mechanism'], 'must be gaussian or laplace');
  const publicGroups: Record<string, string[]> = {};
  if (v.publicGroups !== undefined) {
    if (!isObject(v.publicGroups)) r.problem([...path, 'publicGroups'], 'must map column names to lists of public values');
    else for (const [c, d] of Object.entries(v.publicGroups)) {
      const list = strList(r, [...path, 'publicGroups', c], d);
      if (list.length === 0 || list.length > 10_000) r.problem([...path, 'publicGroups', c], 'must list 1 to 10,000 values');
      publicGroups[c] = list;
    }
  }
  const b = v.budget;
  let budget: DifferentialPrivacyDef['budget'] = { epsilon: 1, delta: 1e-6, window: null, per: 'principal' };
  if (!isObject(b)) r.problem([...path, 'budget'], 'is required: {epsilon, delta, window?, per?}');
  else {
    allowedKeys(r, [...path, 'budget'], b, ['epsilon', 'delta', 'window', 'per']);
    let window: BudgetWindow = null;
    if (b.window === 'calendar-month') window = { kind: 'calendar-month' };
    else if (isObject(b.window) && typeof b.window.rollingDays === 'number' && Number.isSafeInteger(b.window.rollingDays) && b.window.rollingDays > 0) window = { kind: 'rolling-days', days: b.window.rollingDays };
    else if (b.window !== undefined && b.window !== null) r.problem([...path, 'budget', 'window'], 'must be calendar-month or {rollingDays: N}');
    const per = b.per ?? 'principal';
    if (per !== 'principal' && per !== 'org') r.problem([...path, 'budget', 'per'], 'must be principal or org');
    budget = {
      epsilon: fraction(r, [...path, 'budget', 'epsilon'], b.epsilon, {}),
      delta: fraction(r, [...path, 'budget', 'delta'], b.delta, { max: 1e-3, fallback: 1e-6 }),
      window, per: per === 'org' ? 'org' : 'principal',
    };
  }
  const dp: DifferentialPrivacyDef = {
    mechanism: mechanism === 'laplace' ? 'laplace' : 'gaussian',
    epsilon: fraction(r, [...path, 'epsilon'], v.epsilon, {}),
    delta: fraction(r, [...path, 'delta'], v.delta, { max: 1e-3, fallback: 1e-7 }),
    maxGroupsPerUnit: positiveInt(r, [...path, 'maxGroupsPerUnit'], v.maxGroupsPerUnit, 1)!,
    maxRowsPerUnitPerGroup: positiveInt(r, [...path, 'maxRowsPerUnitPerGroup'], v.maxRowsPerUnitPerGroup, 1)!,
    publicGroups, budget,
  };
  if (dp.epsilon > budget.epsilon) r.problem([...path, 'epsilon'], `the per-query epsilon (${dp.epsilon}) exceeds the whole budget (${budget.epsilon})`);
  return dp;
}

function parsePrincipal(r: Reader, id: string, v: Json): PrincipalDef | null {
  const path = ['principals', id];
  if (!NAME.test(id)) r.problem(path, 'principal ids use letters, digits, _ . @ -');
  if (!isObject(v)) { r.problem(path, 'must be a mapping'); return null; }
  allowedKeys(r, path, v, ['kind', 'displayName', 'groups', 'attributes', 'apiKeySha256']);
  const kind = v.kind === undefined ? 'user' : v.kind;
  if (kind !== 'user' && kind !== 'service') r.problem([...path, 'kind'], 'must be user or service');
  const attributes: Record<string, AttributeValue> = {};
  if (v.attributes !== undefined) {
    if (!isObject(v.attributes)) r.problem([...path, 'attributes'], 'must be a mapping');
    else for (const [k, a] of Object.entries(v.attributes)) {
      if (!IDENT.test(k) && !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k)) r.problem([...path, 'attributes', k], 'attribute names are identifiers');
      if (typeof a === 'string' || typeof a === 'boolean' || (typeof a === 'number' && Number.isSafeInteger(a))) attributes[k] = a;
      else if (Array.isArray(a) && a.every((x) => typeof x === 'string')) attributes[k] = a as string[];
      else r.problem([...path, 'attributes', k], 'must be a string, whole number, boolean or list of strings');
    }
  }
  const keys = strList(r, [...path, 'apiKeySha256'], v.apiKeySha256);
  keys.forEach((k, i) => { if (!/^[0-9a-f]{64}$/.test(k)) r.problem([...path, 'apiKeySha256', i], 'must be a hex SHA-256 digest (64 lower-case hex characters)'); });
  return {
    id, kind: kind === 'service' ? 'service' : 'user',
    displayName: typeof v.displayName === 'string' ? v.displayName : null,
    groups: strList(r, [...path, 'groups'], v.groups),
    attributes, apiKeySha256: keys,
  };
}

function listCedarFiles(dir: string, entries: readonly string[], r: Reader): Map<string, string> {
  const files = new Map<string, string>();
  for (const [i, entry] of entries.entries()) {
    const full = resolve(dir, entry);
    if (!existsSync(full)) { r.problem(['policies', i], `not found: ${entry}`); continue; }
    const paths = statSync(full).isDirectory()
      ? readdirSync(full).filter((f) => f.endsWith('.cedar')).sort().map((f) => join(full, f))
      : [full];
    for (const p of paths) files.set(relative(dir, p), readFileSync(p, 'utf8'));
  }
  if (files.size === 0) r.problem(['policies'], 'no .cedar policy files found: with no policy nothing is allowed');
  return files;
}

function readHashKey(dir: string, r: Reader, v: Json | undefined): Buffer {
  const envKey = process.env.GATEHOUSE_HASH_KEY;
  if (envKey) {
    if (!/^([0-9a-fA-F]{2}){32,64}$/.test(envKey)) r.problem(['secrets'], 'GATEHOUSE_HASH_KEY must be 32 to 64 bytes in hex');
    else return Buffer.from(envKey, 'hex');
  }
  if (!isObject(v) || typeof v.hashKeyFile !== 'string' || v.hashKeyFile.length === 0) {
    r.problem(['secrets', 'hashKeyFile'], 'is required (a file holding 32-64 random bytes in hex) unless GATEHOUSE_HASH_KEY is set');
    return Buffer.alloc(0);
  }
  const p = resolve(dir, v.hashKeyFile);
  if (!existsSync(p)) { r.problem(['secrets', 'hashKeyFile'], `file not found: ${v.hashKeyFile}`); return Buffer.alloc(0); }
  const text = readFileSync(p, 'utf8').trim();
  if (!/^([0-9a-fA-F]{2}){32,64}$/.test(text)) {
    r.problem(['secrets', 'hashKeyFile'], 'the key file must hold 32 to 64 bytes in hex (the content is not shown)');
    return Buffer.alloc(0);
  }
  return Buffer.from(text, 'hex');
}

export const WORKSPACE_FILE = 'gatehouse.yaml';

/**
 * Who and what a workspace file still lists, read from the YAML even when the rest of the
 * workspace is invalid: the principals with the API key digests listed for each, the dataset
 * names, and the mTLS subject mappings. A reload uses it to apply revocations at once while
 * another part is being fixed (src/workspace/validate.ts `restrictingMerge`). A section that
 * cannot be read is null (nothing is inferred from it); an absent section lists nothing.
 */
export interface DeclaredAccess {
  readonly principals: ReadonlyMap<string, ReadonlySet<string>> | null;
  readonly datasets: ReadonlySet<string> | null;
  readonly mtlsPrincipals: Readonly<Record<string, string>> | null;
}

export function readDeclaredAccess(dirArg: string): DeclaredAccess | null {
  const file = join(resolve(dirArg), WORKSPACE_FILE);
  if (!existsSync(file)) return null;
  const r = new Reader(WORKSPACE_FILE, readFileSync(file, 'utf8'));
  if (r.doc.errors.length > 0) return null;
  let root: Json;
  try { root = r.doc.toJS({ maxAliasCount: 0 }) as Json; } catch { return null; }
  if (!isObject(root)) return null;
  let principals: Map<string, Set<string>> | null = new Map();
  if (root.principals !== undefined && root.principals !== null) {
    if (!isObject(root.principals)) principals = null;
    else for (const [id, v] of Object.entries(root.principals)) {
      const keys = isObject(v) && Array.isArray(v.apiKeySha256) ? v.apiKeySha256.filter((k): k is string => typeof k === 'string') : [];
      principals.set(id, new Set(keys));
    }
  }
  const datasets = root.datasets === undefined || root.datasets === null ? new Set<string>() : isObject(root.datasets) ? new Set(Object.keys(root.datasets)) : null;
  let mtlsPrincipals: Record<string, string> | null = {};
  const id = root.identity;
  if (id !== undefined && id !== null) {
    if (!isObject(id)) mtlsPrincipals = null;
    else if (id.mtls !== undefined && id.mtls !== null) {
      if (!isObject(id.mtls) || !isObject(id.mtls.principals)) mtlsPrincipals = null;
      else for (const [cn, pid] of Object.entries(id.mtls.principals)) if (typeof pid === 'string') mtlsPrincipals[cn] = pid;
    }
  }
  return { principals, datasets, mtlsPrincipals };
}

/**
 * Parses the files of a workspace. Cross-checks that need the SQL parser and Cedar
 * (row filters, policy validation) happen in `validate.ts`, which callers use.
 */
export function readWorkspaceFiles(dirArg: string): { workspace: Workspace | null; problems: WorkspaceProblem[]; policyFiles?: ReadonlyMap<string, string>; cedarSchema?: string } {
  const dir = resolve(dirArg);
  const file = join(dir, WORKSPACE_FILE);
  if (!existsSync(file)) {
    return { workspace: null, problems: [{ file, line: null, message: `no ${WORKSPACE_FILE} here; run "gatehouse --help" for the workspace format` }] };
  }
  const yamlText = readFileSync(file, 'utf8');
  const r = new Reader(WORKSPACE_FILE, yamlText);
  if (r.doc.errors.length > 0) return { workspace: null, problems: r.problems };
  let root: Json;
  try {
    root = r.doc.toJS({ maxAliasCount: 0 }) as Json;
  } catch {
    return { workspace: null, problems: [{ file: WORKSPACE_FILE, line: null, message: 'YAML anchors and aliases (&x / *x) are not allowed: write each value out' }] };
  }
  if (!isObject(root)) return { workspace: null, problems: [{ file: WORKSPACE_FILE, line: 1, message: 'the file must be a YAML mapping' }] };
  allowedKeys(r, [], root, ['version', 'name', 'defaults', 'secrets', 'policies', 'schema', 'datasets', 'obligations', 'principals', 'dlp', 'identity', 'region', 'federation', 'residency', 'monitoring', 'audit']);
  // What the audit trail keeps besides the log (src/governance/whatif/query-texts.ts reads it).
  if (root.audit !== undefined && root.audit !== null) {
    const a = root.audit;
    if (!isObject(a)) r.problem(['audit'], 'must be a mapping: {keepSqlText: true|false, sqlTextDays: N}');
    else {
      allowedKeys(r, ['audit'], a, ['keepSqlText', 'sqlTextDays']);
      if (a.keepSqlText !== undefined && typeof a.keepSqlText !== 'boolean') r.problem(['audit', 'keepSqlText'], 'must be true or false');
      if (a.sqlTextDays !== undefined && (!Number.isInteger(a.sqlTextDays) || (a.sqlTextDays as number) < 1 || (a.sqlTextDays as number) > 3660)) r.problem(['audit', 'sqlTextDays'], 'must be a whole number of days from 1 to 3660');
    }
  }
  let identity: IdentityConfig | undefined;
  if (root.identity !== undefined) {
    const id = root.identity;
    if (!isObject(id)) r.problem(['identity'], 'must be a mapping: {mfa: {requiredForGroups: [...]}, sessions: {ttlMinutes: N}}');
    else {
      allowedKeys(r, ['identity'], id, ['mfa', 'sessions', 'elevation', 'posture', 'oidc', 'adminGroups', 'rateLimits', 'mtls']);
      const mtlsPrincipals: Record<string, string> = {};
      if (id.mtls !== undefined) {
        const m = isObject(id.mtls) ? id.mtls : {};
        allowedKeys(r, ['identity', 'mtls'], m, ['principals']);
        if (!isObject(m.principals)) r.problem(['identity', 'mtls', 'principals'], 'must map certificate subject CNs to principal ids');
        else for (const [cn, pid] of Object.entries(m.principals)) {
          if (typeof pid !== 'string') r.problem(['identity', 'mtls', 'principals', cn], 'must be a principal id');
          else mtlsPrincipals[cn] = pid;
        }
      }
      const adminGroups = id.adminGroups === undefined ? ['admins'] : strList(r, ['identity', 'adminGroups'], id.adminGroups);
      const bucket = (key: 'perAddress' | 'perPrincipal'): { burst: number; perMinute: number } | null => {
        const rl = isObject(id.rateLimits) ? id.rateLimits[key] : undefined;
        if (rl === undefined) return null;
        if (!isObject(rl)) { r.problem(['identity', 'rateLimits', key], 'must be {burst: N, perMinute: N}'); return null; }
        allowedKeys(r, ['identity', 'rateLimits', key], rl, ['burst', 'perMinute']);
        return { burst: positiveInt(r, ['identity', 'rateLimits', key, 'burst'], rl.burst, 100)!, perMinute: positiveInt(r, ['identity', 'rateLimits', key, 'perMinute'], rl.perMinute, 6000)! };
      };
      if (id.rateLimits !== undefined) {
        if (!isObject(id.rateLimits)) r.problem(['identity', 'rateLimits'], 'must be {perAddress?: {burst, perMinute}, perPrincipal?: {burst, perMinute}}');
        else allowedKeys(r, ['identity', 'rateLimits'], id.rateLimits, ['perAddress', 'perPrincipal']);
      }
      const rateLimits = { perAddress: bucket('perAddress'), perPrincipal: bucket('perPrincipal') };
      const oidc: OidcVerifierOptions[] = [];
      if (id.oidc !== undefined) {
        if (!Array.isArray(id.oidc)) r.problem(['identity', 'oidc'], 'must be a list of providers: {issuer, audience, jwksUri | jwks, claimMapping, ...}');
        else id.oidc.forEach((o, i) => {
          const path = ['identity', 'oidc', i];
          if (!isObject(o)) { r.problem(path, 'must be a mapping'); return; }
          allowedKeys(r, path, o, ['issuer', 'audience', 'jwksUri', 'jwks', 'algorithms', 'clockToleranceSec', 'claimMapping', 'principalPrefix', 'requireVerifiedEmail', 'typ']);
          if (typeof o.issuer !== 'string' || !o.issuer) r.problem([...path, 'issuer'], 'is required');
          if (typeof o.audience !== 'string' && !Array.isArray(o.audience)) r.problem([...path, 'audience'], 'is required (Gatehouse\'s client id at the provider)');
          if (o.jwksUri === undefined && o.jwks === undefined) r.problem(path, 'give jwksUri (from the provider\'s discovery document) or an inline jwks');
          oidc.push(o as unknown as OidcVerifierOptions);
        });
      }
      let posture: PostureConfig | null = null;
      if (id.posture !== undefined) {
        try { posture = parsePostureConfig(id.posture); } catch (err) {
          if (err instanceof PostureConfigInvalid) for (const m of err.problems) r.problems.push({ file: r.file, line: r.lineOf(['identity', 'posture']), message: `identity.${m}` });
          else throw err;
        }
      }
      const elevationRoles: Record<string, { approvers: string[]; maxMinutes: number; breakGlass: boolean }> = {};
      if (id.elevation !== undefined) {
        const el = isObject(id.elevation) ? id.elevation : {};
        allowedKeys(r, ['identity', 'elevation'], el, ['roles']);
        if (!isObject(el.roles)) r.problem(['identity', 'elevation', 'roles'], 'must map role names to {approvers: [groups], maxMinutes, breakGlass}');
        else for (const [role, def] of Object.entries(el.roles)) {
          const path = ['identity', 'elevation', 'roles', role];
          if (!/^[a-z][a-z0-9_-]{0,63}$/.test(role)) r.problem(path, 'role names are lower-case letters, digits, _ and -');
          if (!isObject(def)) { r.problem(path, 'must be a mapping'); continue; }
          allowedKeys(r, path, def, ['approvers', 'maxMinutes', 'breakGlass']);
          const approvers = strList(r, [...path, 'approvers'], def.approvers);
          if (approvers.length === 0) r.problem([...path, 'approvers'], 'name at least one group whose members may approve');
          const maxMinutes = positiveInt(r, [...path, 'maxMinutes'], def.maxMinutes, 60)!;
          if (maxMinutes > 10080) r.problem([...path, 'maxMinutes'], 'must be at most 10080 (a week)');
          if (def.breakGlass !== undefined && typeof def.breakGlass !== 'boolean') r.problem([...path, 'breakGlass'], 'must be true or false');
          elevationRoles[role] = { approvers, maxMinutes, breakGlass: def.breakGlass === true };
        }
      }
      const mfa = isObject(id.mfa) ? id.mfa : {};
      if (id.mfa !== undefined) allowedKeys(r, ['identity', 'mfa'], mfa, ['requiredForGroups', 'stepUpMinutes']);
      const stepUpMinutes = mfa.stepUpMinutes === undefined ? null : positiveInt(r, ['identity', 'mfa', 'stepUpMinutes'], mfa.stepUpMinutes, null);
      const sessions = isObject(id.sessions) ? id.sessions : {};
      if (id.sessions !== undefined) allowedKeys(r, ['identity', 'sessions'], sessions, ['ttlMinutes']);
      const ttl = positiveInt(r, ['identity', 'sessions', 'ttlMinutes'], sessions.ttlMinutes, 15)!;
      if (ttl > 24 * 60) r.problem(['identity', 'sessions', 'ttlMinutes'], 'must be at most 1440 (a day)');
      identity = { mfaRequiredForGroups: strList(r, ['identity', 'mfa', 'requiredForGroups'], mfa.requiredForGroups), stepUpMinutes, sessionTtlMinutes: ttl, elevationRoles, posture, oidc, adminGroups, rateLimits, mtlsPrincipals };
    }
  }
  const dlp = root.dlp === undefined ? null : parseDlp(r, ['dlp'], root.dlp);
  if (root.version !== 1) r.problem(['version'], 'must be 1');
  const name = str(r, ['name'], root.name, true) ?? 'workspace';

  const d = isObject(root.defaults) ? root.defaults : {};
  if (root.defaults !== undefined) allowedKeys(r, ['defaults'], d, ['rowCap', 'statementTimeoutMs', 'memoryLimit', 'concurrency', 'maxJoinRows']);
  const defaults: WorkspaceDefaults = {
    rowCap: positiveInt(r, ['defaults', 'rowCap'], d.rowCap, 10_000)!,
    statementTimeoutMs: positiveInt(r, ['defaults', 'statementTimeoutMs'], d.statementTimeoutMs, 30_000)!,
    maxJoinRows: positiveInt(r, ['defaults', 'maxJoinRows'], d.maxJoinRows, 1_000_000_000)!,
    memoryLimit: typeof d.memoryLimit === 'string' && /^\d+(\.\d+)?\s*(MB|GB|MiB|GiB)$/.test(d.memoryLimit) ? d.memoryLimit : '4GB',
    concurrency: parseConcurrency(r, d.concurrency),
  };
  if (d.memoryLimit !== undefined && defaults.memoryLimit !== d.memoryLimit) r.problem(['defaults', 'memoryLimit'], 'must look like "4GB" or "512MB"');

  const datasets = new Map<string, DatasetDef>();
  if (!isObject(root.datasets)) r.problem(['datasets'], 'is required: a mapping of dataset name to definition');
  else for (const [n, v] of Object.entries(root.datasets)) { const ds = parseDataset(r, n, v, dir); if (ds) datasets.set(n, ds); }

  const obligations = new Map<string, ObligationDef>();
  if (root.obligations !== undefined) {
    if (!isObject(root.obligations)) r.problem(['obligations'], 'must be a mapping of obligation name to definition');
    else for (const [n, v] of Object.entries(root.obligations)) { const o = parseObligation(r, n, v); if (o) obligations.set(n, o); }
  }

  const principals = new Map<string, PrincipalDef>();
  if (root.principals !== undefined) {
    if (!isObject(root.principals)) r.problem(['principals'], 'must be a mapping of principal id to definition');
    else for (const [n, v] of Object.entries(root.principals)) { const p = parsePrincipal(r, n, v); if (p) principals.set(n, p); }
  }
  const seenKeys = new Set<string>();
  for (const p of principals.values()) for (const k of p.apiKeySha256) {
    if (seenKeys.has(k)) r.problem(['principals', p.id, 'apiKeySha256'], 'the same API key digest is listed twice (each key belongs to one principal, once)');
    seenKeys.add(k);
  }

  const policyEntries = root.policies === undefined ? ['policies'] : strList(r, ['policies'], root.policies);
  const policyFiles = listCedarFiles(dir, policyEntries, r);
  const schemaPath = root.schema === undefined ? 'schema.cedarschema' : str(r, ['schema'], root.schema, true) ?? 'schema.cedarschema';
  let cedarSchema = '';
  if (!existsSync(resolve(dir, schemaPath))) r.problem(['schema'], `Cedar schema not found: ${schemaPath}`);
  else cedarSchema = readFileSync(resolve(dir, schemaPath), 'utf8');
  const hashKey = readHashKey(dir, r, root.secrets);

  if (r.problems.length > 0) return { workspace: null, problems: r.problems, policyFiles, cedarSchema };

  const h = createHash('sha256');
  const part = (label: string, text: string): void => { h.update(`${label}\0${Buffer.byteLength(text)}\0`); h.update(text); };
  part(WORKSPACE_FILE, yamlText);
  part('schema', cedarSchema);
  for (const [f, t] of [...policyFiles].sort(([a], [b]) => (a < b ? -1 : 1))) part(`policy:${f}`, t);
  const policyVersion = `sha256:${h.digest('hex')}`;

  return {
    workspace: { dir, name, defaults, datasets, obligations, principals, policyFiles, cedarSchema, hashKey, policyVersion, dlp, ...(identity ? { identity } : {}), residency: residencySection(r.doc, r.lines) },
    problems: [],
  };
}

/** Line (1-based) of a character offset in a text. */

/** `defaults.concurrency`: fair admission of queries (src/kernel/admission.ts). */
function parseConcurrency(r: Parameters<typeof positiveInt>[0], v: unknown): WorkspaceDefaults['concurrency'] {
  const c = isObject(v) ? v : {};
  if (v !== undefined && !isObject(v)) r.problem(['defaults', 'concurrency'], 'must be a mapping: total, perPrincipal, perOrganisation, queuePerPrincipal');
  if (isObject(v)) allowedKeys(r, ['defaults', 'concurrency'], c, ['total', 'perPrincipal', 'perOrganisation', 'queuePerPrincipal']);
  return {
    total: positiveInt(r, ['defaults', 'concurrency', 'total'], c.total, 8)!,
    perPrincipal: positiveInt(r, ['defaults', 'concurrency', 'perPrincipal'], c.perPrincipal, 4)!,
    perOrganisation: positiveInt(r, ['defaults', 'concurrency', 'perOrganisation'], c.perOrganisation, 6)!,
    queuePerPrincipal: positiveInt(r, ['defaults', 'concurrency', 'queuePerPrincipal'], c.queuePerPrincipal, 8)!,
  };
}
