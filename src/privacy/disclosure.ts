/**
 * Statistical disclosure control for aggregation-only results (the release step of the
 * `aggregationOnly` obligation). The engine returns every group with its count of
 * distinct privacy units as a hidden last column; this module withholds groups below the
 * threshold (primary), withholds complements so a withheld group cannot be recovered by
 * subtracting visible groups from a total (secondary, one- and two-way tables; see
 * docs/disclosure-control.md), rounds counts if the obligation asks, and drops withheld
 * groups from the result — so neither their values nor their existence leave.
 */
import type { CellValue, EngineResult, ResultColumn } from '../model/result.ts';
import { GatehouseError } from '../errors.ts';
import { MAX_GROUPS, type SdcPlan } from '../query/govern/aggregation-only.ts';
import { protectAggregate, SdcUnprotectable } from './sdc/index.ts';

export interface DisclosureRelease {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly CellValue[])[];
  /** Groups withheld (primary and secondary together; the kinds are not disclosed). */
  readonly withheld: number;
  readonly truncated: boolean;
  readonly label: string;
}

export function protectRelease(plan: SdcPlan, result: EngineResult, rowLimit: number, capAfterOffset: number = rowLimit): DisclosureRelease {
  if (result.rows.length > MAX_GROUPS) {
    throw new GatehouseError('OBLIGATION_VIOLATION', `the query produces more than ${MAX_GROUPS.toLocaleString('en')} groups before disclosure control`, { hint: 'group by coarser keys' });
  }
  const visible = plan.visibleColumns;
  const names = Array.from({ length: visible }, (_, i) => `c${i}`);
  const rows = result.rows.map((r) => r.slice(0, visible) as CellValue[]);
  const unitCounts = result.rows.map((r) => {
    const n = r[visible];
    return typeof n === 'number' ? n : Number(n ?? 0);
  });
  let protectedResult;
  try {
    protectedResult = protectAggregate(
      {
        columns: names, rows, unitCounts,
        groupKeys: plan.groupKeys.map((i) => `c${i}`),
        measures: plan.measures.map((m) => ({ name: `c${m.index}`, kind: m.kind })),
      },
      // Zeros are withheld too: publishing 0 while withholding 1-7 would tell "someone matches".
      { threshold: plan.threshold, rounding: plan.rounding, zeros: 'suppress' },
    );
  } catch (err) {
    if (err instanceof SdcUnprotectable) {
      throw new GatehouseError('OBLIGATION_VIOLATION', 'this table cannot be published without letting small groups be recovered from its totals', { hint: 'group by fewer or coarser keys, or filter to larger groups' });
    }
    throw new GatehouseError('INTERNAL', 'disclosure control could not process the result', { cause: err });
  }
  const kept = protectedResult.rows.filter((_, i) => protectedResult.suppressed[i] === null);
  const start = Math.min(plan.offset, kept.length);
  const limit = Math.min(rowLimit, plan.limit ?? rowLimit);
  const page = kept.slice(start, start + limit);
  return {
    columns: result.columns.slice(0, visible),
    rows: page,
    withheld: protectedResult.rows.length - kept.length,
    truncated: kept.length - start > capAfterOffset && (plan.limit === null || plan.limit > capAfterOffset),
    label: `disclosureControl(threshold ${plan.threshold} units, secondary ${protectedResult.secondary}, rounding ${plan.rounding})`,
  };
}
