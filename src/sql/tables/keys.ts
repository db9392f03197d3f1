/**
 * The data-key and artefact tables (src/keys/data-keys.ts, src/keys/artefacts.ts), declared
 * once for both backends; the dialect (src/sql/driver.ts) supplies what differs.
 *
 *   data_keys        one row per live data key, wrapped by the keyring's KEK (never plaintext)
 *   destroyed_keys   tombstones of crypto-shredded keys (when, why, SHA-256 of the wrapped key): append-only
 *   artefacts        saved results and exports: metadata, legal hold, destruction mark
 *   artefact_blobs   each artefact's ciphertext, where the artefacts share a database (PostgreSQL);
 *                    an embedded node keeps one file per artefact instead (artefacts.ts)
 *
 * Embedded, the keys live in data-keys.sqlite and the artefact metadata in
 * artefacts/artefacts.sqlite, as they always have; the tables keep their names. Text compared
 * or sorted (ids, times) is `textC`: bytewise, as SQLite compares it.
 */
import type { Dialect } from '../driver.ts';

export function dataKeyTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), C = d.textC, S = d.text;
  return `
CREATE TABLE ${X}${T('data_keys')} (
  key_id ${C} PRIMARY KEY,
  subject ${C} NOT NULL,
  kind ${C} NOT NULL CHECK (kind IN ('dataset', 'result', 'export', 'secret')),
  labels ${S} NOT NULL,
  wrapped ${S} NOT NULL,
  kek_version ${C} NOT NULL,
  created_at ${C} NOT NULL
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('data_keys')}_kek ON ${T('data_keys')} (kek_version);
CREATE INDEX ${X}${d.bare('data_keys')}_subject ON ${T('data_keys')} (subject);
CREATE TABLE ${X}${T('destroyed_keys')} (
  key_id ${C} PRIMARY KEY,
  subject ${C} NOT NULL,
  kind ${C} NOT NULL,
  labels ${S} NOT NULL,
  kek_version ${C} NOT NULL,
  created_at ${C} NOT NULL,
  destroyed_at ${C} NOT NULL,
  reason ${S} NOT NULL,
  wrapped_key_digest ${S} NOT NULL
)${d.tableSuffix};
-- Tombstones are evidence.
${d.appendOnly('destroyed_keys')}
`;
}

export function artefactTables(d: Dialect): string {
  const X = d.ifNotExists, T = d.table.bind(d), C = d.textC, S = d.text;
  return `
CREATE TABLE ${X}${T('artefacts')} (
  id ${C} PRIMARY KEY,
  kind ${C} NOT NULL CHECK (kind IN ('result', 'export')),
  owner ${C} NOT NULL,
  labels ${S} NOT NULL,
  media_type ${S} NOT NULL,
  retain_until ${C},
  key_id ${C} NOT NULL,
  sha256 ${S} NOT NULL,
  ciphertext_sha256 ${S} NOT NULL,
  bytes ${d.bigint} NOT NULL,
  created_at ${C} NOT NULL,
  legal_hold ${S},
  destroyed_at ${C},
  destroy_reason ${S}
)${d.tableSuffix};
CREATE INDEX ${X}${d.bare('artefacts')}_retain ON ${T('artefacts')} (retain_until) WHERE destroyed_at IS NULL;
CREATE INDEX ${X}${d.bare('artefacts')}_owner ON ${T('artefacts')} (owner);
`;
}

/** The ciphertext of shared artefacts (PostgreSQL: stored out of line, uncompressed — it is ciphertext). */
export function artefactBlobTable(d: Dialect): string {
  return `
CREATE TABLE ${d.ifNotExists}${d.table('artefact_blobs')} (
  id ${d.textC} PRIMARY KEY,
  ciphertext ${d.blob} NOT NULL
)${d.tableSuffix};
${d.name === 'postgres' ? `ALTER TABLE ${d.table('artefact_blobs')} ALTER COLUMN ciphertext SET STORAGE EXTERNAL;` : ''}
`;
}
