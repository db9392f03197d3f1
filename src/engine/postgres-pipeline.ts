/**
 * One governed query on PostgreSQL in one round trip: the transaction set-up, the query and
 * the rollback are sent together as extended-protocol messages ending in a single Sync
 * (PostgreSQL docs, "Pipeline mode" and "Extended Query" in the frontend/backend protocol,
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-PIPELINING):
 *
 *   Parse/Bind/Execute  BEGIN READ ONLY
 *   Parse/Bind/Execute  SELECT set_config('statement_timeout', $1, true), set_config('search_path', 'pg_catalog', true)
 *   Parse/Bind/Describe/Execute  <the rendered query>
 *   Parse/Bind/Execute  ROLLBACK
 *   Sync
 *
 * Each Parse holds exactly one statement (the server refuses more), so the rendered query
 * is still a single statement whatever its text, exactly as with `queryMode: 'extended'`.
 * The guarantees of the three-trip version hold: nothing runs outside the read-only
 * transaction, the timeout and search_path are set (transaction-local) before the query
 * is parsed, and the transaction ends with ROLLBACK. If any message fails, the server
 * skips the rest up to Sync and leaves the transaction aborted; the caller then sends
 * ROLLBACK (a second round trip, on the error path only).
 *
 * This is a `pg` Submittable (the documented extension point that pg-cursor and
 * pg-query-stream use): the client queues it like any query and hands it the protocol
 * messages that arrive for it.
 */
import type pg from 'pg';

export interface PipelinedResult {
  readonly fields: readonly { readonly name: string; readonly dataTypeID: number; readonly dataTypeModifier: number }[];
  /** Each value in PostgreSQL's text form. */
  readonly rows: readonly (readonly (string | null)[])[];
  /** The transaction status at the end: 'I' (idle) unless something went wrong. */
  readonly status: string | null;
}

type Callback = (err: Error | null, result?: PipelinedResult) => void;

/** Statements, in order; the index of the rendered query's CommandComplete. */
const BEGIN = 'BEGIN READ ONLY';
const SETUP = "SELECT pg_catalog.set_config('statement_timeout', $1, true), pg_catalog.set_config('search_path', 'pg_catalog', true)";
const ROLLBACK = 'ROLLBACK';
const QUERY_INDEX = 2;

interface ProtocolConnection {
  readonly stream: { cork?: () => void; uncork?: () => void };
  parse(q: { text: string; name?: string; types?: number[] }): void;
  bind(c: { portal?: string; statement?: string; values?: (string | null)[] }): void;
  describe(m: { type: 'P' | 'S'; name?: string }): void;
  execute(c: { portal?: string; rows?: number }): void;
  sync(): void;
}

export class PipelinedReadOnlyQuery {
  callback: Callback | undefined;
  readonly #sql: string;
  readonly #timeoutMs: number;
  #completed = 0;
  #fields: PipelinedResult['fields'] = [];
  readonly #rows: (string | null)[][] = [];
  #done = false;

  constructor(sql: string, timeoutMs: number) {
    this.#sql = sql;
    this.#timeoutMs = timeoutMs;
  }

  /** Called by the client when the connection is free: the whole pipeline goes out in one write. */
  submit(connection: ProtocolConnection): null {
    connection.stream.cork?.();
    try {
      const step = (text: string, values: string[] = [], describe = false): void => {
        connection.parse({ text, name: '', types: [] });
        connection.bind({ portal: '', statement: '', values });
        if (describe) connection.describe({ type: 'P', name: '' });
        connection.execute({ portal: '', rows: 0 });
      };
      step(BEGIN);
      step(SETUP, [String(this.#timeoutMs)]);
      step(this.#sql, [], true);
      step(ROLLBACK);
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  handleRowDescription(msg: { fields: PipelinedResult['fields'] }): void {
    if (this.#completed === QUERY_INDEX) this.#fields = msg.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, dataTypeModifier: f.dataTypeModifier }));
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    // The set-up SELECT returns one row too; only the query's rows are kept.
    if (this.#completed === QUERY_INDEX) this.#rows.push(msg.fields);
  }

  handleCommandComplete(): void {
    this.#completed++;
  }

  handleEmptyQuery(): void {
    this.#completed++;
  }

  handlePortalSuspended(): void {
    this.#finish(new Error('unexpected PortalSuspended in a pipelined query'));
  }

  handleCopyInResponse(): void {
    this.#finish(new Error('unexpected COPY in a pipelined query'));
  }

  handleCopyData(): void { /* never requested */ }

  /** An ErrorResponse (the server now skips to Sync) or a dead connection. */
  handleError(err: Error): void {
    this.#finish(err);
  }

  handleReadyForQuery(_con: unknown): void {
    // pg's client records the status byte on itself before calling us.
    this.#finish(null);
  }

  #finish(err: Error | null): void {
    if (this.#done) return;
    this.#done = true;
    if (err) { this.callback?.(err); return; }
    if (this.#completed !== 4) { this.callback?.(new Error(`the pipelined query completed ${this.#completed} of 4 statements`)); return; }
    this.callback?.(null, { fields: this.#fields, rows: this.#rows, status: null });
  }
}

/** Runs `sql` read-only with a transaction-local timeout and search_path, in one round trip. */
export function runPipelined(client: pg.PoolClient, sql: string, timeoutMs: number): Promise<PipelinedResult> {
  return new Promise((resolve, reject) => {
    const q = new PipelinedReadOnlyQuery(sql, timeoutMs);
    q.callback = (err, result) => {
      if (err) { reject(err); return; }
      // Anything but idle means the ROLLBACK did not end the transaction: never reuse the connection.
      const status = (client as unknown as { _txStatus?: string | null })._txStatus ?? null;
      resolve({ ...result!, status });
    };
    (client as unknown as { query(s: PipelinedReadOnlyQuery): unknown }).query(q);
  });
}
