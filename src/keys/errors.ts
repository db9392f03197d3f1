/**
 * Typed errors of the key hierarchy (keyring, data keys, encrypted blobs, artefacts,
 * encrypted datasets): GatehouseErrors whose `detail` is the stable key code callers match
 * on, whose `code` KEY_CODES gives (so the HTTP status comes from the one table), with a
 * `hint` telling the operator what to do next.
 *
 * Messages and hints never contain passphrases, key material, plaintext or ciphertext:
 * only identifiers (key ids, KEK versions, artefact ids, file names, chunk indices).
 */
import { codeFor, GatehouseError, type ErrorCode } from '../errors.ts';

/**
 * Key code → union code. A damaged or wrong keyring, key store or ciphertext is the
 * operator's to fix, so the caller sees INTERNAL (500, nothing decrypted); crypto-shredded
 * keys and artefacts are GONE (410); a legal hold or an existing keyring is a CONFLICT (409).
 */
export const KEY_CODES: Readonly<Record<string, ErrorCode>> = {
  KEYRING_PASSPHRASE_MISSING: 'INTERNAL',
  KEYRING_PASSPHRASE_WRONG: 'INTERNAL',
  KEYRING_CORRUPT: 'INTERNAL',
  KEYRING_NOT_FOUND: 'INTERNAL',
  KEYRING_EXISTS: 'CONFLICT',
  KEK_VERSION_UNKNOWN: 'INTERNAL',
  KEK_VERSION_RETIRED: 'GONE',
  KEYRING_MISMATCH: 'INTERNAL',
  WRAPPED_KEY_INVALID: 'INTERNAL',
  DATA_KEY_NOT_FOUND: 'NOT_FOUND',
  DATA_KEY_DESTROYED: 'GONE',
  KEY_STORE_UNAVAILABLE: 'UNAVAILABLE',
  CIPHERTEXT_TAMPERED: 'INTERNAL',
  CIPHERTEXT_MALFORMED: 'INTERNAL',
  CIPHERTEXT_KEY_MISMATCH: 'INTERNAL',
  ARTEFACT_NOT_FOUND: 'NOT_FOUND',
  ARTEFACT_DESTROYED: 'GONE',
  LEGAL_HOLD_ACTIVE: 'CONFLICT',
  DATASET_ENCRYPTION_UNAVAILABLE: 'INTERNAL',
  DATASET_KEY_WRONG: 'INTERNAL',
  KEY_INPUT_INVALID: 'REQUEST_INVALID',
};

export class KeyError extends GatehouseError {
  declare readonly detail: string;
  /** `status` chooses the union code only for a code KEY_CODES does not list. */
  constructor(code: string, message: string, status: number, hint: string | null = null, options?: { cause?: unknown }) {
    super(codeFor(code, KEY_CODES, status), message, { detail: code, hint, reasons: [code], cause: options?.cause });
  }
}

/** No passphrase was given and none is in the environment. */
export class KeyringPassphraseMissing extends KeyError {
  constructor(envName: string) {
    super('KEYRING_PASSPHRASE_MISSING', 'no keyring passphrase was given', 500, `set ${envName} (or pass the passphrase option) and start again`);
  }
}

/** The passphrase does not open this keyring (the key check value does not match). */
export class KeyringPassphraseWrong extends KeyError {
  constructor(path: string) {
    super('KEYRING_PASSPHRASE_WRONG', `the passphrase does not open the keyring ${path}`, 500,
      'use the passphrase the keyring was created with (GATEHOUSE_KEY_PASSPHRASE); the file itself is intact');
  }
}

/** The keyring file is truncated, not JSON, has an unexpected shape, or fails its integrity check. */
export class KeyringCorrupt extends KeyError {
  constructor(path: string, detail: string) {
    super('KEYRING_CORRUPT', `the keyring ${path} is damaged: ${detail}`, 500,
      'restore the keyring file from a backup; do not create a new one in its place (data wrapped by the old keys would be lost)');
  }
}

/** open() on a path with no keyring. */
export class KeyringNotFound extends KeyError {
  constructor(path: string) {
    super('KEYRING_NOT_FOUND', `no keyring at ${path}`, 500, 'create one with LocalKeyring.create (or `gatehouse keys init`), or point to the existing file');
  }
}

/** create() on a path that already holds a file. */
export class KeyringExists extends KeyError {
  constructor(path: string) {
    super('KEYRING_EXISTS', `a keyring already exists at ${path}`, 409, 'open it instead; creating a new keyring over it would make everything it wraps unreadable');
  }
}

/** A wrapped key names a KEK version this keyring never had. */
export class KekVersionUnknown extends KeyError {
  constructor(keyringId: string, version: string) {
    super('KEK_VERSION_UNKNOWN', `keyring ${keyringId} has no key-encryption key version ${version}`, 500,
      'the data key was wrapped by another keyring or a newer keyring file: open the keyring file the data keys belong to');
  }
}

/** A wrapped key names a KEK version that was retired (its material erased). */
export class KekVersionRetired extends KeyError {
  constructor(version: string) {
    super('KEK_VERSION_RETIRED', `key-encryption key ${version} was retired and erased`, 410,
      'data keys still wrapped by it cannot be recovered; rewrap data keys (rewrapAll) before retiring a KEK version');
  }
}

