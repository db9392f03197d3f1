/**
 * One table pins effective access: for each combination of a declared mask, `unmask`,
 * obligation masks, join-only, row caps and aggregation-only, what the rule says — and that
 * the mask transformer (what a query returns), the dataset listing (what GET /v1/datasets and
 * the wire catalog say) and the access review all say exactly that.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveAccess } from './effective-access.ts';
import { columnMasks } from './mask.ts';
import { governedScan } from './scan.ts';
import { describeMask } from '../masks/registry.ts';
import { datasetView } from '../../operations/datasets/list.ts';
import { effectOf } from '../../identity/access-review.ts';
import { bindQuery } from '../bind.ts';
import { loadParser, parseSql } from '../parse.ts';
import type { DatasetDef, MaskSpec, ObligationDef } from '../../model/types.ts';
import type { Expr } from '../ir.ts';

const HASH: MaskSpec = { kind: 'hash' } as MaskSpec;
const REDACT: MaskSpec = { kind: 'redact' } as MaskSpec;
const LAST4: MaskSpec = { kind: 'last4' } as MaskSpec;

function dataset(mask: MaskSpec | null): DatasetDef {
  return {
    name: 'people', description: null, source: { kind: 'csv', path: 'x.csv' }, classification: 'confidential', tags: [], privacyUnit: 'id',
    region: null, owner: null, purposes: ['research'],
    columns: [
      { name: 'id', type: 'BIGINT', classification: 'internal', tags: [], mask: null, bounds: null, description: null },
      { name: 'ssn', type: 'VARCHAR', classification: 'regulated', tags: [], mask, bounds: null, description: null },
    ],
  };
}

function obligation(o: Partial<ObligationDef>): ObligationDef {
  return { name: 'o', rowFilter: null, aggregationOnly: null, rowCap: null, unmask: [], masks: {}, joinOnly: [], ...o };
}

interface Case {
  readonly name: string;
  readonly declared: MaskSpec | null;
  readonly obligations: readonly Partial<ObligationDef>[];
  readonly mask: MaskSpec | null;
  readonly joinOnly?: boolean;
  readonly rowCap?: number;
  readonly aggregationOnly?: number | null;
}

const DEFAULT_CAP = 1000;

before(async () => { await loadParser(); });

const CASES: readonly Case[] = [
  { name: 'no obligation keeps the declared mask', declared: HASH, obligations: [], mask: HASH },
  { name: 'no declared mask and no obligation leaves the column as stored', declared: null, obligations: [], mask: null },
  { name: 'unmask lifts the declared mask', declared: HASH, obligations: [{ unmask: ['ssn'] }], mask: null },
  { name: 'an obligation mask replaces the declared mask', declared: HASH, obligations: [{ masks: { ssn: LAST4 } }], mask: LAST4 },
  { name: 'an obligation mask wins over unmask', declared: HASH, obligations: [{ unmask: ['ssn'] }, { masks: { ssn: REDACT } }], mask: REDACT },
  { name: 'two equal obligation masks agree', declared: null, obligations: [{ masks: { ssn: LAST4 } }, { masks: { ssn: LAST4 } }], mask: LAST4 },
  { name: 'two different obligation masks null the column (fail closed)', declared: HASH, obligations: [{ masks: { ssn: LAST4 } }, { masks: { ssn: REDACT } }], mask: { kind: 'null' } as MaskSpec },
  { name: 'join-only is reported with the mask it keeps', declared: HASH, obligations: [{ joinOnly: ['ssn'] }], mask: HASH, joinOnly: true },
  { name: 'the smallest row cap applies', declared: null, obligations: [{ rowCap: 50 }, { rowCap: 20 }], mask: null, rowCap: 20 },
  { name: 'aggregation-only takes the largest minimum group', declared: null, obligations: [{ aggregationOnly: { minGroupSize: 5 } }, { aggregationOnly: { minGroupSize: 11 } }], mask: null, aggregationOnly: 11 },
];

/** The mask the transformer puts on `ssn` in a governed scan of `SELECT ssn FROM people`. */
function transformerMask(ds: DatasetDef, obligations: readonly ObligationDef[]): string | null {
  const bound = bindQuery(parseSql('SELECT ssn FROM people'), { dataset: (n) => (n === 'people' ? ds : undefined) });
  const ctx = { principal: { id: 'p', kind: 'user' as const, displayName: null, groups: [], attributes: {}, apiKeySha256: [] }, datasets: new Map([['people', ds]]), obligations: new Map([['people', obligations]]), rowFilters: new Map(), defaultRowCap: DEFAULT_CAP, columnsUsed: new Set(bound.columns) };
  const scanned = governedScan.apply(bound.query, ctx).query;
  const out = columnMasks.apply(scanned, ctx);
  const label = out.applied.find((a) => a.startsWith('mask:people.ssn='));
  const from = out.query.from;
  assert.ok(from && from.kind === 'dataset' && from.scan);
  const expr = from.scan.columns.find((c) => c.name === 'ssn')!.expr as Expr;
  // No label ⇔ the raw column is read as stored.
  assert.equal(label === undefined, expr.kind === 'raw', 'the applied label and the scan agree');
  return label ? label.slice('mask:people.ssn='.length) : null;
}

for (const c of CASES) {
  test(`effective access: ${c.name} — and the query, the listing and the access review say the same`, () => {
    const ds = dataset(c.declared);
    const obligations = c.obligations.map(obligation);
    const access = effectiveAccess(ds, obligations, DEFAULT_CAP);
    const ssn = access.columns.get('ssn')!;
    assert.deepEqual(ssn.mask, c.mask);
    assert.equal(ssn.joinOnly, c.joinOnly ?? false);
    assert.equal(access.rowCap, c.rowCap ?? DEFAULT_CAP);
    assert.deepEqual(access.aggregationOnly, c.aggregationOnly ? { minGroupSize: c.aggregationOnly } : null);

    const described = c.mask ? describeMask(c.mask) : null;
    if (!c.joinOnly) assert.equal(transformerMask(ds, obligations), described, 'what a query returns');
    const view = datasetView(ds, ['research'], obligations, DEFAULT_CAP);
    const col = view.columns.find((x) => x.name === 'ssn')!;
    assert.equal(col.masked, described, 'what the listing (and the wire catalog) says');
    if (!c.joinOnly) assert.equal(col.type, ssn.type, 'the listing gives the type a query returns');
    assert.equal(col.joinOnly, c.joinOnly ?? false);
    assert.equal(view.rowCap, c.rowCap ?? DEFAULT_CAP);
    const review = effectOf(ds, obligations, [], DEFAULT_CAP).columns.find((x) => x.column === 'ssn')!;
    assert.equal(review.mask, described, 'what the access review says');
  });
}
