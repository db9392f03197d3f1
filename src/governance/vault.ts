/**
 * The node's key material for governance: its keyring, the data keys of encrypted datasets and
 * the sealed artefacts. The kernel opens it (src/kernel/governance-runtime.ts); governance
 * operations receive it.
 */
import type { ArtefactStore } from '../keys/artefacts.ts';
import type { DataKeyStore } from '../keys/data-keys.ts';
import type { LocalKeyring } from '../keys/keyring.ts';

export interface Vault {
  readonly keyring: LocalKeyring;
  readonly dataKeys: DataKeyStore;
  readonly artefacts: ArtefactStore;
}
