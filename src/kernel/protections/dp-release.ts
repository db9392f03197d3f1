/** Differential privacy: noise on every aggregate and partition selection (src/privacy/release.ts), then the row cap. */
import { release, type NoisePlan } from '../../privacy/release.ts';
import type { Protection } from '../execute.ts';

export function dpNoise(noise: NoisePlan, rowLimit: number, capAfterOffset: number): Protection {
  return {
    name: 'dp-noise',
    after: (_ctx, r) => {
      const out = release(noise, { columns: r.columns, rows: r.rows }, rowLimit, capAfterOffset);
      return { ...r, columns: out.columns, rows: out.rows, intervals: out.intervals, truncated: out.truncated };
    },
  };
}
