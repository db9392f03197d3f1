/** The digest by which a workspace lists its API keys (`apiKeySha256`): never the key itself. */
import { createHash } from 'node:crypto';

export function apiKeyDigest(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
