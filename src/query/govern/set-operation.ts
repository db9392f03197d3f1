/**
 * Set operations (UNION / EXCEPT / INTERSECT) are for row-level readers. Every other
 * obligation applies to each branch as to a plain query (the IR mappers walk both branches),
 * but aggregation-only and differential privacy judge one aggregate query over one FROM:
 * a union of two aggregates would let differences of overlapping groups bypass the
 * minimum group size, and DP would need a privacy budget and unit bound for the whole. So a
 * query that reads a dataset under either obligation may not contain a set operation at all;
 * each aggregate is asked for on its own instead. This runs before those transformers, so
 * the refusal names the real reason.
 */
import { GatehouseError } from '../../errors.ts';
import { datasetItems, forEachSelect, type SetOperator } from '../ir.ts';
import { obligationsFor, type ObligationTransformer } from './context.ts';

export const setOperations: ObligationTransformer = {
  name: 'setOperation',
  apply(query, ctx) {
    let op: SetOperator | null = null;
    const protectedBy = new Map<string, string>();
    forEachSelect(query, (b) => {
      if (b.from?.kind === 'setOp') op ??= b.from.op;
      for (const d of datasetItems(b.from)) {
        for (const o of obligationsFor(ctx, d.dataset)) {
          if (o.aggregationOnly) protectedBy.set(d.dataset, 'only as aggregates');
          else if (o.differentialPrivacy && !protectedBy.has(d.dataset)) protectedBy.set(d.dataset, 'only with differential privacy');
        }
      }
    });
    if (op === null || protectedBy.size === 0) return { query, applied: [] };
    const [ds, how] = [...protectedBy][0]!;
    throw new GatehouseError('OBLIGATION_VIOLATION', `${(op as SetOperator).toUpperCase()} is not available on dataset "${ds}": it is released ${how}, and set operations are for row-level access`, { hint: `run each aggregate over "${ds}" as its own query` });
  },
};
