/**
 * Clean-room analysis rules on the governed path (src/cleanroom/rules): each rule broken
 * from the angle an analyst trying to see another bank's customers would try.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadParser } from '../src/query/parse.ts';
import { governAnalysis, ruleObligations } from '../src/cleanroom/rules/govern-analysis.ts';
import { templateOf } from '../src/cleanroom/templates.ts';
import { parseRule, type Collaboration, type Contribution } from '../src/cleanroom/model.ts';

const COLS = [
  { name: 'account_key', type: 'VARCHAR' }, { name: 'customer_id', type: 'VARCHAR' }, { name: 'segment', type: 'VARCHAR' },
  { name: 'flagged', type: 'BOOLEAN' }, { name: 'exposure', type: 'DOUBLE' },
] as const;

function accounts(table: string, owner: string, min: number, joinRequired = true): Contribution {
  return {
    table, owner, dataset: 'accounts', columns: COLS,
    rule: parseRule({
      kind: 'aggregation', joinColumns: ['account_key'], dimensionColumns: ['segment', 'flagged'],
      aggregateColumns: [{ column: 'exposure', functions: ['sum', 'avg'] }],
      scalarFunctions: ['round'], joinRequired, privacyUnit: 'customer_id', minDistinctUnits: min,
    }, COLS),
  };
}

const WATCH_COLS = [{ name: 'account_key', type: 'VARCHAR' }, { name: 'risk_band', type: 'VARCHAR' }, { name: 'analyst_note', type: 'VARCHAR' }] as const;

function collaboration(templates: Collaboration['templates'] = []): Collaboration {
  return {
    id: 'fraud-ring', name: 'Fraud rings', purpose: 'fraud-detection', creator: 'bank-a', computeNode: 'bank-a', status: 'active', version: 1,
    members: ['bank-a', 'bank-b', 'bank-c'].map((n) => ({ nodeId: n, publicKey: `ed25519:${n}`, abilities: ['query', 'receive', 'approve'], status: 'active' as const })),
    contributions: [
      accounts('a_accounts', 'bank-a', 25),
      accounts('b_accounts', 'bank-b', 10),
      { table: 'c_watch', owner: 'bank-c', dataset: 'watchlist', columns: WATCH_COLS, rule: parseRule({ kind: 'list', joinColumns: ['account_key'], listColumns: ['risk_band'] }, WATCH_COLS) },
      { table: 'b_list', owner: 'bank-b', dataset: 'accounts', columns: COLS, rule: parseRule({ kind: 'list', joinColumns: ['account_key'], listColumns: ['segment'] }, COLS) },
      { table: 'c_scores', owner: 'bank-c', dataset: 'scores', columns: WATCH_COLS, rule: parseRule({ kind: 'custom', joinColumns: ['account_key'], templates: ['bands'] }, WATCH_COLS) },
    ],
    templates,
  };
}

function refusal(fn: () => unknown): { code: string; detail: string; message: string } {
  try {
    fn();
  } catch (err) {
    const e = err as { code: string; detail: string | null; message: string };
    return { code: e.code, detail: e.detail ?? '', message: e.message };
  }
  assert.fail('the analysis was allowed');
}

const JOINED = 'FROM a_accounts a JOIN b_accounts b ON a.account_key = b.account_key';
const run = (sql: string, c = collaboration()) => governAnalysis(c, { sql, querier: 'bank-a' });

before(async () => { await loadParser(); });

describe('the aggregation rule', () => {
  it('allows an aggregate over dimensions joined on join columns, with the strictest threshold of both tables', () => {
    const g = run(`SELECT a.segment, sum(a.exposure) AS ea, avg(b.exposure) AS eb ${JOINED} WHERE b.flagged GROUP BY a.segment`);
    assert.ok(g.applied.includes('cleanroom.rule:a_accounts:aggregation'));
    assert.ok(g.governed.disclosure, 'disclosure control protects the result');
    const o = ruleObligations(collaboration(), ['a_accounts', 'b_accounts']);
    assert.equal(o.get('b_accounts')![0]!.aggregationOnly!.minGroupSize, 25);
    assert.equal(o.get('a_accounts')![0]!.aggregationOnly!.minGroupSize, 25);
    assert.deepEqual([...g.columnsNeeded.get('b_accounts')!].sort(), ['account_key', 'customer_id', 'exposure', 'flagged']);
  });

  it('refuses projecting a join column', () => {
    const r = refusal(() => run(`SELECT a.account_key, sum(a.exposure) ${JOINED} GROUP BY a.account_key`));
    assert.equal(r.code, 'OBLIGATION_VIOLATION');
    assert.match(r.message, /join column/);
  });

  it('refuses a join column in WHERE, where it could probe one account', () => {
    const r = refusal(() => run(`SELECT a.segment, sum(a.exposure) ${JOINED} WHERE b.account_key = 'GB-1' GROUP BY a.segment`));
    assert.match(r.message, /join column: it may be used only in JOIN/);
  });

  it('refuses a table whose rule requires a join with another member when it is queried alone', () => {
    const r = refusal(() => run('SELECT segment, sum(exposure) FROM a_accounts GROUP BY segment'));
    assert.match(r.message, /only be analysed joined with another member's table/);
  });

  it('refuses a disallowed aggregate, a disallowed function on a column, and a scalar function no owner allowed', () => {
    assert.match(refusal(() => run(`SELECT a.segment, max(a.exposure) ${JOINED} GROUP BY a.segment`)).message, /max\(\) is not an allowed clean-room aggregate/);
    assert.match(refusal(() => run(`SELECT a.segment, count(DISTINCT a.exposure) ${JOINED} GROUP BY a.segment`)).message, /count\(DISTINCT …\) of "a_accounts.exposure" is not allowed/);
    assert.match(refusal(() => run(`SELECT lower(a.segment), sum(a.exposure) ${JOINED} GROUP BY lower(a.segment)`)).message, /lower\(\) is not among the scalar functions/);
  });

  it('refuses a non-dimension column as a group key or filter', () => {
    assert.match(refusal(() => run(`SELECT a.exposure, sum(b.exposure) ${JOINED} GROUP BY a.exposure`)).message, /not a dimension column/);
    assert.match(refusal(() => run(`SELECT a.segment, sum(a.exposure) ${JOINED} WHERE a.exposure > 1000 GROUP BY a.segment`)).message, /not a dimension column/);
  });

  it('refuses LEFT joins, joins on other columns and row-level output', () => {
    assert.match(refusal(() => run('SELECT a.segment, sum(a.exposure) FROM a_accounts a LEFT JOIN b_accounts b ON a.account_key = b.account_key GROUP BY a.segment')).message, /LEFT JOIN is refused/);
    assert.match(refusal(() => run('SELECT a.segment, sum(a.exposure) FROM a_accounts a JOIN b_accounts b ON a.segment = b.segment GROUP BY a.segment')).message, /not a join column/);
    assert.match(refusal(() => run(`SELECT a.segment, a.flagged ${JOINED}`)).message, /must aggregate/);
  });

  it('refuses subqueries and CTEs that could reshape rows before aggregation', () => {
    assert.match(refusal(() => run(`WITH x AS (SELECT * FROM a_accounts) SELECT count(*) FROM x JOIN b_accounts b ON x.account_key = b.account_key`)).message, /one SELECT/);
  });
});

describe('the list rule', () => {
  it('lists listed columns of the overlap only', () => {
    const g = run('SELECT c.risk_band, b.segment FROM c_watch c JOIN b_list b ON c.account_key = b.account_key');
    assert.ok(g.applied.includes('cleanroom.rule:c_watch:list'));
  });

  it('refuses the table alone, unlisted columns, and aggregates', () => {
    assert.match(refusal(() => run('SELECT risk_band FROM c_watch')).message, /lists only rows that overlap/);
    assert.match(refusal(() => run('SELECT c.analyst_note FROM c_watch c JOIN b_list b ON c.account_key = b.account_key')).message, /not a listed column/);
    assert.match(refusal(() => run('SELECT c.account_key FROM c_watch c JOIN b_list b ON c.account_key = b.account_key')).message, /join column/);
    assert.match(refusal(() => run('SELECT count(*) FROM c_watch c JOIN b_list b ON c.account_key = b.account_key')).message, /not aggregates/);
    assert.match(refusal(() => run('SELECT c.risk_band FROM c_watch c JOIN b_accounts b ON c.account_key = b.account_key')).message, /cannot be analysed together/);
  });
});

describe('custom analysis templates', () => {
  const text = 'SELECT c.risk_band, sum(b.exposure) AS exposure FROM c_scores c JOIN b_accounts b ON c.account_key = b.account_key WHERE b.segment = $1 GROUP BY c.risk_band';

  it('refuses a table with a custom rule to free SQL and to a template no owner approved', () => {
    assert.equal(refusal(() => run(text.replace('$1', "'retail'"))).detail, 'CLEANROOM_TEMPLATE_UNAPPROVED');
    const t = templateOf('bands', text, 'bank-a');
    const r = refusal(() => governAnalysis(collaboration([t]), { sql: '', template: t, params: ['retail'], querier: 'bank-a' }));
    assert.equal(r.detail, 'CLEANROOM_TEMPLATE_UNAPPROVED');
  });

  it('runs once every owner of a touched table approved the hash, and needs re-approval when the text changes', () => {
    const t = templateOf('bands', text, 'bank-a');
    const approved = { ...t, approvals: { 'bank-b': t.hash, 'bank-c': t.hash } };
    const g = governAnalysis(collaboration([approved]), { sql: '', template: approved, params: ['retail'], querier: 'bank-a' });
    assert.ok(g.applied.some((l) => l.startsWith('cleanroom.template:bands@sha256:')));
    const changed = { ...templateOf('bands', text.replace('sum(b.exposure)', 'sum(b.exposure) + 0'), 'bank-a'), approvals: approved.approvals };
    const r = refusal(() => governAnalysis(collaboration([changed]), { sql: '', template: changed, params: ['retail'], querier: 'bank-a' }));
    assert.match(r.message, /text changed since the approval/);
  });
});
