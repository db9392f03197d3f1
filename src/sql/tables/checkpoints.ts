/**
 * The audit log's checkpoint anchor in the node's state (src/audit/anchor.ts): the latest
 * checkpoint the log signed, kept outside the log's own files, so a log directory rolled
 * back to an older checkpoint.note (with entries edited behind it) is refused at start.
 *
 * One append-only row per anchored checkpoint, keyed by (origin, size); the newest row is
 * the anchor. Declared once for both backends through the dialect. On PostgreSQL this DDL
 * is a migration of part 'audit' (src/sql/migrations.ts); on SQLite it is applied
 * idempotently by `SqlCheckpointAnchor.open`.
 */
import type { AnchoredCheckpoint, CheckpointAnchor } from '../../audit/anchor.ts';
import { AnchorForked } from '../../audit/anchor.ts';
import type { Dialect, SqlDriver } from '../driver.ts';

export function checkpointTables(d: Dialect): string {
  const X = d.ifNotExists;
  const T = d.table.bind(d);
  return `
CREATE TABLE ${X}${T('audit_checkpoints')} (
  origin      ${d.textC} NOT NULL,
  size        ${d.bigint} NOT NULL CHECK (size >= 0),
  root_hash   ${d.text} NOT NULL,
  note_hash   ${d.text} NOT NULL,
  note        ${d.text} NOT NULL,
  anchored_ms ${d.bigint} NOT NULL,
  PRIMARY KEY (origin, size)
)${d.tableSuffix};
${d.appendOnly('audit_checkpoints')}`;
}

interface Row { size: number | bigint | string; root_hash: string; note_hash: string; note: string }

/** The anchor on the state's SQL driver (SQLite file or PostgreSQL shared by several nodes). */
export class SqlCheckpointAnchor implements CheckpointAnchor {
  readonly #sql: SqlDriver;
  readonly #origin: string;

  constructor(sql: SqlDriver, origin: string) {
    this.#sql = sql;
    this.#origin = origin;
  }

  /** On SQLite, creates the table if needed; on PostgreSQL the migration has. */
  static async open(sql: SqlDriver, origin: string): Promise<SqlCheckpointAnchor> {
    if (sql.dialect.name === 'sqlite') await sql.exec(checkpointTables(sql.dialect));
    return new SqlCheckpointAnchor(sql, origin);
  }

  async latest(): Promise<AnchoredCheckpoint | null> {
    const r = await this.#sql.get<Row>('SELECT size, root_hash, note_hash, note FROM {audit_checkpoints} WHERE origin = ? ORDER BY size DESC LIMIT 1', [this.#origin]);
    return r ? { size: Number(r.size), rootHash: r.root_hash, noteHash: r.note_hash, note: r.note } : null;
  }

  async advance(cp: AnchoredCheckpoint): Promise<void> {
    await this.#sql.transaction(async (q) => {
      const same = await q.get<{ root_hash: string }>('SELECT root_hash FROM {audit_checkpoints} WHERE origin = ? AND size = ?', [this.#origin, cp.size]);
      if (same) {
        if (same.root_hash !== cp.rootHash) throw new AnchorForked(cp.size);
        return;
      }
      const top = await q.get<{ size: number | bigint | string }>('SELECT max(size) AS size FROM {audit_checkpoints} WHERE origin = ?', [this.#origin]);
      if (top?.size !== null && top?.size !== undefined && Number(top.size) >= cp.size) return;
      await q.run('INSERT INTO {audit_checkpoints} (origin, size, root_hash, note_hash, note, anchored_ms) VALUES (?, ?, ?, ?, ?, ?)',
        [this.#origin, cp.size, cp.rootHash, cp.noteHash, cp.note, Date.now()]);
    }, { mode: 'write', lock: `audit_checkpoints:${this.#origin}` });
  }
}
