/**
 * What obligation transformers receive: the decision's obligations per dataset, as data.
 * The query layer knows nothing of Cedar, HTTP or engines.
 */
import type { DatasetDef, ObligationDef, PrincipalDef } from '../../model/types.ts';
import type { Expr, Select } from '../ir.ts';

export interface GovernContext {
  readonly principal: PrincipalDef;
  readonly datasets: ReadonlyMap<string, DatasetDef>;
  /** Obligations of the determining policies, per dataset the query reads. */
  readonly obligations: ReadonlyMap<string, readonly ObligationDef[]>;
  /** Parsed row filters (unbound expressions) per obligation name. */
  readonly rowFilters: ReadonlyMap<string, Expr>;
  readonly defaultRowCap: number;
  /** "dataset.column" for every catalog column the query references (scans project only these). */
  readonly columnsUsed?: ReadonlySet<string>;
  /** Rows per dataset, recorded when the engine opened (Engine.rowEstimates); absent: no join cost bound. */
  readonly rowEstimates?: ReadonlyMap<string, number>;
  /** Largest estimated join output a query may have (defaults.maxJoinRows; cost-estimate.ts). */
  readonly maxJoinRows?: number;
  /** Erased or opted-out subject values per privacy-unit column, for this request (erasure.ts). */
  readonly erased?: ReadonlyMap<string, readonly string[]>;
  /** Datasets the engine reads from copies without some erased subjects' rows, and whom each lacks (erasure.ts). */
  readonly erasedCopies?: import('./erasure.ts').ErasedCopies;
}

export interface TransformResult {
  readonly query: Select;
  /** Human-readable labels of what was applied, for the response and the audit entry. */
  readonly applied: readonly string[];
  /** Set by the differential-privacy transformer: how the result must be released. */
  readonly release?: import('./differential-privacy.ts').DpReleasePlan;
  /** Set by the aggregation-only transformer: disclosure control for the result. */
  readonly disclosure?: import('./aggregation-only.ts').SdcPlan;
}

/** One obligation kind = one transformer over the IR. */
export interface ObligationTransformer {
  readonly name: string;
  apply(query: Select, ctx: GovernContext): TransformResult;
}

export function obligationsFor(ctx: GovernContext, dataset: string): readonly ObligationDef[] {
  return ctx.obligations.get(dataset) ?? [];
}
