/**
 * Columns sent to the designated compute node (as the CSV the compute node loads,
 * compute.ts toCsvTable), encrypted to its X25519 sealing key with JWE
 * (RFC 7516, compact form, via jose): ECDH-ES key agreement (RFC 7518 §4.6, X25519 per RFC
 * 8037) and A256GCM. The protected header names the collaboration, the query and the table,
 * so a sealed payload opened under any other query id is refused (the header is bound to the
 * ciphertext as additional authenticated data).
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

export async function sealColumns(data: CsvTable, to: JWK, ctx: SealContext): Promise<string> {
  const key = await importJWK(to, 'ECDH-ES');
  return new CompactEncrypt(Buffer.from(data.csv, 'utf8'))
    .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM', cty: 'text/csv', 'gh-collab': ctx.collaborationId, 'gh-query': ctx.queryId, 'gh-table': ctx.table, 'gh-rows': data.rowCount })
    .encrypt(key);
}

export async function openColumns(jwe: string, keys: SealingKeys, ctx: SealContext): Promise<CsvTable> {
  let plaintext: Uint8Array;
  let header: Record<string, unknown>;
  try {
    ({ plaintext, protectedHeader: header } = await compactDecrypt(jwe, keys.privateKey, { keyManagementAlgorithms: ['ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] }));
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
