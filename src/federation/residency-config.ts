/**
 * The residency sections of gatehouse.yaml, read with their lines, and the load-time rule:
 * a workspace that would store or process a dataset outside the regions it may live in is
 * refused, with the file and line of the offending entry (issue 20).
 *
 * ```yaml
 * region:                      # this node: pinned by its identity (gatehouse node init)
 *   node: eu-west-1
 *   region: eu-west
 *   jurisdiction: EU
 * federation: { ... }          # peers, src/federation/peers.ts
 * residency:
 *   datasets:                  # every dataset this node holds says where it may live
 *     eu_patients: { storedIn: eu-west, processIn: [eu-west] }
 *   remote:                    # datasets held in other regions, reached through a peer there
 *     us_claims: { regions: [us-east] }
 * ```
 *
 * A dataset declared under `datasets:` has a source on this node, so this node stores it
 * and its engine processes it: its `storedIn` must be this node's region and this region
 * must be one of its `processIn`. A name that is both local and remote is one dataset
 * partitioned by region (each region holds its own rows), queried by split aggregates.
 * Without a `region:` section the node is not federated and nothing here applies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap as isYamlMap, isScalar, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { parseFederationSection } from './peers.ts';
import { NODE_ID, REGION } from './keys.ts';
import type { WorkspaceProblem } from '../model/problems.ts';

export type { DatasetResidency, ResidencyConfig, ResidencySection } from '../model/residency-config.ts';
import type { DatasetResidency, ResidencyConfig, ResidencySection } from '../model/residency-config.ts';

const FILE = 'gatehouse.yaml';

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads the residency sections of the workspace in `dir` (the `gatehouse node` commands,
 * which run without loading the workspace). A loaded workspace carries the sections read
 * from the same text as everything else (`Workspace.residency`), never re-read from disk.
 */
export function readResidency(dir: string): ResidencySection {
  let text: string;
  try { text = readFileSync(join(dir, FILE), 'utf8'); } catch { return { config: null, problems: [] }; }
  return parseResidency(text);
}

export function parseResidency(text: string): ResidencySection {
  const lines = new LineCounter();
  return residencySection(parseDocument(text, { lineCounter: lines, uniqueKeys: true }), lines);
}

