/**
 * Child process for the crash test: appends as fast as it can and reports every
 * acknowledged auditId on stdout ("ack <id>"), until it is killed with SIGKILL.
 */
import { writeSync } from 'node:fs';
import { TransparencyLog } from '../log.ts';
import { TEST_PASSPHRASE, record } from './fixtures.ts';

const dir = process.argv[2]!;
const log = TransparencyLog.open(dir, { passphrase: TEST_PASSPHRASE, checkpointIntervalMs: 20 });
writeSync(1, `ready ${log.size}\n`);
let i = log.size;
for (;;) {
  const batch = Array.from({ length: 1 + Math.floor(Math.random() * 300) }, () => log.append(record(i++)));
  const ids = await Promise.all(batch);
  // Synchronous write: an ack is reported only after append resolved.
  writeSync(1, ids.map((r) => `ack ${r.auditId}\n`).join(''));
}
