/**
 * Placing a derivative in a partner's workspace (issue 23): a job output, a clean-room
 * result or a model, sealed under its own data key and labelled so that segmentation
 * (`org`), lineage (`datasets`) and expiry (`agreement`) all follow from the labels.
 *
 * It is one function so every way in places items the same way. Every caller reaches it
 * through `depositDerivative` (derivative.ts, which adds the inherited lineage): the
 * `workspace.deposit` and `workspace.release-model` governance ops, the airlock's release of a
 * job's outputs and a clean room's delivery of a result to a receiver, each inside its own
 * audited envelope (it returns the event for that entry's reasons).
 *
 * Nothing goes to a partner without an agreement in force that covers every dataset the item
 * was derived from (fail closed); the item inherits that agreement's result-retention clause,
 * or an earlier limit its caller passes (a source's retention rule).
 */
import type { ArtefactStore } from '../../keys/artefacts.ts';
import type { Agreements } from '../agreements.ts';
import { event, GovernanceError, type GovernanceEvent } from '../types.ts';
import type { WorkspaceItemKind } from './partner-workspace.ts';

export interface DepositInput {
  readonly org: string;
  readonly item: Exclude<WorkspaceItemKind, 'result'>;
  readonly name: string;
  readonly datasets: readonly string[];
  /** Choose among the agreements in force that cover the datasets; default: the first. */
  readonly agreementId?: string;
  readonly content: Buffer;
  readonly mediaType: 'application/json' | 'application/octet-stream' | 'text/csv';
  /** Who places it (audited). */
  readonly by: string;
  /** More labels (lineage: classification, where it came from); they cannot replace the ones set here. */
  readonly labels?: Readonly<Record<string, string>>;
  /** An earlier limit than the agreement's retention clause (a source's retention rule). */
  readonly retainUntil?: string | null;
}

export interface Deposited {
  readonly id: string;
  readonly agreementId: string;
  readonly retainUntil: string | null;
  readonly bytes: number;
  readonly event: GovernanceEvent;
}

export async function depositItem(deps: { artefacts: ArtefactStore; agreements: Agreements; knownDatasets: ReadonlySet<string>; now: Date }, input: DepositInput): Promise<Deposited> {
  for (const d of input.datasets) if (!deps.knownDatasets.has(d)) throw new GovernanceError('GOV_UNKNOWN_DATASET', `no dataset "${d.slice(0, 64)}" in the workspace`, 'list datasets with: gatehouse datasets');
  const datasets = [...new Set(input.datasets)].sort();
  if (datasets.length === 0) throw new GovernanceError('GOV_INVALID', 'name the datasets the item was derived from', 'e.g. --dataset encounters');
  const t = deps.now.toISOString();
  const agreement = (await deps.agreements.list({ partner: input.org }, deps.now))
    .find((g) => g.status === 'active' && datasets.every((d) => g.datasets.includes(d)) && (input.agreementId === undefined || g.id === input.agreementId));
  if (!agreement) {
    throw new GovernanceError('GOV_AGREEMENT_NOT_COVERING', `${input.org.slice(0, 64)} has no agreement in force${input.agreementId ? ` with id ${input.agreementId.slice(0, 64)}` : ''} covering ${datasets.join(', ')} at ${t}`, 'record one with: gatehouse agreement create');
  }
  if (input.mediaType === 'application/json') {
    try { JSON.parse(input.content.toString('utf8')); } catch { throw new GovernanceError('GOV_INVALID', 'the content is not JSON', 'pass --media-type application/octet-stream for other content'); }
  }
  const days = agreement.clauses.resultRetentionDays;
  const limits = [days === null ? null : new Date(deps.now.getTime() + days * 86_400_000).toISOString(), input.retainUntil ?? null].filter((x): x is string => x !== null).sort();
  const retainUntil = limits[0] ?? null;
  const put = await deps.artefacts.put({
    kind: 'result', owner: `org:${input.org}`, mediaType: input.mediaType, content: input.content,
    labels: { ...input.labels, org: input.org, item: input.item, name: input.name, datasets: datasets.join(','), ...(datasets.length === 1 ? { dataset: datasets[0]! } : {}), agreement: agreement.id },
    retainUntil,
  });
  return {
    id: put.id, agreementId: agreement.id, retainUntil, bytes: put.bytes,
    event: event({
      action: 'workspace.deposit', actor: input.by, time: t, subject: `org:${input.org}`, outcome: 'placed', refs: { artefactId: put.id, agreementId: agreement.id },
      detail: `${input.item} ${input.name} (${put.bytes} bytes) placed in ${input.org}'s workspace as ${put.id} under ${agreement.id}`,
    }),
  };
}
