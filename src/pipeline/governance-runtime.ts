/**
 * What contractor governance needs at run time, opened lazily on first use from the state
 * directory: the governance records (src/governance/store.ts), the keyring and data keys
 * (src/keys/), and the encrypted artefact store for saved results and exports.
 *
 *   <state>/governance.sqlite     agreements, grants, vendors, acknowledgements, retention, findings…
 *   <state>/keyring.json          passphrase-protected key-encryption keys (GATEHOUSE_KEY_PASSPHRASE)
 *   <state>/data-keys.sqlite      per-artefact / per-dataset data keys, wrapped by the keyring
 *   <state>/artefacts/            saved results and exports, each under its own data key
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolvePassphrase } from '../audit/keys.ts';
import { GovernanceStore } from '../governance/store.ts';
import { ArtefactStore } from '../keys/artefacts.ts';
import { DataKeyStore } from '../keys/data-keys.ts';
import { LocalKeyring } from '../keys/keyring.ts';

export function datasetKeySubject(dataset: string): string {
  return `dataset:${dataset}`;
}

export interface Vault {
  readonly keyring: LocalKeyring;
  readonly dataKeys: DataKeyStore;
  readonly artefacts: ArtefactStore;
}

export class GovernanceRuntime {
  readonly #stateDir: string;
  readonly #demo: boolean;
  #store: GovernanceStore | null = null;
  #vault: Promise<Vault> | null = null;

  constructor(stateDir: string, options: { demo: boolean }) {
    this.#stateDir = stateDir;
    this.#demo = options.demo;
  }

  /** The governance records; synchronous (node:sqlite), opened on first use. */
  get store(): GovernanceStore {
    this.#store ??= GovernanceStore.open(join(this.#stateDir, 'governance.sqlite'));
    return this.#store;
  }

  /** Keyring, data keys and artefacts; needs the key passphrase (the demo may use the published one). */
  vault(): Promise<Vault> {
    this.#vault ??= (async () => {
      const passphrase = resolvePassphrase(undefined, this.#demo);
      const keyring = await LocalKeyring.openOrCreate(join(this.#stateDir, 'keyring.json'), passphrase);
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
    const live = dataKeys.list({ kind: 'dataset', subject: datasetKeySubject(dataset) });
    const newest = live[live.length - 1];
    if (!newest) {
      const gone = dataKeys.listDestroyed({ kind: 'dataset' }).filter((r) => r.subject === datasetKeySubject(dataset)).pop();
      throw new Error(gone
        ? `its data key was destroyed at ${gone.destroyedAt} (${gone.reason}): the dataset is crypto-shredded; remove it from gatehouse.yaml`
        : `no data key for it in this state directory: ingest it with gatehouse ingest, on this node's state directory`);
    }
    return dataKeys.unwrap(newest.keyId);
  }

  async close(): Promise<void> {
    this.#store?.close();
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
