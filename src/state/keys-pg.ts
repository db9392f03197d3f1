/**
 * Data keys and artefacts on PostgreSQL, shared by every Gatehouse node on the database: the
 * one implementation of each (SqlDataKeyBackend in src/keys/data-keys.ts, SqlArtefactBackend in
 * src/keys/artefacts.ts) on the state's PostgreSQL driver, tables declared once in
 * src/sql/tables/keys.ts, ciphertext in the artefact_blobs table.
 *
 *   const keys = openPgDataKeys(state, keyring);          // DataKeyStore
 *   const artefacts = openPgArtefacts(state, keys);       // ArtefactStore
 *
 * Crypto-shredding is `DELETE FROM data_keys` with the tombstone in the same transaction: the
 * next unwrap on any node finds no row and is refused (DataKeyStore checks the row even when
 * it has the key cached), so an artefact saved on node A and destroyed on node B is undecryptable
 * everywhere at once. The ciphertext row is deleted too. PostgreSQL keeps a deleted row's bytes
 * in the table (until VACUUM) and in WAL and backups for a while: those copies hold only the
 * *wrapped* key, which is useless without the KEK; to make old copies useless for good, rotate
 * the KEK and retire the old version (`keys rotate`, DataKeyStore.rewrapAll({ retire: true })).
 * So there is nothing to scrub after a destruction here, unlike the embedded file.
 *
 * Every node must use the same keyring (the same keyring.json and passphrase, or the same key
 * service): a key wrapped on one node is unwrapped on another.
 */
import { ArtefactStore, SqlArtefactBackend, SqlBlobs } from '../keys/artefacts.ts';
import { DataKeyStore, SqlDataKeyBackend, type DataKeyStoreOptions } from '../keys/data-keys.ts';
import type { KeyEncryptionService } from '../keys/keyring.ts';
import type { PostgresState } from './postgres.ts';
import { PgDriver } from '../sql/postgres.ts';

/** The data keys of every node on this database, wrapped by `kms` (the same keyring on every node). */
export function openPgDataKeys(state: Pick<PostgresState, 'pool' | 'schema'>, kms: KeyEncryptionService, options: DataKeyStoreOptions = {}): DataKeyStore {
  return DataKeyStore.onBackend(`postgres:${state.schema}`, new SqlDataKeyBackend(new PgDriver(state.pool, { schema: state.schema })), kms, options);
}

/** Saved results and exports of every node on this database (ciphertext in PostgreSQL). */
export function openPgArtefacts(state: Pick<PostgresState, 'pool' | 'schema'>, keys: DataKeyStore, now?: () => Date): ArtefactStore {
  const driver = new PgDriver(state.pool, { schema: state.schema });
  return ArtefactStore.onBackend(`postgres:${state.schema}`, new SqlArtefactBackend(driver, new SqlBlobs(driver)), keys, now);
}
