/**
 * The workspace, as loaded from a directory: `gatehouse.yaml` + Cedar policies + Cedar schema.
 * These types are the validated form; `load.ts` turns files into them or reports every error.
 * The JSON Schema for the YAML file is `docs/workspace.schema.json`.
 */

import type { DlpConfig } from './dlp-config.ts';
import type { OidcVerifierOptions } from './oidc-config.ts';
import type { PostureConfig } from './posture-config.ts';

import { CLASSIFICATIONS, type Classification } from './classification.ts';
import type { ResidencySection } from './residency-config.ts';

export { CLASSIFICATIONS, type Classification };

/** Column types a workspace may declare; each maps to one engine type per dialect. */
export const COLUMN_TYPES = ['VARCHAR', 'BIGINT', 'INTEGER', 'DOUBLE', 'DECIMAL', 'BOOLEAN', 'DATE', 'TIMESTAMP'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

/**
 * How a column's value is transformed before anything else in a query can see it, named by
 * its kind. Each kind declares its own fields, YAML spelling, types and lowering in one file
 * of src/query/masks/, and the registry there is the only list of kinds (docs/masks.md); the
 * model carries a parsed mask without knowing the kinds, so adding one touches nothing here.
 */
export interface MaskSpec {
  readonly kind: string;
}

export interface ColumnDef {
  readonly name: string;
  readonly type: ColumnType;
  readonly classification: Classification;
  readonly tags: readonly string[];
  /** Applied unless an obligation of the deciding policy unmasks the column. */
  readonly mask: MaskSpec | null;
  /** Declared value bounds for numeric columns (used for differential privacy). */
  readonly bounds: readonly [number, number] | null;
  readonly description: string | null;
  /**
   * Declared by the dataset's owner: no two rows share a non-null value (a key). Metadata like
   * the row count, not checked against data; it only tightens the join cost estimate
   * (query/govern/cost-estimate.ts), so a wrong declaration loosens a planning bound and
   * nothing else.
   */
  readonly unique?: true;
}

export type DatasetSource =
  /**
   * Files queried where they lie (src/engine/duckdb-sources.ts). `path` is an absolute file
   * or glob (`*`, `**` and `?`, as in docs/workspace.md); the engine reads exactly the files it matches
   * when it opens. `hivePartitioning`: `key=value` folders become columns, and a filter on
   * them skips whole files.
   */
  | { readonly kind: 'csv'; readonly path: string }
  | { readonly kind: 'parquet'; readonly path: string; readonly hivePartitioning?: boolean }
  | { readonly kind: 'duckdb'; readonly path: string; readonly table: string }
  /** A dataset file encrypted under its own data key (`gatehouse ingest`; src/keys/datasets.ts). */
  | { readonly kind: 'encrypted'; readonly path: string }
  /**
   * A table in a PostgreSQL server; queries are pushed down to it (docs/postgres.md). The URL
   * never holds the password: it is read from the environment variable `passwordEnv` (or the
   * usual libpq sources: PGPASSWORD, ~/.pgpass) when the engine connects.
   */
  | { readonly kind: 'postgres'; readonly url: string; readonly table: string; readonly passwordEnv: string | null };

/** `*`, `?` and `[...]` make a source path a glob (the same characters for Node's fs.globSync and DuckDB). */
export function isGlob(path: string): boolean {
  return /[*?[]/.test(path);
}

export interface DatasetDef {
  readonly name: string;
  readonly description: string | null;
  readonly source: DatasetSource;
  readonly classification: Classification;
  readonly tags: readonly string[];
  /** Column that identifies the person/entity protected (e.g. patient_id). */
  readonly privacyUnit: string | null;
  /**
   * The owner declares that the dataset holds at most one row per privacy unit (a patients
   * table): aggregation-only then counts units with count(unit) and DP skips per-unit
   * contribution bounding (docs/privacy.md). Absent means false.
   */
  readonly oneRowPerUnit?: boolean;
  readonly region: string | null;
  readonly owner: string | null;
  /** Purposes for which the data may be used at all (exposed to Cedar as resource.purposes). */
  readonly purposes: readonly string[];
  /** Only these columns exist for Gatehouse; anything else in the source is invisible. */
  readonly columns: readonly ColumnDef[];
}

/**
 * An obligation set, named in gatehouse.yaml and attached to Cedar permit policies with
 * `@obligations("name, other")`. Every obligation of every determining policy is applied.
 */
export interface ObligationDef {
  readonly name: string;
  /** SQL boolean expression over the dataset's columns and `principal.<attribute>`. */
  readonly rowFilter: string | null;
  /** `maxRowsPerUnit`: rows one privacy unit may add to one group (default 50; docs/privacy.md). */
  readonly aggregationOnly: { readonly minGroupSize: number; readonly rounding?: 'none' | 'nearest5' | 'midpoint6'; readonly maxRowsPerUnit?: number } | null;
  readonly rowCap: number | null;
  /** Columns whose declared mask is lifted. */
  readonly unmask: readonly string[];
  /** Extra masks (column → mask) on top of the declared ones. */
  readonly masks: Readonly<Record<string, MaskSpec>>;
  /** Columns usable in JOIN/WHERE but never returned. */
  readonly joinOnly: readonly string[];
  /** Aggregates are released with differential-privacy noise and charged to a budget. */
  readonly differentialPrivacy?: DifferentialPrivacyDef | null;
  /** Data-loss prevention scan of results (docs/dlp.md). */
  readonly dlp?: DlpConfig | null;
}

export interface IdentityConfig {
  /** Members of these groups can reach nothing without an MFA session (API keys refused). */
  readonly mfaRequiredForGroups: readonly string[];
  /** For those groups, regulated datasets need an MFA event this recent (step-up); null: no step-up. */
  readonly stepUpMinutes: number | null;
  readonly sessionTtlMinutes: number;
  /** mTLS service identities: client-certificate subject CN → principal id (the TLS layer verified the chain). */
  readonly mtlsPrincipals: Readonly<Record<string, string>>;
  /** Members of these groups administer identity (users, service keys, MFA resets). Default [admins]. */
  readonly adminGroups: readonly string[];
  /** Token buckets per source address and per principal on every request; null: none. */
  readonly rateLimits: { readonly perAddress: { readonly burst: number; readonly perMinute: number } | null; readonly perPrincipal: { readonly burst: number; readonly perMinute: number } | null };
  /** External OpenID Connect providers whose tokens authenticate principals (src/identity/oidc.ts). */
  readonly oidc: readonly OidcVerifierOptions[];
  /** Device posture and network zones (src/identity/posture.ts); null: every device non-compliant, zone from defaults. */
  readonly posture: PostureConfig | null;
  /**
   * Privileged roles a principal may request for a time window. An active grant puts the
   * principal in Cedar group `elevated:<role>` for its duration.
   */
  readonly elevationRoles: Readonly<Record<string, { readonly approvers: readonly string[]; readonly maxMinutes: number; readonly breakGlass: boolean }>>;
}

export type BudgetWindow = { readonly kind: 'calendar-month' } | { readonly kind: 'rolling-days'; readonly days: number } | null;

/**
 * User-level differential privacy over the dataset's privacy unit: each unit contributes to
 * at most `maxGroupsPerUnit` groups and at most `maxRowsPerUnitPerGroup` rows per group;
 * values are clamped to the column's declared bounds. Spelled out in docs/privacy.md.
 */
export interface DifferentialPrivacyDef {
  readonly mechanism: 'gaussian' | 'laplace';
  /** Per-query privacy loss. */
  readonly epsilon: number;
  /** Per-query δ (gaussian noise and partition selection). */
  readonly delta: number;
  readonly maxGroupsPerUnit: number;
  readonly maxRowsPerUnitPerGroup: number;
  /** Group-by columns whose values are public (no partition selection): column → domain. */
  readonly publicGroups: Readonly<Record<string, readonly string[]>>;
  readonly budget: {
    readonly epsilon: number;
    readonly delta: number;
    readonly window: BudgetWindow;
    /** Whose budget: each principal's, or their organisation's (principal attribute `org`). */
    readonly per: 'principal' | 'org';
  };
}

export type AttributeValue = string | number | boolean | readonly string[];

export interface PrincipalDef {
  readonly id: string;
  readonly kind: 'user' | 'service';
  readonly displayName: string | null;
  readonly groups: readonly string[];
  /** Attributes exposed to Cedar as principal.<name> and to row filters as principal.<name>. */
  readonly attributes: Readonly<Record<string, AttributeValue>>;
  /** Hex SHA-256 digests of the principal's API keys (keys are high-entropy random tokens). */
  readonly apiKeySha256: readonly string[];
}

export interface WorkspaceDefaults {
  readonly rowCap: number;
  readonly statementTimeoutMs: number;
  readonly memoryLimit: string;
  /** Largest estimated join output a query may have; refused before it runs (query/govern/cost-estimate.ts). */
  readonly maxJoinRows?: number;
  /** Fair admission of queries to the engines (src/kernel/admission.ts). */
  readonly concurrency?: { readonly total: number; readonly perPrincipal: number; readonly perOrganisation: number; readonly queuePerPrincipal: number };
}

export interface Workspace {
  readonly dir: string;
  readonly name: string;
  readonly defaults: WorkspaceDefaults;
  readonly datasets: ReadonlyMap<string, DatasetDef>;
  readonly obligations: ReadonlyMap<string, ObligationDef>;
  readonly principals: ReadonlyMap<string, PrincipalDef>;
  /** Cedar policy text, per file (relative path → text). */
  readonly policyFiles: ReadonlyMap<string, string>;
  readonly cedarSchema: string;
  /** Secret for keyed-hash masks (never logged, never returned). */
  readonly hashKey: Buffer;
  /** Who must sign in with MFA, and how long sessions last. */
  readonly identity?: IdentityConfig;
  /** Baseline data-loss prevention for every result (obligations may add stricter). */
  readonly dlp?: DlpConfig | null;
  /** Content hash of everything that shapes decisions: "sha256:<hex>". */
  readonly policyVersion: string;
  /** region/federation/residency sections, read from the same text (src/federation/residency-config.ts); absent: not federated. */
  readonly residency?: ResidencySection;
}
