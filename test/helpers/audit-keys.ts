/**
 * Test fixture: creates a node's audit key files (the log's signing keys and the pseudonym
 * keys, src/audit/keys.ts) at a low scrypt cost before the node first opens them.
 *
 * Why: a key file keeps the scrypt parameters it was created with (RFC 7914; production
 * N=2^15, r=8, p=1, ≈ 60 ms of CPU per file) and every open re-derives its key-encryption key
 * at that stored cost. A test node creates two fresh files and opens them at every start, so
 * each fixture paid ≈ 125 ms of CPU in scrypt, about half of a warm fixture start. Creating
 * them here at N=2^10 (≈ 1 ms) with the ordinary exported `open` and its `cost` argument lets
 * the node open them unchanged: production code has no test-only branch, and the tests that
 * check the production cost (src/audit/log.test.ts, "sealed at the default scrypt cost") open
 * their own logs without this helper and keep checking N=2^15.
 *
 * The origin and passphrase are the node's (src/node/state.ts: "gatehouse.local/audit", the
 * demo passphrase); an existing file is left as it is (its own cost applies).
 */
import { join } from 'node:path';
import { DEMO_PASSPHRASE, LogKeyring, PseudonymKeyring, type KeyKdfCost } from '../../src/audit/keys.ts';

/** scrypt cost of test key files: N=2^10, r=8, p=1 (≈ 1 ms of CPU; production is N=2^15). */
export const TEST_KEY_KDF: KeyKdfCost = { N: 2 ** 10, r: 8, p: 1 };

/** The origin a node gives its audit log (src/node/state.ts). */
const NODE_ORIGIN = 'gatehouse.local/audit';

/**
 * Creates `auditDir/keys` and `auditDir/pseudonym-keys` at TEST_KEY_KDF unless they exist,
 * for a demo node (`demo: true`) that will use `auditDir` as its audit directory.
 */
export function precreateAuditKeys(auditDir: string, options: { readonly origin?: string; readonly passphrase?: string } = {}): void {
  const passphrase = options.passphrase ?? DEMO_PASSPHRASE;
  LogKeyring.open(join(auditDir, 'keys'), options.origin ?? NODE_ORIGIN, passphrase, TEST_KEY_KDF).close();
  PseudonymKeyring.open(join(auditDir, 'pseudonym-keys'), passphrase, 'month', TEST_KEY_KDF).close();
}
