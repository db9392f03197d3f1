/**
 * What contractor governance needs at run time, opened lazily on first use from the state
 * directory: the governance records (src/governance/store.ts), the keyring and data keys
 * (src/keys/), and the encrypted artefact store for saved results and exports.
 *
 *   <state>/governance.sqlite     agreements, grants, vendors, acknowledgements, retention, findings…
 *   <state>/keyring.json          passphrase-protected key-encryption keys (GATEHOUSE_KEY_PASSPHRASE)
 *   <state>/data-keys.sqlite      per-artefact / per-dataset data keys, wrapped by the keyring
 *   <state>/artefacts/            saved results and exports, each under its own data key
 *
 * With `postgres` (a PostgresState from src/state/postgres.ts, or just its pool and schema),
 * the governance records, data keys and artefacts (metadata and ciphertext) live in that
 * database instead, shared by every node pointed at it; only the keyring stays a local file,
 * and it must be the same on every node (copy keyring.json, and again after a rotation).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePassphrase } from '../audit/keys.ts';
import { GovernanceStore } from '../governance/store.ts';
import { ArtefactStore } from '../keys/artefacts.ts';
import { DataKeyStore } from '../keys/data-keys.ts';
import { LocalKeyring } from '../keys/keyring.ts';
import { openPgGovernance } from '../state/governance-pg.ts';
import { openPgArtefacts, openPgDataKeys } from '../state/keys-pg.ts';
import type { PostgresState } from '../state/postgres.ts';
import type { StateBackend } from '../state/backend.ts';

export function datasetKeySubject(dataset: string): string {
  return `dataset:${dataset}`;
}

export type { Vault } from '../governance/vault.ts';
import type { Vault } from '../governance/vault.ts';

export class GovernanceRuntime {
  readonly #stateDir: string;
  readonly #demo: boolean;
  readonly #pg: Pick<PostgresState, 'pool' | 'schema'> | null;
  readonly #state: Pick<StateBackend, 'kind' | 'governance' | 'keys'> | null;
  #store: GovernanceStore | null = null;
  #vault: Promise<Vault> | null = null;

  /**
   * `postgres`: keep governance records, data keys and artefacts in this PostgreSQL state
   * (its pool is used, never ended here: close the state after the runtime).
   */
  /**
   * `state`: the node's StateBackend (src/state/backend.ts): its governance store and keys are
   * used, and closed by the state, not here. Takes precedence over `postgres`.
   */
  constructor(stateDir: string, options: { demo: boolean; postgres?: Pick<PostgresState, 'pool' | 'schema'> | null; state?: Pick<StateBackend, 'kind' | 'governance' | 'keys'> | null }) {
    this.#stateDir = stateDir;
    this.#demo = options.demo;
    this.#state = options.state ?? null;
    this.#pg = this.#state ? null : options.postgres ?? null;
  }

  /** 'sqlite' (files in the state directory) or 'postgres' (shared by every node on the database). */
  get backend(): 'sqlite' | 'postgres' {
    if (this.#state) return this.#state.kind === 'postgres' ? 'postgres' : 'sqlite';
    return this.#pg ? 'postgres' : 'sqlite';
  }

  /** The governance records (asynchronous methods), opened on first use. */
  get store(): GovernanceStore {
    if (this.#state) return this.#state.governance;
    this.#store ??= this.#pg ? openPgGovernance(this.#pg) : GovernanceStore.open(join(this.#stateDir, 'governance.sqlite'));
    return this.#store;
  }

  /** Keyring, data keys and artefacts; needs the key passphrase (the demo may use the published one). */
  vault(): Promise<Vault> {
    this.#vault ??= (async () => {
      const passphrase = resolvePassphrase(undefined, this.#demo);
      const keyring = await LocalKeyring.openOrCreate(join(this.#stateDir, 'keyring.json'), passphrase);
      if (this.#state) {
        const dataKeys = this.#state.keys.dataKeys(keyring);
        return { keyring, dataKeys, artefacts: this.#state.keys.artefacts(dataKeys) };
      }
      if (this.#pg) {
        const dataKeys = openPgDataKeys(this.#pg, keyring);
        return { keyring, dataKeys, artefacts: openPgArtefacts(this.#pg, dataKeys) };
      }
      const dataKeys = DataKeyStore.open(join(this.#stateDir, 'data-keys.sqlite'), keyring);
      const dir = join(this.#stateDir, 'artefacts');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const artefacts = ArtefactStore.open({ dir, keys: dataKeys });
      return { keyring, dataKeys, artefacts };
    })();
    this.#vault.catch(() => { this.#vault = null; });
    return this.#vault;
  }

  /**
   * The data key of an encrypted dataset (subject `dataset:<name>`, the newest live one).
   * A destroyed key means the dataset was crypto-shredded: say so, and what to do.
   */
  async datasetKey(dataset: string): Promise<Buffer> {
    const { dataKeys } = await this.vault();
    const live = await dataKeys.list({ kind: 'dataset', subject: datasetKeySubject(dataset) });
    const newest = live[live.length - 1];
    if (!newest) {
      const gone = (await dataKeys.listDestroyed({ kind: 'dataset' })).filter((r) => r.subject === datasetKeySubject(dataset)).pop();
      throw new Error(gone
        ? `its data key was destroyed at ${gone.destroyedAt} (${gone.reason}): the dataset is crypto-shredded; remove it from gatehouse.yaml`
        : this.backend === 'postgres'
          ? 'no data key for it in the shared PostgreSQL state: ingest it with gatehouse ingest against the same state'
          : `no data key for it in this state directory: ingest it with gatehouse ingest, on this node's state directory`);
    }
    return dataKeys.unwrap(newest.keyId);
  }

  async close(): Promise<void> {
    await this.#store?.close();
    this.#store = null;
    if (this.#vault) {
      const v = await this.#vault.catch(() => null);
      v?.artefacts.close();
      v?.dataKeys.close();
      v?.keyring.close();
      this.#vault = null;
    }
  }
}
