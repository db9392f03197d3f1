/**
 * The erasure receipt (format gatehouse-erasure-receipt/v1): what the data subject, or a
 * regulator, keeps. It lists every place the subject was excluded from, and carries the
 * audit log's own receipt for the erasure's entry (RECEIPT_FORMAT: the entry, its RFC 6962
 * inclusion proof and the log's signed C2SP checkpoint), so it is signed by the log's key
 * and verifiable offline against any later checkpoint.
 *
 * The log never holds the subject's identifier: the entry names a salted commitment,
 * SHA-256(salt ‖ unit ‖ 0x00 ‖ value), and the receipt gives the salt to the subject. Whoever
 * knows the identifier can check that the entry is about it; nobody reading the log can.
 * The places are in the entry's reasons, so the checkpoint's signature covers them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { verifyReceipt } from '../../audit/verify.ts';
import type { NoteVerifier } from '../../audit/note.ts';

export const ERASURE_RECEIPT_FORMAT = 'gatehouse-erasure-receipt/v1';

export interface ErasurePlaces {
  /** Datasets whose governed queries exclude the subject from the next request on (every path). */
  readonly datasets: readonly string[];
  /** Saved results crypto-shredded because they were derived from those datasets at row level. */
  readonly shreddedResults: readonly string[];
  /** Saved differentially private releases kept: the subject's contribution is bounded by their guarantee. */
  readonly keptReleases: readonly string[];
  /** Saved results under a legal hold: not destroyed; listed so the subject knows where they are. */
  readonly heldResults: readonly string[];
  /** The destruction certificate of the shredded results, when there were any. */
  readonly certificate: string | null;
  /**
   * Ingested datasets (owned by Gatehouse) rewritten without the subject's rows and sealed
   * under a new data key, the old keys destroyed (erasures only; absent in older receipts).
   */
  readonly rekeyedDatasets?: readonly string[];
}

export interface ErasureReceipt {
  readonly format: typeof ERASURE_RECEIPT_FORMAT;
  readonly erasureId: string;
  readonly kind: 'erasure' | 'opt-out';
  readonly unit: string;
  readonly purposes: readonly string[];
  readonly recordedAt: string;
  readonly commitment: string;
  /** Base64; with the subject's identifier it opens the commitment. */
  readonly salt: string;
  readonly places: ErasurePlaces;
  readonly auditId: string;
  /** The audit log's receipt of the entry, when the node's log serves receipts. */
  readonly log: unknown;
}

export function newSalt(): string {
  return randomBytes(16).toString('base64');
}

export function commitment(salt: string, unit: string, value: string): string {
  return `sha256:${createHash('sha256').update(Buffer.from(salt, 'base64')).update(unit).update('\u0000').update(value).digest('hex')}`;
}

/** The reasons of the erasure's audit entry: every place, and the commitment (never the value). */
export function erasureReasons(r: { erasureId: string; kind: string; unit: string; purposes: readonly string[]; commitment: string; places: ErasurePlaces }): string[] {
  const p = r.places;
  return [
    `${r.kind} ${r.erasureId} of one ${r.unit} subject (commitment ${r.commitment})${r.kind === 'opt-out' ? ` for purposes ${r.purposes.join(', ')}` : ''}, effective from the next request`,
    `excluded from every governed query on: ${p.datasets.join(', ')}`,
    `saved results shredded: ${p.shreddedResults.length ? p.shreddedResults.join(', ') : 'none'}${p.certificate ? ` (certificate ${p.certificate})` : ''}`,
    `differentially private releases kept: ${p.keptReleases.length ? p.keptReleases.join(', ') : 'none'}`,
    `saved results under legal hold, not destroyed: ${p.heldResults.length ? p.heldResults.join(', ') : 'none'}`,
    ...(p.rekeyedDatasets === undefined ? [] : [`ingested datasets rewritten without the subject's rows and re-keyed, old data keys destroyed: ${p.rekeyedDatasets.length ? p.rekeyedDatasets.join(', ') : 'none'}`]),
  ];
}

/**
 * Verifies a receipt for the subject with identifier `value`: the log receipt verifies
 * against the log's keys, its entry is this erasure's, it names the commitment that the
 * salt and the value open, and it lists exactly the places the receipt claims.
 */
export function verifyErasureReceipt(receipt: ErasureReceipt, value: string, verifiers: readonly NoteVerifier[]): { index: number; checkpointSize: number } {
  if (receipt.format !== ERASURE_RECEIPT_FORMAT) throw new Error(`not a ${ERASURE_RECEIPT_FORMAT} receipt`);
  if (commitment(receipt.salt, receipt.unit, value) !== receipt.commitment) throw new Error('the receipt is not about this subject (the commitment does not open)');
  const { index, checkpoint, leaf } = verifyReceipt(receipt.log, verifiers);
  if (String(index) !== receipt.auditId) throw new Error('the log receipt is for another entry');
  const e = leaf.entry;
  if (e.action !== 'erasure.record' || e.decision !== 'allow') throw new Error('the log entry is not a recorded erasure');
  const expected = erasureReasons(receipt);
  if (expected.some((line) => !e.reasons.includes(line))) throw new Error('the log entry does not list the places this receipt claims');
  return { index, checkpointSize: checkpoint.size };
}
