/**
 * Child process for the lock test: opens the log directory given as argv[2], says
 * "locked", and then waits until it is killed.
 */
import { writeSync } from 'node:fs';
import { TransparencyLog } from '../log.ts';
import { TEST_PASSPHRASE } from './fixtures.ts';

const log = TransparencyLog.open(process.argv[2]!, { passphrase: TEST_PASSPHRASE });
writeSync(1, `locked ${log.size}\n`);
setInterval(() => {}, 1 << 30);