/** A wrapped key does not belong to this keyring. */
export class KeyringMismatch extends KeyError {
  constructor(expected: string, got: string) {
    super('KEYRING_MISMATCH', `the wrapped key belongs to keyring ${got}, not ${expected}`, 500, 'open the keyring the data keys were wrapped with');
  }
}

/** Unwrapping failed authentication: the wrapped key was altered or moved to another subject. */
export class WrappedKeyInvalid extends KeyError {
  constructor(detail: string) {
    super('WRAPPED_KEY_INVALID', `a wrapped data key failed authentication (${detail})`, 500,
      'the key store was tampered with or a wrapped key was copied to another subject; restore the key store from a backup and investigate');
  }
}

export class DataKeyNotFound extends KeyError {
  constructor(keyId: string) {
    super('DATA_KEY_NOT_FOUND', `no data key ${keyId}`, 404, 'check the key id; list keys with DataKeyStore.list()');
  }
}

/** The data key was crypto-shredded: whatever it encrypted is gone for good. */
export class DataKeyDestroyed extends KeyError {
  readonly destroyedAt: string;
  constructor(keyId: string, destroyedAt: string) {
    super('DATA_KEY_DESTROYED', `data key ${keyId} was destroyed at ${destroyedAt}`, 410,
      'what it encrypted was destroyed by crypto-shredding and cannot be recovered; see the destruction certificate in the audit log');
    this.destroyedAt = destroyedAt;
  }
}

/** The key store cannot be used (closed, I/O failure). */
export class KeyStoreUnavailable extends KeyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KEY_STORE_UNAVAILABLE', message, 503, 'check the state directory (permissions, disk space) and retry', options);
  }
}

/** A ciphertext chunk failed GCM authentication: the data was altered, truncated, reordered or spliced. */
export class CiphertextTampered extends KeyError {
  readonly file: string;
  readonly chunk: number | null;
  constructor(file: string, chunk: number | null, detail: string) {
    super('CIPHERTEXT_TAMPERED', `${file}: ${chunk === null ? '' : `chunk ${chunk}: `}${detail}`, 422,
      'the encrypted file was altered or damaged on disk; nothing was decrypted. Restore it from a backup');
    this.file = file;
    this.chunk = chunk;
  }
}

/** Not a Gatehouse encrypted blob, or an unsupported format version. */
export class CiphertextMalformed extends KeyError {
  constructor(file: string, detail: string) {
    super('CIPHERTEXT_MALFORMED', `${file}: ${detail}`, 422, 'the file is not a Gatehouse encrypted blob (or is damaged at its start)');
  }
}

/** The key given does not match the key id in the blob header. */
export class CiphertextKeyMismatch extends KeyError {
  constructor(file: string, expected: string, got: string) {
    super('CIPHERTEXT_KEY_MISMATCH', `${file} is encrypted under data key ${expected}, not ${got}`, 422, 'decrypt it with the data key its header names');
  }
}

export class ArtefactNotFound extends KeyError {
  constructor(id: string) {
    super('ARTEFACT_NOT_FOUND', `no artefact ${id}`, 404, 'check the id; list artefacts to see what is stored');
  }
}

export class ArtefactDestroyed extends KeyError {
  readonly destroyedAt: string;
  constructor(id: string, destroyedAt: string, reason: string | null) {
    super('ARTEFACT_DESTROYED', `artefact ${id} was destroyed at ${destroyedAt}${reason ? ` (${reason})` : ''}`, 410,
      'it was crypto-shredded and cannot be recovered; the destruction certificate is in the audit log. Run the query again if you are still entitled to it');
    this.destroyedAt = destroyedAt;
  }
}

/** Destruction was asked for artefacts under legal hold: nothing was destroyed. */
export class LegalHoldActive extends KeyError {
  readonly held: readonly string[];
  constructor(held: readonly string[]) {
    super('LEGAL_HOLD_ACTIVE', `${held.length} artefact(s) are under legal hold: ${held.slice(0, 10).join(', ')}${held.length > 10 ? ', …' : ''}; nothing was destroyed`, 409,
      'release the legal hold first (an owner with the legal role), or leave these artefacts out of the destruction');
    this.held = held;
  }
}

/** DuckDB cannot do what was asked with its database encryption on this installation. */
export class DatasetEncryptionUnavailable extends KeyError {
  constructor(message: string, hint: string, options?: { cause?: unknown }) {
    super('DATASET_ENCRYPTION_UNAVAILABLE', message, 500, hint, options);
  }
}

/** An encrypted dataset file cannot be opened with the key given (wrong key or damaged file). */
export class DatasetKeyWrong extends KeyError {
  constructor(file: string) {
    super('DATASET_KEY_WRONG', `the encrypted dataset ${file} does not open with this data key`, 422,
      'use the data key the dataset was ingested with; if that key was destroyed the dataset is gone (crypto-shredded)');
  }
}

/** Bad arguments: a precise message, nothing changed. */
export class KeyInputInvalid extends KeyError {
  constructor(message: string) {
    super('KEY_INPUT_INVALID', message, 400, null);
  }
}
