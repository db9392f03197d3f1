/**
 * The contractor-governance store on PostgreSQL: a `Core` (src/governance/types.ts) over the
 * state pool, so several Gatehouse nodes share one set of agreements, grants, vendors,
 * acknowledgements, training, retention rules, holds, findings and classification decisions.
 *
 *   const state = await openPostgresState({ url, password });
 *   const gov = openPgGovernance(state);              // a GovernanceStore, same API as the SQLite one
 *   await gov.evaluate({ principal, dataset, purpose });
 *
 * The modules' SQL is written once (`?` parameters, `ON CONFLICT`, ISO text times). This core
 * rewrites `?` to `$n`, qualifies `gov_*` tables with the schema, runs each text as a named
 * prepared statement (parsed once per connection), reads bigint counts as numbers and
 * booleans as 1/0 (as node:sqlite returns them). Text columns use the "C" collation, so
 * ISO times and ids compare and sort as in SQLite.
 *
 * Transactions run on one pooled client and first take a transaction-scoped advisory lock
 * for the schema (`pg_advisory_xact_lock`): governance writers run one at a time across every
 * node, exactly like SQLite's `BEGIN IMMEDIATE`, so the read-check-write sequences of the store
 * (double approval of a request, overlapping agreements, termination, a classification decision)
 * cannot interleave; each statement then reads what earlier writers committed (READ COMMITTED).
 * (SERIALIZABLE alone was tried: on these small tables its predicate locks made concurrent
 * approvals fail each other over and over.) A deadlock or serialization failure rolls back and
 * runs the whole body again (jittered backoff, `maxRetries`); a refusal thrown by the body
 * (GovernanceError) is final. Reads outside a transaction (the gate) take no lock. If PostgreSQL cannot be reached the
 * call fails with STATE_UNAVAILABLE (the request fails closed; nothing was changed).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Pool, PoolClient, QueryResult } from 'pg';
import { GovernanceStore } from '../governance/store.ts';
import type { Core, Row, SqlValue, Statement } from '../governance/types.ts';
import { StateError, StateUnavailable } from './errors.ts';
import { quoteSchema } from './migrations.ts';
import type { PostgresState } from './postgres.ts';

export interface PgGovernanceOptions {
  /** Schema holding the gov_* tables (created by openPostgresState / migrate). Default "gatehouse". */
  readonly schema?: string;
  /** Clock for operations that take no explicit time (default: the system clock). */
  readonly now?: () => Date;
  /** Re-runs of a transaction after serialization failures or deadlocks (default 30). */
  readonly maxRetries?: number;
}

/** Retried: serialization_failure, deadlock_detected. */
const RETRYABLE = new Set(['40001', '40P01']);

/** bigint (count(*), sums) as a JS number, as node:sqlite gives it; governance values are small. */
const TYPES = {
  getTypeParser(oid: number, format?: string): (v: string) => unknown {
    if (oid === 20) return (v: string) => Number(v);
    return (pg.types.getTypeParser as (o: number, f?: string) => (v: string) => unknown)(oid, format);
  },
};

interface TxState { readonly core: PgCore; readonly client: PoolClient }
const inTx = new AsyncLocalStorage<TxState>();

interface Prepared { readonly name: string; readonly text: string }

export class PgCore implements Core {
  readonly dialect = 'postgres' as const;
  readonly schema: string;
  readonly #pool: Pool;
  readonly #S: string;
  readonly #clock: () => Date;
  readonly #maxRetries: number;
  readonly #stmts = new Map<string, Statement>();
  readonly #lockKey: string;

  constructor(pool: Pool, options: PgGovernanceOptions = {}) {
    this.#pool = pool;
    this.schema = options.schema ?? 'gatehouse';
    this.#S = quoteSchema(this.schema);
    this.#clock = options.now ?? (() => new Date());
    this.#maxRetries = options.maxRetries ?? 30;
    this.#lockKey = `gatehouse-governance:${this.schema}`;
  }