/** The residency sections of a gatehouse.yaml document the workspace loader has already parsed (with its line counter). */
export function residencySection(doc: Document, lines: LineCounter): ResidencySection {
  // YAML errors are the workspace loader's to report.
  if (doc.errors.length > 0) return { config: null, problems: [] };
  let root: unknown;
  try { root = doc.toJS({ maxAliasCount: 0 }); } catch { return { config: null, problems: [] }; }
  if (!isMap(root)) return { config: null, problems: [] };
  const problems: WorkspaceProblem[] = [];
  // The line of the key itself (`eu_patients:`), not of the first line of its value.
  const lineOf = (path: readonly (string | number)[]): number | null => {
    for (let i = path.length; i > 0; i--) {
      const parent = doc.getIn(path.slice(0, i - 1), true);
      if (isYamlMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[i - 1]);
        const key = pair?.key as YamlNode | undefined;
        if (key?.range) return lines.linePos(key.range[0]).line;
      }
      const node = doc.getIn(path.slice(0, i), true) as YamlNode | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return lines.linePos(node.range[0]).line;
    }
    return null;
  };
  const at = (path: readonly (string | number)[], message: string): void => { problems.push({ file: FILE, line: lineOf(path), message: `${path.join('.')}: ${message}` }); };

  const hasAny = root.region !== undefined || root.federation !== undefined || root.residency !== undefined;
  if (!hasAny) return { config: null, problems };
  const reg = root.region;
  if (!isMap(reg)) {
    at(['region'], 'is required with federation or residency: { node: <id>, region: <region>, jurisdiction: <jurisdiction> }');
    return { config: null, problems };
  }
  for (const k of Object.keys(reg)) if (!['node', 'region', 'jurisdiction'].includes(k)) at(['region', k], `unknown key "${k}" (expected one of: node, region, jurisdiction)`);
  const nodeId = typeof reg.node === 'string' && NODE_ID.test(reg.node) ? reg.node : (at(['region', 'node'], 'must be this node\'s id (lower-case letters, digits, dashes)'), '');
  const region = typeof reg.region === 'string' && REGION.test(reg.region) ? reg.region : (at(['region', 'region'], 'must be a region name such as eu-west'), '');
  const jurisdiction = typeof reg.jurisdiction === 'string' && reg.jurisdiction.length > 0 ? reg.jurisdiction : (at(['region', 'jurisdiction'], 'must name the jurisdiction, such as EU'), '');

  const fed = parseFederationSection(root.federation);
  for (const p of fed.problems) at(p.path, p.message);
  const peers = fed.config?.peers ?? [];
  for (const [i, p] of peers.entries()) if (p.nodeId === nodeId) at(['federation', 'peers', i, 'node'], 'is this node itself; pin only other nodes');

  const localNames = isMap(root.datasets) ? Object.keys(root.datasets) : [];
  const res = root.residency === undefined ? {} : root.residency;
  if (!isMap(res)) at(['residency'], 'must be a mapping with datasets and remote');
  const resMap = isMap(res) ? res : {};
  for (const k of Object.keys(resMap)) if (!['datasets', 'remote'].includes(k)) at(['residency', k], `unknown key "${k}" (expected one of: datasets, remote)`);

  const datasets = new Map<string, DatasetResidency>();
  const declared = isMap(resMap.datasets) ? resMap.datasets : {};
  if (resMap.datasets !== undefined && !isMap(resMap.datasets)) at(['residency', 'datasets'], 'must map each dataset this node holds to { storedIn, processIn }');
  for (const [name, v] of Object.entries(declared)) {
    const path = ['residency', 'datasets', name];
    if (!localNames.includes(name)) { at(path, `dataset "${name}" is not declared under datasets: on this node`); continue; }
    if (!isMap(v)) { at(path, 'must be { storedIn: <region>, processIn: [<region>, ...] }'); continue; }
    for (const k of Object.keys(v)) if (!['storedIn', 'processIn'].includes(k)) at([...path, k], `unknown key "${k}" (expected one of: storedIn, processIn)`);
    if (typeof v.storedIn !== 'string' || !REGION.test(v.storedIn)) { at([...path, 'storedIn'], 'must be the region where the dataset is stored'); continue; }
    const processIn = v.processIn === undefined ? [v.storedIn] : v.processIn;
    if (!Array.isArray(processIn) || processIn.length === 0 || processIn.some((r) => typeof r !== 'string' || !REGION.test(r))) { at([...path, 'processIn'], 'must be a list of regions'); continue; }
    const allowed = processIn as string[];
    if (!allowed.includes(v.storedIn)) at([...path, 'processIn'], `must include "${v.storedIn}", where the dataset is stored`);
    datasets.set(name, { storedIn: v.storedIn, processIn: allowed });
  }

  // The rule of the issue: a source here stores and processes the dataset in this region.
  if (region) for (const name of localNames) {
    const d = datasets.get(name);
    if (!d) {
      if (!problems.some((p) => p.message.startsWith(`residency.datasets.${name}`))) {
        at(['datasets', name], `dataset "${name}" declares no residency: say where it may be stored and processed under residency.datasets.${name}`);
      }
      continue;
    }
    if (d.storedIn !== region) {
      at(['datasets', name, 'source'], `would store dataset "${name}" in ${region}, but it may be stored only in ${d.storedIn} (residency.datasets.${name}.storedIn); remove this source and reach it through a node in ${d.storedIn} (residency.remote)`);
    } else if (!d.processIn.includes(region)) {
      at(['datasets', name, 'source'], `would process dataset "${name}" in ${region}, outside its allowed regions ${d.processIn.join(', ')}`);
    }
  }

  const remote = new Map<string, readonly string[]>();
  const rem = resMap.remote === undefined ? {} : resMap.remote;
  if (!isMap(rem)) at(['residency', 'remote'], 'must map dataset names to { regions: [<region>, ...] }');
  for (const [name, v] of Object.entries(isMap(rem) ? rem : {})) {
    const path = ['residency', 'remote', name];
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) { at(path, 'dataset names are lower-case letters, digits and _'); continue; }
    if (!isMap(v) || !Array.isArray(v.regions) || v.regions.length === 0 || v.regions.some((r) => typeof r !== 'string' || !REGION.test(r))) { at(path, 'must be { regions: [<region>, ...] }'); continue; }
    for (const k of Object.keys(v)) if (k !== 'regions') at([...path, k], `unknown key "${k}" (expected: regions)`);
    const regions = v.regions as string[];
    for (const [i, r] of regions.entries()) {
      if (r === region) at([...path, 'regions', i], `is this node's own region; a dataset held here is declared under datasets:`);
      else if (!peers.some((p) => p.region === r)) at([...path, 'regions', i], `no peer in region ${r} is pinned under federation.peers, so the dataset could not be reached`);
    }
    remote.set(name, regions);
  }

  if (problems.length > 0) return { config: null, problems };
  return { config: { nodeId, region, jurisdiction, federation: fed.config!, datasets, remote }, problems };
}
