/** Disclosure control on an aggregation-only result: primary and secondary suppression, rounding (src/privacy/disclosure.ts). */
import { protectRelease } from '../../privacy/disclosure.ts';
import type { SdcPlan } from '../../query/govern/index.ts';
import type { Protection } from '../execute.ts';

export function disclosureControl(plan: SdcPlan, rowLimit: number, capAfterOffset: number): Protection {
  return {
    name: 'disclosure',
    after: (_ctx, r) => {
      const out = protectRelease(plan, { columns: r.columns, rows: r.rows }, rowLimit, capAfterOffset);
      return { ...r, columns: out.columns, rows: out.rows, truncated: out.truncated, rowsSuppressed: r.rowsSuppressed + out.withheld, labels: [...r.labels, out.label] };
    },
  };
}