  /** SQLite-style SQL as PostgreSQL: `?` → `$n`, `?N` → `$N`, `gov_x` → "schema".gov_x (outside string literals). */
  translate(sql: string): string {
    let out = '';
    let n = 0;
    let inString = false;
    for (let i = 0; i < sql.length; i++) {
      const ch = sql[i]!;
      if (ch === "'") { inString = !inString; out += ch; continue; }
      if (inString) { out += ch; continue; }
      if (ch === '?') {
        // `?NNN` (SQLite's numbered parameter) is `$NNN`; a bare `?` is the next number.
        const m = /^\d+/.exec(sql.slice(i + 1));
        if (m) { out += `$${m[0]}`; i += m[0].length; continue; }
        out += `$${++n}`;
        continue;
      }
      if (ch === 'g' && sql.startsWith('gov_', i) && (i === 0 || !/[\w."]/.test(sql[i - 1]!))) {
        out += `${this.#S}.`;
      }
      out += ch;
    }
    return out;
  }

  stmt(sql: string): Statement {
    let s = this.#stmts.get(sql);
    if (!s) {
      const text = this.translate(sql);
      const p: Prepared = { name: `gh_gov_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
      s = {
        get: async (...params: SqlValue[]) => (await this.#query(p, params)).rows[0],
        all: async (...params: SqlValue[]) => (await this.#query(p, params)).rows,
        run: async (...params: SqlValue[]) => ({ changes: (await this.#query(p, params)).rowCount ?? 0 }),
      };
      this.#stmts.set(sql, s);
    }
    return s;
  }

  async #query(p: Prepared, params: SqlValue[]): Promise<QueryResult<Row>> {
    const tx = inTx.getStore();
    const on = tx && tx.core === this ? tx.client : this.#pool;
    let r: QueryResult<Row>;
    try {
      r = await on.query<Row>({ name: p.name, text: p.text, values: params.map(toPg), types: TYPES } as pg.QueryConfig);
    } catch (e) {
      throw classify(e);
    }
    for (const row of r.rows) {
      for (const k in row) if (typeof row[k] === 'boolean') (row as Record<string, unknown>)[k] = row[k] ? 1 : 0;
    }
    return r;
  }

  async tx<T>(fn: () => Promise<T>): Promise<T> {
    const cur = inTx.getStore();
    if (cur && cur.core === this) return fn(); // nested: join the outer transaction
    for (let attempt = 0; ; attempt++) {
      let client: PoolClient;
      try {
        client = await this.#pool.connect();
      } catch (e) {
        throw new StateUnavailable(`the governance store cannot reach PostgreSQL: ${reason(e)}`, { cause: e });
      }
      let broken = false;
      try {
        await client.query('BEGIN');
        // One writer at a time across every node, as SQLite's BEGIN IMMEDIATE: every statement
        // after the lock sees what earlier writers committed (READ COMMITTED), so read-check-write
        // sequences cannot interleave. Governance writes are rare; the gate only reads.
        await client.query({ name: 'gh_gov_lock', text: 'SELECT pg_advisory_xact_lock(hashtext($1))', values: [this.#lockKey] });
        const out = await inTx.run({ core: this, client }, fn);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => { broken = true; });
        const code = pgCode(e);
        if (code !== null && RETRYABLE.has(code) && attempt < this.#maxRetries) {
          client.release();
          client = null as unknown as PoolClient;
          await sleep(Math.floor(Math.random() * Math.min(200, 5 * 2 ** Math.min(attempt, 6))) + 1);
          continue;
        }
        throw classify(e);
      } finally {
        client?.release(broken);
      }
    }
  }

  now(): Date {
    return this.#clock();
  }

  /** The pool belongs to the PostgreSQL state (state.close() ends it). */
  async close(): Promise<void> {}
}

/** A GovernanceStore on the state's PostgreSQL database (tables created by its migrations). */
export function openPgGovernance(state: Pick<PostgresState, 'pool' | 'schema'>, options: Omit<PgGovernanceOptions, 'schema'> = {}): GovernanceStore {
  return GovernanceStore.onCore(new PgCore(state.pool, { ...options, schema: state.schema }));
}

function toPg(v: SqlValue): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array && !Buffer.isBuffer(v)) return Buffer.from(v);
  return v;
}

function pgCode(e: unknown): string | null {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : null;
}

function reason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown } | null;
  const m = typeof err?.message === 'string' ? err.message.replace(/postgres(ql)?:\/\/\S+/g, '(url)') : 'unknown error';
  return typeof err?.code === 'string' ? `${m} (${err.code})` : m;
}

/**
 * Errors from the body (GovernanceError, key errors) pass unchanged; a PostgreSQL error with a
 * SQLSTATE (constraint, serialization after the retries) is a StateError; anything else from the
 * driver (connection refused, reset, timeout) is StateUnavailable.
 */
function classify(e: unknown): unknown {
  if (e instanceof StateError) return e;
  const code = pgCode(e);
  const fromServer = e instanceof Error && (e as { severity?: unknown }).severity !== undefined;
  if (fromServer && code !== null) {
    if (RETRYABLE.has(code)) return new StateError('STATE_BUSY', `the governance store is busy (${code}); retry`, 503, { cause: e });
    return e; // constraint violations and the like: the caller's own error path
  }
  if (e instanceof Error && (code === null || /^(E[A-Z]+|57P0\d|08\d{3})$/.test(code)) && !(e.constructor?.name ?? '').endsWith('GovernanceError')) {
    if (code !== null || /connect|terminat|timeout|ECONN|socket/i.test(e.message)) return new StateUnavailable(`the governance store cannot reach PostgreSQL: ${reason(e)}`, { cause: e });
  }
  return e;
}
