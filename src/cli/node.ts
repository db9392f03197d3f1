/**
 * `gatehouse node init|peers|status`: this node's identity in a federation (docs/residency.md).
 * init creates the Ed25519 key (0600) and certificate and prints the pin peers add under
 * federation.peers; peers lists what gatehouse.yaml pins; status checks the identity against
 * gatehouse.yaml's region section and pings each pinned peer over mutual TLS.
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { COMMANDS, parseOptions } from './commands.ts';
import { EXIT, UsageError } from './exit.ts';
import { formatTable } from './table.ts';
import { GatehouseError } from '../errors.ts';
import { FederationClient, initNodeIdentity, loadNodeIdentity, PeerRegistry } from '../federation/index.ts';
import { readResidency } from '../federation/residency-config.ts';
import { WorkspaceInvalid } from '../model/problems.ts';

type Out = NodeJS.WritableStream;

function usage(message: string): UsageError {
  return new UsageError(message, { hint: 'gatehouse node --help' });
}

function federated(workspace: string) {
  const { config, problems } = readResidency(workspace);
  if (problems.length > 0) throw new WorkspaceInvalid(problems);
  if (!config) throw new GatehouseError('WORKSPACE_INVALID', 'gatehouse.yaml has no region section, so this node is not part of a federation', { hint: 'add region: {node, region, jurisdiction} and federation: {peers: [...]} (docs/residency.md)' });
  return config;
}

export async function nodeCommand(argv: string[], out: Out): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: parseOptions(COMMANDS.node!.options), allowPositionals: true, strict: true }) as { values: Record<string, any>; positionals: string[] };
  const sub = positionals[0];
  if (typeof values.workspace !== 'string') throw usage('give --workspace DIR');
  const workspace = resolve(values.workspace);
  const stateDir = typeof values['state-dir'] === 'string' ? resolve(values['state-dir']) : join(workspace, 'state');
  const json = values.json === true;

  if (sub === 'init') {
    for (const k of ['id', 'region', 'jurisdiction']) if (typeof values[k] !== 'string') throw usage(`node init needs --${k}`);
    const id = await initNodeIdentity(stateDir, { nodeId: values.id, region: values.region, jurisdiction: values.jurisdiction, force: values.force === true });
    if (json) { out.write(`${JSON.stringify({ node: id.nodeId, region: id.region, jurisdiction: id.jurisdiction, publicKey: id.publicKey })}\n`); return EXIT.ok; }
    out.write(`node ${id.nodeId} in ${id.region} (${id.jurisdiction})\nkey ${join(stateDir, 'federation', 'node-key.pem')} (mode 0600)\n\n`);
    out.write(`In this node's gatehouse.yaml:\n  region: { node: ${id.nodeId}, region: ${id.region}, jurisdiction: ${id.jurisdiction} }\n\n`);
    out.write(`On every peer, under federation.peers:\n    - node: ${id.nodeId}\n      region: ${id.region}\n      jurisdiction: ${id.jurisdiction}\n      url: https://<this node's address>:<federation.listen.port>\n      publicKey: ${id.publicKey}\n`);
    return EXIT.ok;
  }
  if (sub === 'peers') {
    const config = federated(workspace);
    const rows = config.federation.peers.map((p) => ({ node: p.nodeId, region: p.region, jurisdiction: p.jurisdiction, url: p.url, publicKey: p.publicKey }));
    if (json) { out.write(`${JSON.stringify({ peers: rows })}\n`); return EXIT.ok; }
    out.write(rows.length === 0 ? 'no peers are pinned\n' : `${formatTable(['node', 'region', 'jurisdiction', 'url', 'public key'], rows.map((r) => [r.node, r.region, r.jurisdiction, r.url, r.publicKey]))}\n`);
    return EXIT.ok;
  }
  if (sub === 'status') {
    const config = federated(workspace);
    const identity = loadNodeIdentity(stateDir);
    const matches = identity.nodeId === config.nodeId && identity.region === config.region;
    const peers = new PeerRegistry(config.federation.peers);
    const client = new FederationClient({ identity, peers, timeoutMs: 3000 });
    const probed = await Promise.all(peers.list().map(async (p) => {
      try {
        const r = await client.call<{ region: string }>(p.nodeId, 'ping', {}, randomUUID());
        return { node: p.nodeId, region: p.region, url: p.url, reachable: true, detail: r.result.region === p.region ? 'ok' : 'region differs' };
      } catch (e) {
        return { node: p.nodeId, region: p.region, url: p.url, reachable: false, detail: e instanceof GatehouseError ? (e.detail ?? e.code) : 'error' };
      }
    }));
    client.close();
    const status = { node: identity.nodeId, region: identity.region, jurisdiction: identity.jurisdiction, publicKey: identity.publicKey, matchesWorkspace: matches, listen: config.federation.listen, peers: probed };
    if (json) out.write(`${JSON.stringify(status)}\n`);
    else {
      out.write(`node ${identity.nodeId} in ${identity.region} (${identity.jurisdiction})\nkey ${identity.publicKey}\n`);
      out.write(matches ? 'identity matches gatehouse.yaml\n' : `identity does NOT match gatehouse.yaml (region: ${config.nodeId} in ${config.region})\n`);
      if (probed.length > 0) out.write(`${formatTable(['peer', 'region', 'url', 'reachable', 'detail'], probed.map((p) => [p.node, p.region, p.url, p.reachable ? 'yes' : 'no', p.detail]))}\n`);
    }
    return matches && probed.every((p) => p.reachable) ? EXIT.ok : EXIT.error;
  }
  throw usage(sub === undefined ? 'give a sub-command: init, peers or status' : `unknown sub-command "${sub}" (init, peers, status)`);
}
