/**
 * Where a query runs: planned by the node that receives it, from the datasets it reads and
 * the regions that hold them (config.ts). Queries travel to the data, never the reverse:
 *
 *   local   every dataset is held here and nowhere else          → the one path, here
 *   remote  every dataset is held in one other region            → forwarded to a node there
 *   split   one dataset partitioned across regions (or held in    → each region computes its
 *           several)                                                governed partial aggregate
 *
 * Anything else would bring rows of different regions together (a join or set operation
 * across regions) and is refused, naming the datasets and their regions.
 */
import { GatehouseError } from '../errors.ts';
import type { DatasetDef } from '../model/types.ts';
import { referencedDatasets } from '../query/bind.ts';
import type { Select } from '../query/ir.ts';
import type { ResidencyConfig } from '../federation/residency-config.ts';

export type Route =
  | { readonly kind: 'local'; readonly datasets: readonly string[] }
  | { readonly kind: 'remote'; readonly region: string; readonly datasets: readonly string[] }
  | { readonly kind: 'split'; readonly regions: readonly string[]; readonly dataset: string };

/** The regions holding each dataset the query reads; unknown names are refused as the one path refuses them. */
export function planRoute(config: ResidencyConfig, local: ReadonlySet<string>, parsed: Select): Route {
  const known = (n: string): DatasetDef | undefined => (local.has(n) || config.remote.has(n) ? ({ name: n } as DatasetDef) : undefined);
  const names = referencedDatasets(parsed, { dataset: known });
  const regionsOf = (n: string): string[] => [...(local.has(n) ? [config.region] : []), ...(config.remote.get(n) ?? [])];
  if (names.every((n) => !config.remote.has(n))) return { kind: 'local', datasets: names };
  const partitioned = names.filter((n) => regionsOf(n).length > 1);
  if (names.length === 1 && partitioned.length === 1) return { kind: 'split', regions: regionsOf(names[0]!), dataset: names[0]! };
  const regions = new Set(names.flatMap(regionsOf));
  if (partitioned.length === 0 && regions.size === 1) return { kind: 'remote', region: [...regions][0]!, datasets: names };
  throw new GatehouseError('RESIDENCY_NOT_SPLITTABLE', `the query brings together data held in different regions (${names.map((n) => `${n} in ${regionsOf(n).join('+')}`).join(', ')}); rows may not leave their region to be joined`, {
    reasons: ['residency: rows never leave their region'],
    hint: 'query each region\'s datasets separately, or aggregate one dataset at a time (count and sum combine across regions)',
  });
}
