/**
 * Columns sent to the designated compute node (as the CSV the compute node loads,
 * compute.ts toCsvTable), encrypted to its X25519 sealing key with JWE
 * (RFC 7516, compact form, via jose): ECDH-ES key agreement (RFC 7518 §4.6, X25519 per RFC
 * 8037) and A256GCM. The protected header names the collaboration, the query and the table,
 * so a sealed payload opened under any other query id is refused (the header is bound to the
 * ciphertext as additional authenticated data).
 *
 * Under compute.requireAttestation the member seals instead under a column key its key broker
 * released to the attested sealing key (attested-release.ts): JWE `dir` with A256GCM and the
 * same header, and the column key travels beside it as the broker's JWE (ECDH-ES, A256GCM,
 * `kid` = the query's job id), which only the sealing key's holder opens (`openReleasedKey`).
 */
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { CryptoKey } from 'jose';
import { CleanroomError } from './errors.ts';
import type { CsvTable } from './compute.ts';

export interface SealingKeys {
  readonly publicJwk: JWK;
  readonly privateKey: CryptoKey;
}

export async function generateSealingKeys(): Promise<SealingKeys & { readonly privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES', { crv: 'X25519', extractable: true });
  return { publicJwk: await exportJWK(publicKey), privateKey, privateJwk: await exportJWK(privateKey) };
}

export async function importSealingKeys(privateJwk: JWK): Promise<SealingKeys> {
  const { d: _d, ...pub } = privateJwk;
  return { publicJwk: pub, privateKey: (await importJWK(privateJwk, 'ECDH-ES')) as CryptoKey };
}

export interface SealContext {
  readonly collaborationId: string;
  readonly queryId: string;
  readonly table: string;
}

/** Seals to the compute node's public sealing key (a JWK), or under a released column key (32 bytes). */
export async function sealColumns(data: CsvTable, to: JWK | Uint8Array, ctx: SealContext): Promise<string> {
  const direct = to instanceof Uint8Array;
  const key = direct ? to : await importJWK(to, 'ECDH-ES');
  return new CompactEncrypt(Buffer.from(data.csv, 'utf8'))
    .setProtectedHeader({ alg: direct ? 'dir' : 'ECDH-ES', enc: 'A256GCM', cty: 'text/csv', 'gh-collab': ctx.collaborationId, 'gh-query': ctx.queryId, 'gh-table': ctx.table, 'gh-rows': data.rowCount })
    .encrypt(key);
}

export async function openColumns(jwe: string, keys: SealingKeys | Uint8Array, ctx: SealContext): Promise<CsvTable> {
  let plaintext: Uint8Array;
  let header: Record<string, unknown>;
  const direct = keys instanceof Uint8Array;
  try {
    ({ plaintext, protectedHeader: header } = await compactDecrypt(jwe, direct ? keys : keys.privateKey, { keyManagementAlgorithms: [direct ? 'dir' : 'ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] }));
  } catch {
    throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', `the columns of table "${ctx.table}" could not be opened with this node's sealing key`, 'the member must seal to the compute node\'s current key');
  }
  if (header['gh-collab'] !== ctx.collaborationId || header['gh-query'] !== ctx.queryId || header['gh-table'] !== ctx.table) {
    throw new CleanroomError('CLEANROOM_CONFLICT', `sealed columns for table "${ctx.table}" belong to another query`, 'run the query again');
  }
  const rowCount = header['gh-rows'];
  if (header.cty !== 'text/csv' || typeof rowCount !== 'number' || !Number.isSafeInteger(rowCount) || rowCount < 0) throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'sealed columns are malformed');
  const csv = Buffer.from(plaintext).toString('utf8');
  plaintext.fill(0);
  return { csv, rowCount };
}

/** Opens a column key a member's key broker released to this node's sealing key for one query. */
export async function openReleasedKey(jwe: string, keys: SealingKeys, jobId: string): Promise<Uint8Array> {
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, keys.privateKey, { keyManagementAlgorithms: ['ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] });
    if (protectedHeader.kid !== jobId || plaintext.length !== 32) throw new Error('another query');
    return plaintext;
  } catch {
    throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', 'a member released a column key this node cannot open for this query', 'the member must release the key to this node\'s attested sealing key');
  }
}
