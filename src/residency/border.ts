/**
 * The border rule, checked on the data's node before anything it computed leaves for
 * another region: raw rows never leave their region (issue 20). A released result may
 * cross only if, for every dataset it read, the one path released it
 *   - under aggregation-only (groups of at least k privacy units, suppression), or
 *   - under differential privacy (noise and a charged budget), or
 *   - with every output column derived only from masked columns of that dataset.
 * What policy allowed decides *how* the result was shaped (Cedar sees the regions: see
 * policy-context.ts); this rule is the floor beneath any policy, so a permissive or
 * mistaken policy still cannot ship rows across a border. The refusal names the rule.
 */
import { GatehouseError } from '../errors.ts';
import type { DatasetDef } from '../model/types.ts';
import { bindQuery, lineageOf } from '../query/bind.ts';
import { parseSql } from '../query/parse.ts';

export interface Released {
  readonly datasets: readonly string[];
  readonly obligationsApplied: readonly string[];
}

/** Why the result may cross ("aggregation-only", "differential privacy", "masked columns"), or a refusal. */
export function crossingBasis(released: Released, sql: string, params: readonly (string | null)[] | undefined, catalog: ReadonlyMap<string, DatasetDef>, region: string, destination: string): string[] {
  const labels = released.obligationsApplied;
  const masked = new Set(labels.filter((l) => l.startsWith('mask:')).map((l) => l.slice(5, l.indexOf('='))));
  let outputSources: Set<string>[] | null = null;
  const outputs = (): Set<string>[] => {
    if (outputSources === null) {
      const bound = bindQuery(parseSql(sql, params), { dataset: (n) => catalog.get(n) });
      outputSources = bound.query.targets.map((t) => new Set(lineageOf(t.expr).sources));
    }
    return outputSources;
  };
  const basis: string[] = [];
  for (const ds of released.datasets) {
    if (labels.some((l) => l.startsWith(`differentialPrivacy:${ds}(`))) { basis.push(`${ds}: differential privacy`); continue; }
    const agg = labels.find((l) => l.startsWith(`aggregationOnly:${ds}(`));
    if (agg) { basis.push(`${ds}: aggregation-only ${agg.slice(agg.indexOf('('))}`); continue; }
    const outs = outputs();
    const onlyMasked = outs.length > 0 && outs.every((s) => s.size > 0 && [...s].every((c) => !c.startsWith(`${ds}.`) || masked.has(c))) && outs.some((s) => [...s].some((c) => c.startsWith(`${ds}.`)));
    if (onlyMasked) { basis.push(`${ds}: masked columns only`); continue; }
    throw new GatehouseError('RESIDENCY_RAW_ROWS', `rows of dataset "${ds}" may not leave ${region} for ${destination}: residency rule "raw rows never leave their region" lets only aggregates under aggregation-only, differential-privacy releases and masked columns cross`, {
      reasons: [`residency: raw rows of ${ds} never leave ${region}`],
      hint: 'aggregate (GROUP BY with count/sum) so that policy releases groups of at least k units, or ask the data owner for a policy that lets this result cross',
    });
  }
  return basis;
}
