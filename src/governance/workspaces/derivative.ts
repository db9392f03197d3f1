/**
 * The automatic deposit of a derivative into its partner's workspace (issue 23): what the
 * airlock does when it releases a job's outputs, what a clean room's compute node does when it
 * delivers a result to a receiving member, and what an administrator's release of a trained
 * model does. One function, so every source places its items the same way.
 *
 * The item inherits its lineage, as the seed's clauses on derivative works ask
 * (src/governance/lineage.ts computes the same from the labels afterwards):
 *
 *   classification  the most restrictive of its sources' datasets and columns (`strictest`),
 *                   kept as a label so the partner sees how the item must be handled;
 *   retention       the earliest of the agreement's result-retention clause and every source's
 *                   retention rule for results (scope = the dataset or "*");
 *   agreement       the one in force with the partner that covers every source (depositItem:
 *                   none, nothing is stored and the caller's request fails);
 *   expiry          derived at every read from that agreement and the workspace's own expiry
 *                   (partner-workspace.ts), so it is never stored and cannot go stale.
 *
 * `source` names where the item came from (an airlock request, a collaboration's query, a
 * federated job), so a partner can tell its items apart and an auditor can follow one back.
 */
import type { ArtefactStore } from '../../keys/artefacts.ts';
import type { Workspace } from '../../model/types.ts';
import type { Agreements } from '../agreements.ts';
import { strictest } from '../lineage.ts';
import type { RetentionRule } from '../retention.ts';
import { depositItem, type Deposited, type DepositInput } from './deposit.ts';

export interface DerivativeDeps {
  readonly artefacts: ArtefactStore;
  readonly agreements: Agreements;
  readonly catalog: Workspace;
  readonly retentionRules: readonly RetentionRule[];
  readonly now: Date;
}

export interface DerivativeInput extends Omit<DepositInput, 'labels' | 'retainUntil'> {
  /** Where it came from: `airlock:<request>`, `cleanroom:<collaboration>/<query>`, `fl:<job>`. */
  readonly source: string;
}

export interface DepositedDerivative extends Deposited {
  readonly classification: string;
}

/** The earliest instant a source's retention rule for results allows, or null. */
export function inheritedRetention(rules: readonly RetentionRule[], datasets: readonly string[], now: Date): string | null {
  const days = rules.filter((r) => r.kind === 'result' && (r.scope === '*' || datasets.includes(r.scope))).map((r) => r.days);
  return days.length === 0 ? null : new Date(now.getTime() + Math.min(...days) * 86_400_000).toISOString();
}

export async function depositDerivative(deps: DerivativeDeps, input: DerivativeInput): Promise<DepositedDerivative> {
  const classification = strictest(deps.catalog, input.datasets);
  const { source, ...rest } = input;
  const d = await depositItem(
    { artefacts: deps.artefacts, agreements: deps.agreements, knownDatasets: new Set(deps.catalog.datasets.keys()), now: deps.now },
    { ...rest, labels: { classification, source: source.slice(0, 200) }, retainUntil: inheritedRetention(deps.retentionRules, input.datasets, deps.now) },
  );
  return { ...d, classification };
}

/**
 * Crypto-shreds deposits that must not stand (the release they belonged to failed after they
 * were placed), so a failed release leaves no copy behind. Returns the certificate's id.
 */
export async function withdrawDeposits(artefacts: ArtefactStore, ids: readonly string[], reason: string): Promise<string | null> {
  if (ids.length === 0) return null;
  return (await artefacts.destroy(ids, reason)).certificateId;
}
