/**
 * The shape of a workspace's `region:`, `federation:` and `residency:` sections once parsed:
 * this node's region, its pinned peers and where each dataset may be stored and processed.
 * The federation part owns the parser (src/federation/residency-config.ts, peers.ts); the
 * shape lives here so that the workspace model needs nothing from the parts that read it.
 */
import type { KeyObject } from 'node:crypto';
import type { WorkspaceProblem } from './problems.ts';

export interface PeerPin {
  readonly nodeId: string;
  readonly region: string;
  readonly jurisdiction: string;
  /** https://host:port of the peer's node-to-node listener. */
  readonly url: string;
  readonly publicKey: string;
  readonly key: KeyObject;
}

export interface FederationConfig {
  readonly listen: { readonly host: string; readonly port: number } | null;
  readonly clockSkewSeconds: number;
  readonly peers: readonly PeerPin[];
}

export interface DatasetResidency {
  readonly storedIn: string;
  readonly processIn: readonly string[];
}

export interface ResidencyConfig {
  readonly nodeId: string;
  readonly region: string;
  readonly jurisdiction: string;
  readonly federation: FederationConfig;
  /** Datasets held here. */
  readonly datasets: ReadonlyMap<string, DatasetResidency>;
  /** Datasets (or partitions of them) held by other regions → those regions. */
  readonly remote: ReadonlyMap<string, readonly string[]>;
}

/** The residency sections as read: `config` is null when not federated (no `region:`) or when there are problems. */
export interface ResidencySection {
  readonly config: ResidencyConfig | null;
  readonly problems: readonly WorkspaceProblem[];
}
