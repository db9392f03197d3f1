/**
 * `gatehouse ingest`: stores a CSV or Parquet file encrypted under a new data key of the
 * node's state, so the dataset can point at it (`source: { encrypted: PATH }`) and be
 * crypto-shredded later. An operator's local act, audited like every other request.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ENCRYPTED_DATASET_TABLE } from '../../engine/duckdb.ts';
import { GatehouseError } from '../../errors.ts';
import { ingestEncrypted } from '../../engine/dataset-writer.ts';
import { auditedOpen } from '../../kernel/audited.ts';
import { datasetKeySubject } from '../../kernel/governance-runtime.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';

export interface IngestRequest {
  readonly dataset: string;
  /** The CSV or Parquet file to read. */
  readonly source: string;
  /** Where the encrypted file is written. */
  readonly target: string;
}

export interface Ingested {
  readonly rows: number;
  readonly bytes: number;
  readonly format: string;
  readonly keyId: string;
  readonly auditId: string;
}

export async function ingestDataset(rt: Runtime, meta: RequestMeta, req: IngestRequest): Promise<Ingested> {
  const { value, auditId } = await auditedOpen(rt, meta, 'dataset.ingest', {}, async ({ entry }) => {
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(req.dataset)) throw new GatehouseError('REQUEST_INVALID', 'the dataset name must be lower-case letters, digits and _');
    entry.datasets = [req.dataset];
    const { dataKeys } = await rt.governance.vault();
    const { keyId } = await dataKeys.create({ subject: datasetKeySubject(req.dataset), kind: 'dataset', labels: { dataset: req.dataset } });
    mkdirSync(dirname(req.target), { recursive: true, mode: 0o700 });
    const r = await ingestEncrypted({ source: req.source, table: ENCRYPTED_DATASET_TABLE, target: req.target, dataKey: await dataKeys.unwrap(keyId), keyId });
    entry.reasons = [`dataset "${req.dataset}" ingested encrypted (${r.format}) under data key ${keyId}: ${r.rows} rows, ${r.bytes} bytes`];
    return { rows: r.rows, bytes: r.bytes, format: r.format, keyId };
  });
  return { ...value, auditId };
}
