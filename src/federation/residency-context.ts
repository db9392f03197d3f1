/**
 * What Cedar sees of residency, so a policy can say "EU personal data is processed only in
 * the EU, and only aggregates of at least k units leave":
 *
 *   context.nodeRegion        this node's region (pinned by its identity)
 *   context.nodeJurisdiction  this node's jurisdiction
 *   context.originRegion      the region the request entered at: this node's region, or the
 *                             pinned region of the node that forwarded it
 *   context.forwarded         true when another node forwarded the request
 *   context.datasetResidency  the regions the dataset may be processed in (Set<String>)
 *   context.datasetStoredIn   where it is stored
 *
 * The requester's own network zone is `context.networkZone` (device posture). A forwarded
 * request reaches the one pipeline with channel `federation:<origin region>`; only the
 * node listener sets that channel, from the peer's pin, never from the message.
 */
import type { ResidencyConfig } from './residency-config.ts';

export const FEDERATION_CHANNEL_PREFIX = 'federation:';

export const RESIDENCY_CONTEXT_KEYS = ['nodeRegion', 'nodeJurisdiction', 'originRegion', 'forwarded', 'datasetResidency', 'datasetStoredIn'] as const;

export type ResidencyContext = Record<(typeof RESIDENCY_CONTEXT_KEYS)[number], string | boolean | string[]>;

/** The channel a forwarded request runs under on the data's node. */
export function forwardedChannel(originRegion: string): string {
  return FEDERATION_CHANNEL_PREFIX + originRegion;
}

/** The residency attributes of one decision; neutral values on a node that is not federated. */
export function residencyContext(config: ResidencyConfig | null, dataset: string, channel: string): ResidencyContext {
  const forwarded = channel.startsWith(FEDERATION_CHANNEL_PREFIX);
  const nodeRegion = config?.region ?? '';
  const d = config?.datasets.get(dataset);
  return {
    nodeRegion,
    nodeJurisdiction: config?.jurisdiction ?? '',
    originRegion: forwarded ? channel.slice(FEDERATION_CHANNEL_PREFIX.length) : nodeRegion,
    forwarded,
    datasetResidency: d ? [...d.processIn] : [],
    datasetStoredIn: d?.storedIn ?? '',
  };
}

/**
 * The Cedar schema of a federated node's workspace: the residency attributes above in every
 * query's context. The demos of residency (scenario 4) and federated learning both use it.
 */
export const FEDERATED_CEDAR_SCHEMA = `// Gatehouse supplies the residency attributes of a federated node (docs/residency.md).
entity Group;
entity Principal in [Group] { org: String };
entity Dataset { classification: String };
action query appliesTo {
  principal: Principal,
  resource: Dataset,
  context: {
    purpose: String,
    nodeRegion: String,
    nodeJurisdiction: String,
    originRegion: String,
    forwarded: Bool,
    datasetResidency: Set<String>,
    datasetStoredIn: String,
  },
};
`;
