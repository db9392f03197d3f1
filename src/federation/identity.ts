/**
 * A node's identity: an Ed25519 key pair (RFC 8032) and the self-signed X.509 certificate
 * (RFC 5280, Ed25519 per RFC 8410) that the node presents in mutual TLS. The certificate is
 * only a carrier for the public key: peers trust a node because its key equals the key
 * pinned for that node id in their workspace, never because of a CA or the certificate's
 * subject (DESIGN.md invariant 12).
 *
 * `gatehouse node init` calls `initNodeIdentity`; everything else calls `loadNodeIdentity`.
 * Files under <state>/federation/: node-key.pem (PKCS#8, mode 0600; refused if group or
 * others may read it, as ssh refuses a loose private key), node-cert.pem, node.json.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { NODE_ID, publicKeyText, REGION } from './keys.ts';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FederationError } from './errors.ts';

x509.cryptoProvider.set(globalThis.crypto);

export { NODE_ID, REGION, publicKeyText, parsePublicKey, type NodeIdentity } from './keys.ts';
import type { NodeIdentity } from './keys.ts';

/** Mints the self-signed certificate mTLS presents; valid from an hour ago (clock skew) for `days`. */
export async function mintCertificate(nodeId: string, privateKey: KeyObject, now: Date = new Date(), days = 825): Promise<string> {
  const subtle = webcrypto.subtle;
  const priv = await subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), { name: 'Ed25519' }, false, ['sign']);
  const pub = await subtle.importKey('spki', createPublicKey(privateKey).export({ format: 'der', type: 'spki' }), { name: 'Ed25519' }, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${nodeId}`,
    notBefore: new Date(now.getTime() - 3_600_000),
    notAfter: new Date(now.getTime() + days * 86_400_000),
    keys: { privateKey: priv, publicKey: pub },
    signingAlgorithm: { name: 'Ed25519' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return cert.toString('pem');
}

export interface InitOptions {
  readonly nodeId: string;
  readonly region: string;
  readonly jurisdiction: string;
  readonly now?: Date;
  /** Replace an existing identity (its peers must re-pin the new key). */
  readonly force?: boolean;
}

function dirOf(stateDir: string): string {
  return join(stateDir, 'federation');
}

/** Creates the node's key, certificate and description; refuses to overwrite unless `force`. */
export async function initNodeIdentity(stateDir: string, options: InitOptions): Promise<NodeIdentity> {
  if (!NODE_ID.test(options.nodeId)) throw new FederationError('FEDERATION_CONFIG_INVALID', 'the node id must be lower-case letters, digits and dashes (at most 63)', 'pick an id such as eu-west-1');
  if (!REGION.test(options.region)) throw new FederationError('FEDERATION_CONFIG_INVALID', 'the region must be lower-case letters, digits and dashes', 'use a region name such as eu-west');
  if (options.jurisdiction.length === 0) throw new FederationError('FEDERATION_CONFIG_INVALID', 'the jurisdiction must not be empty', 'use a jurisdiction such as EU or US');
  const dir = dirOf(stateDir);
  const keyFile = join(dir, 'node-key.pem');
  if (existsSync(keyFile) && !options.force) {
    throw new FederationError('NODE_IDENTITY_EXISTS', 'this node already has an identity', 'keep it (peers pin its key), or pass --force to replace it and re-pin it on every peer');
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const certPem = await mintCertificate(options.nodeId, privateKey, options.now);
  const publicKey = publicKeyText(createPublicKey(privateKey));
  writeFileSync(keyFile, keyPem, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  writeFileSync(join(dir, 'node-cert.pem'), certPem, { mode: 0o644 });
  writeFileSync(join(dir, 'node.json'), JSON.stringify({ nodeId: options.nodeId, region: options.region, jurisdiction: options.jurisdiction, publicKey }, null, 2) + '\n', { mode: 0o644 });
  return { nodeId: options.nodeId, region: options.region, jurisdiction: options.jurisdiction, publicKey, privateKey, certPem, keyPem };
}

/** Whether a node identity exists in this state directory. */
export function hasNodeIdentity(stateDir: string): boolean {
  return existsSync(join(dirOf(stateDir), 'node-key.pem'));
}

/** Loads and cross-checks the identity: the key file must be private and match the certificate and node.json. */
export function loadNodeIdentity(stateDir: string): NodeIdentity {
  const dir = dirOf(stateDir);
  const keyFile = join(dir, 'node-key.pem');
  if (!existsSync(keyFile)) throw new FederationError('NODE_IDENTITY_MISSING', 'this node has no identity yet', 'run "gatehouse node init --id <id> --region <region> --jurisdiction <j>"');
  if ((statSync(keyFile).mode & 0o077) !== 0) {
    throw new FederationError('NODE_IDENTITY_INSECURE', 'the node key file may be read by other users', `run "chmod 600 ${keyFile}"`);
  }
  try {
    const keyPem = readFileSync(keyFile, 'utf8');
    const certPem = readFileSync(join(dir, 'node-cert.pem'), 'utf8');
    const meta = JSON.parse(readFileSync(join(dir, 'node.json'), 'utf8')) as { nodeId: string; region: string; jurisdiction: string; publicKey: string };
    const privateKey = createPrivateKey(keyPem);
    const publicKey = publicKeyText(createPublicKey(privateKey));
    const cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(privateKey) || publicKey !== meta.publicKey || !NODE_ID.test(meta.nodeId) || !REGION.test(meta.region)) {
      throw new Error('key, certificate and node.json do not belong together');
    }
    return { nodeId: meta.nodeId, region: meta.region, jurisdiction: meta.jurisdiction, publicKey, privateKey, certPem, keyPem };
  } catch (cause) {
    throw new FederationError('NODE_IDENTITY_CORRUPT', 'the node identity files are damaged or do not match', 'restore them from backup, or run "gatehouse node init --force" and re-pin the new key on every peer', { cause });
  }
}
