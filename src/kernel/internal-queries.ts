/**
 * The reads Gatehouse itself makes of a dataset (never on a partner's behalf): built as IR
 * over the raw columns and rendered by the same renderer as every governed query.
 */
import type { DatasetDef } from '../model/types.ts';
import type { Expr, Select } from '../query/ir.ts';

const ALIAS = 't';

function scanOf(ds: DatasetDef, columns: readonly string[]): Select['from'] {
  return {
    kind: 'dataset', dataset: ds.name, alias: ALIAS,
    scan: {
      columns: columns.map((name) => ({ name, expr: { kind: 'raw' as const, name, type: ds.columns.find((c) => c.name === name)!.type } })),
      filters: [],
    },
  };
}

function columnRef(ds: DatasetDef, name: string): Expr {
  return { kind: 'column', relation: ALIAS, name, lineage: { sources: new Set([`${ds.name}.${name}`]) } };
}

function select(parts: Partial<Select> & Pick<Select, 'targets' | 'from'>): Select {
  return { kind: 'select', with: [], distinct: false, where: null, groupBy: [], having: null, orderBy: [], limit: null, offset: null, ...parts };
}

/** The first `limit` rows of some columns (the classifier's sample). */
export function sampleQuery(ds: DatasetDef, columns: readonly string[], limit: number): Select {
  return select({ targets: columns.map((c) => ({ expr: columnRef(ds, c), alias: c })), from: scanOf(ds, columns), limit });
}

/** The distinct non-null values of one column as text (the DLP value index). */
export function distinctTextQuery(ds: DatasetDef, column: string): Select {
  const ref = columnRef(ds, column);
  return select({
    distinct: true,
    targets: [{ expr: { kind: 'cast', arg: ref, type: { name: 'VARCHAR' } }, alias: column }],
    from: scanOf(ds, [column]),
    where: { kind: 'isNull', arg: ref, negated: true },
  });
}
