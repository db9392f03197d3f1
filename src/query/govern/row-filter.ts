/**
 * Row filters: `region = principal.region`. The expression is the owner's, parsed once by
 * the same SQL parser; `principal.<attribute>` becomes a literal of the caller's attribute,
 * every other name must be a column of the dataset and reads the raw stored value. The
 * filter sits inside the governed scan, so no OR in the user's WHERE can widen it.
 */
import { GatehouseError } from '../../errors.ts';
import type { AttributeValue, DatasetDef, PrincipalDef } from '../../model/types.ts';
import { mapExpr, mapQuery, type Expr } from '../ir.ts';
import { obligationsFor, type ObligationTransformer } from './context.ts';

function attributeLiteral(v: AttributeValue | undefined, name: string): Expr {
  if (v === undefined) {
    throw new GatehouseError('POLICY_DENIED', `a row filter needs your attribute "${name}", which your identity does not carry`, { hint: 'ask an administrator to set the attribute; without it no rows can be selected safely' });
  }
  if (typeof v === 'string') return { kind: 'literal', type: 'string', value: v };
  if (typeof v === 'number') return { kind: 'literal', type: 'number', value: String(v) };
  if (typeof v === 'boolean') return { kind: 'literal', type: 'boolean', value: v };
  throw new GatehouseError('POLICY_DENIED', `a row filter uses the list attribute "${name}" outside IN (...)`);
}

/** Binds a row filter's names: principal attributes to literals, columns to raw stored values. */
export function bindRowFilter(filter: Expr, dataset: DatasetDef, principal: PrincipalDef | null): Expr {
  return mapExpr(filter, (x) => {
    if (x.kind === 'inList' && x.list.length === 1 && x.list[0]!.kind === 'ref' && x.list[0]!.qualifier === 'principal' && principal) {
      const v = principal.attributes[x.list[0]!.name];
      if (Array.isArray(v)) {
        if (v.length === 0) return { kind: 'literal', type: 'boolean', value: x.negated };
        return { ...x, list: v.map((s) => ({ kind: 'literal', type: 'string', value: s }) as Expr) };
      }
    }
    if (x.kind === 'inQuery' || x.kind === 'exists' || x.kind === 'scalarQuery') {
      throw new GatehouseError('WORKSPACE_INVALID', 'row filters cannot contain subqueries');
    }
    if (x.kind === 'func' && x.over) throw new GatehouseError('WORKSPACE_INVALID', 'row filters cannot contain window functions');
    if (x.kind !== 'ref') return x;
    if (x.qualifier === 'principal') {
      if (principal === null) return { kind: 'literal', type: 'null', value: null };
      if (x.name === 'id') return { kind: 'literal', type: 'string', value: principal.id };
      return attributeLiteral(principal.attributes[x.name], x.name);
    }
    if (x.qualifier !== null && x.qualifier !== dataset.name) {
      throw new GatehouseError('WORKSPACE_INVALID', `row filter on "${dataset.name}" refers to "${x.qualifier}.${x.name}"; use the dataset's own columns and principal.<attribute>`);
    }
    const col = dataset.columns.find((c) => c.name === x.name);
    if (!col) throw new GatehouseError('WORKSPACE_INVALID', `row filter on "${dataset.name}" refers to unknown column "${x.name}"`);
    return { kind: 'raw', name: col.name, type: col.type };
  });
}

export const rowFilters: ObligationTransformer = {
  name: 'rowFilter',
  apply(query, ctx) {
    const applied = new Set<string>();
    const out = mapQuery(query, {
      dataset: (d) => {
        const ds = ctx.datasets.get(d.dataset)!;
        const filters: Expr[] = [];
        for (const o of obligationsFor(ctx, ds.name)) {
          if (o.rowFilter === null) continue;
          const parsed = ctx.rowFilters.get(o.name);
          if (!parsed) throw new GatehouseError('POLICY_DENIED', `the row filter of obligation "${o.name}" is unavailable; access is denied until it is fixed`);
          try {
            filters.push(bindRowFilter(parsed, ds, ctx.principal));
          } catch (err) {
            if (err instanceof GatehouseError && err.code === 'WORKSPACE_INVALID') {
              // A policy not scoped to one dataset attached a filter that does not fit this one.
              throw new GatehouseError('POLICY_DENIED', `the row filter of obligation "${o.name}" cannot apply to dataset "${ds.name}"; access is denied until the policy is fixed`, { hint: 'ask the data owner to scope the policy to the datasets its obligations fit' });
            }
            throw err;
          }
          applied.add(`rowFilter:${ds.name}(${o.name})`);
        }
        return { ...d, scan: { ...d.scan!, filters: [...d.scan!.filters, ...filters] } };
      },
    });
    return { query: out, applied: [...applied].sort() };
  },
};
