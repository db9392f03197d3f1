/**
 * Erasures and consent withdrawals (issue 23), recorded once in the node's state and read
 * by every request: one row per (privacy unit, subject value, scope). Append-only — an
 * erasure is never undone by editing a row; the `seq` column only grows, so a node knows
 * from `max(seq)` alone whether its cached set is current.
 *
 * The subject value is kept as given (the identifier the data carries, e.g. a patient_id):
 * excluding the subject's rows on every path needs it. It never enters the audit log; the
 * log holds a salted commitment (src/governance/erasure/receipt.ts).
 *
 * Declared once for both backends through the dialect: on PostgreSQL a migration of part
 * 'governance' (src/sql/migrations.ts), on SQLite applied idempotently by `ErasureStore.open`.
 */
import type { Dialect, SqlDriver } from '../driver.ts';

export function erasureTables(d: Dialect): string {
  const X = d.ifNotExists;
  const T = d.table.bind(d);
  return `
CREATE TABLE ${X}${T('erasures')} (
  seq          ${d.serialKey},
  id           ${d.textC} NOT NULL UNIQUE,
  unit         ${d.textC} NOT NULL,
  value        ${d.text} NOT NULL,
  kind         ${d.text} NOT NULL CHECK (kind IN ('erasure', 'opt-out')),
  purposes     ${d.text} NOT NULL,
  recorded_ms  ${d.bigint} NOT NULL,
  recorded_by  ${d.text} NOT NULL
)${d.tableSuffix};
${d.appendOnly('erasures')}`;
}

export interface ErasureRow {
  readonly seq: number;
  readonly id: string;
  /** The privacy unit column the value belongs to (patient_id). */
  readonly unit: string;
  readonly value: string;
  readonly kind: 'erasure' | 'opt-out';
  /** Opt-outs: the purposes the subject withdrew consent from ([] with kind erasure: every purpose). */
  readonly purposes: readonly string[];
  readonly recordedAt: string;
  readonly recordedBy: string;
}

interface Raw { seq: number | bigint | string; id: string; unit: string; value: string; kind: string; purposes: string; recorded_ms: number | bigint | string; recorded_by: string }

const toRow = (r: Raw): ErasureRow => ({
  seq: Number(r.seq), id: r.id, unit: r.unit, value: r.value, kind: r.kind as ErasureRow['kind'],
  purposes: JSON.parse(r.purposes) as string[], recordedAt: new Date(Number(r.recorded_ms)).toISOString(), recordedBy: r.recorded_by,
});

/** The erasure table on the state's SQL driver (an embedded file, or PostgreSQL shared by nodes). */
export class ErasureStore {
  readonly #sql: SqlDriver;

  constructor(sql: SqlDriver) {
    this.#sql = sql;
  }

  /** Records one erasure or opt-out; an identical one already recorded is returned instead (idempotent). */
  async record(input: Omit<ErasureRow, 'seq' | 'recordedAt'> & { readonly recordedAt: Date }): Promise<{ row: ErasureRow; created: boolean }> {
    return this.#sql.transaction(async (q) => {
      const same = await q.get<Raw>('SELECT * FROM {erasures} WHERE unit = ? AND value = ? AND kind = ? AND purposes = ?', [input.unit, input.value, input.kind, JSON.stringify([...input.purposes].sort())]);
      if (same) return { row: toRow(same), created: false };
      await q.run('INSERT INTO {erasures} (id, unit, value, kind, purposes, recorded_ms, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)', [input.id, input.unit, input.value, input.kind, JSON.stringify([...input.purposes].sort()), input.recordedAt.getTime(), input.recordedBy]);
      const row = await q.get<Raw>('SELECT * FROM {erasures} WHERE id = ?', [input.id]);
      return { row: toRow(row!), created: true };
    }, { mode: 'write', lock: 'gatehouse-erasures' });
  }

  /** The newest sequence number (0 when none): a cached set is current while this is unchanged. */
  async generation(): Promise<number> {
    const r = await this.#sql.get<{ g: number | bigint | string | null }>('SELECT max(seq) AS g FROM {erasures}');
    return Number(r?.g ?? 0);
  }

  async all(): Promise<ErasureRow[]> {
    return (await this.#sql.query<Raw>('SELECT * FROM {erasures} ORDER BY seq')).map(toRow);
  }

  async get(id: string): Promise<ErasureRow | null> {
    const r = await this.#sql.get<Raw>('SELECT * FROM {erasures} WHERE id = ?', [id]);
    return r ? toRow(r) : null;
  }

  close(): Promise<void> {
    return this.#sql.close();
  }
}
