/**
 * The node-to-node layer that clean rooms, federated learning, residency routing and
 * witnesses share (DESIGN.md "Nodes and federation", invariant 12). Build on it; do not
 * open node sockets elsewhere.
 *
 * API
 *   identity.ts   initNodeIdentity(stateDir, {nodeId, region, jurisdiction}) → NodeIdentity
 *                 (Ed25519 key 0600 + self-signed X.509 cert); loadNodeIdentity(stateDir);
 *                 publicKeyText(key) / parsePublicKey(text): the `ed25519:<b64url>` pin text.
 *   peers.ts      parseFederationSection(yaml.federation) → {config, problems[path,message]};
 *                 new PeerRegistry(config.peers): get(id) (throws NODE_UNKNOWN), byKey, inRegion.
 *   transport.ts  startNodeListener({identity, peers, port, handlers: {op: async ({peer,
 *                 requestId, body}) => result}, now?, clockSkewSeconds?}) → {port, close()};
 *                 new FederationClient({identity, peers, now?, timeoutMs?})
 *                   .call(nodeId, op, body, requestId?) → {result, peer, signature}.
 *                 mTLS 1.3 both ways, peer key checked against the pin before any byte of a
 *                 request is sent or handled; a peer's refusal comes back as the same
 *                 GatehouseError code; a dead peer is NODE_UNREACHABLE naming its region.
 *   envelope.ts   signRequest / verifyRequest / signResponse / verifyResponse, ReplayCache:
 *                 node id, target node, pinned region, request id, timestamp (skew window,
 *                 injected clock), nonce (replay cache), Ed25519 over the body digest.
 *   errors.ts     FederationError (detail codes NODE_* → union codes).
 */
export { initNodeIdentity, loadNodeIdentity, hasNodeIdentity, mintCertificate, type NodeIdentity, type InitOptions } from './identity.ts';
export { publicKeyText, parsePublicKey, NODE_ID, REGION } from './keys.ts';
export { parseFederationSection, PeerRegistry, type PeerPin, type FederationConfig, type SectionProblem } from './peers.ts';
export { startNodeListener, FederationClient, peerKeyOf, type NodeCall, type NodeHandler, type NodeListener, type NodeListenerOptions, type CallResult, type FederationClientOptions } from './transport.ts';
export { signRequest, verifyRequest, signResponse, verifyResponse, ReplayCache } from './envelope.ts';
export { FederationError, FEDERATION_CODES } from './errors.ts';
