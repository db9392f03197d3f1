/**
 * CKKS aggregation with every party in this process (tests, benchmark, in-process demo):
 * each vector is encrypted by its own participant identity, and a key authority that is not
 * the coordinator decrypts the verified sum.
 */
import { randomBytes } from 'node:crypto';
import { identities } from '../secagg/simulate.ts';
import type { CkksSummer } from '../training/aggregate.ts';
import { CkksKeyAuthority, encryptUpdate } from './ckks.ts';

export async function inProcessCkks(participants: number): Promise<CkksSummer> {
  const ids = Array.from({ length: participants }, (_, i) => `participant-${i}`);
  const { keys, pins } = identities([...ids, 'key-authority']);
  const ka = await CkksKeyAuthority.create('key-authority', 'coordinator', pins);
  return {
    async sum(vectors) {
      const session = `ckks-${randomBytes(8).toString('hex')}`;
      const cs = await Promise.all(vectors.map((v, i) => encryptUpdate(ka.publicKey, session, ids[i]!, keys.get(ids[i]!)!, v)));
      return ka.decryptSum(session, cs, Math.min(2, vectors.length));
    },
  };
}
