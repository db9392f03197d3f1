/**
 * Keeps a released result as an encrypted artefact under its own data key, labelled with
 * the agreement that allowed it, so ending that agreement crypto-shreds it. Results kept
 * under an agreement with a result-retention clause expire after that many days.
 */
import { GatehouseError } from '../../errors.ts';
import type { GateResult } from '../../governance/gate.ts';
import type { PrincipalDef } from '../../model/types.ts';
import type { Runtime } from '../../kernel/runtime.ts';
import type { QueryResponse } from '../../kernel/types.ts';

export async function saveResult(rt: Runtime, principal: PrincipalDef, purpose: string, gates: readonly GateResult[], datasets: readonly string[], response: QueryResponse): Promise<string> {
  const agreements = [...new Set(gates.map((g) => String(g.context.agreementId ?? '')).filter((a) => a !== ''))];
  if (agreements.length > 1) throw new GatehouseError('REQUEST_INVALID', 'this result draws on datasets shared under different agreements, so it cannot be kept as one artefact', { hint: 'run it without saving, or save one query per agreement' });
  const agreement = agreements[0] ?? null;
  const days = agreement ? (await rt.governance.store.agreements.get(agreement))?.clauses.resultRetentionDays ?? null : null;
  const org = typeof principal.attributes.org === 'string' ? principal.attributes.org : '';
  const { artefacts } = await rt.governance.vault();
  const content = Buffer.from(JSON.stringify({ columns: response.columns, rows: response.rows, ...(response.intervals ? { intervals: response.intervals } : {}), governance: { ...response.governance, auditId: undefined } }));
  const put = await artefacts.put({
    kind: 'result', owner: principal.id, mediaType: 'application/json', content,
    labels: { purpose, datasets: datasets.join(','), ...(datasets.length === 1 ? { dataset: datasets[0]! } : {}), ...(agreement ? { agreement } : {}), ...(org ? { org } : {}) },
    retainUntil: days !== null && days !== undefined ? new Date(rt.now().getTime() + days * 86_400_000).toISOString() : null,
  });
  return put.id;
}
