/**
 * Releasing a trained federated model to a partner (issue 23): the model the coordinator
 * stored (`fl.model`, src/operations/fl/round.ts: an artefact labelled with the job's agreement
 * and purpose `model-training`) is placed in the partner's workspace as a `model` item.
 *
 * A model goes only to the partner of the agreement it was trained under, and only while that
 * agreement is in force: training under one partner's agreement and handing the weights to
 * another is refused, and so is a model whose agreement ended. Its lineage is the agreement's
 * datasets (what the participants were allowed to train on), so it inherits their strictest
 * classification and retention (derivative.ts), and it expires with that agreement.
 *
 * The coordinator keeps its own copy: it is the owner's record of what was trained, owned by
 * the operator who ran the job and labelled with the same agreement, so terminating the
 * agreement shreds both.
 */
import type { ArtefactStore } from '../../keys/artefacts.ts';
import { GovernanceError } from '../types.ts';
import { depositDerivative, type DerivativeDeps, type DepositedDerivative } from './derivative.ts';

/** How the coordinator labels a stored model (src/operations/fl/round.ts `flStoreModel`). */
export const FL_MODEL_MEDIA_TYPE = 'application/vnd.gatehouse.fl-model+json';
const FL_PURPOSE = 'model-training';

export async function releaseModel(deps: DerivativeDeps & { artefacts: ArtefactStore }, input: { model: string; org: string; by: string }): Promise<DepositedDerivative & { job: string }> {
  const notFound = new GovernanceError('GOV_NOT_FOUND', `no trained model "${input.model.slice(0, 64)}" on this node`, 'the coordinator names it when the job ends: gatehouse fl status JOB');
  let meta;
  try { meta = await deps.artefacts.meta(input.model); } catch { throw notFound; }
  if (meta.destroyedAt !== null || meta.mediaType !== FL_MODEL_MEDIA_TYPE || meta.labels.purpose !== FL_PURPOSE) throw notFound;
  const agreementId = meta.labels.agreement ?? '';
  const agreement = await deps.agreements.get(agreementId, deps.now);
  if (!agreement || agreement.parties.partner !== input.org) {
    throw new GovernanceError('GOV_AGREEMENT_NOT_COVERING', `the model was trained under agreement ${agreementId.slice(0, 64)}, which is not an agreement with ${input.org.slice(0, 64)}`, 'a model goes only to the partner of the agreement it was trained under');
  }
  const { content } = await deps.artefacts.get(input.model);
  const job = meta.labels.job ?? 'unknown';
  const d = await depositDerivative(deps, {
    org: input.org, item: 'model', name: `fl-${job}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 100), datasets: agreement.datasets, agreementId,
    content, mediaType: 'application/json', by: input.by, source: `fl:${job}/${input.model}`,
  });
  return { ...d, job };
}
