/** Data-loss prevention: the last look at what leaves (detectors, fingerprints of masked catalog values). */
import type { DlpConfig } from '../../privacy/dlp/policy.ts';
import { applyDlp } from '../../privacy/dlp-release.ts';
import type { SensitiveValueIndex } from '../../privacy/dlp/sensitive-value-index.ts';
import type { Protection } from '../execute.ts';

export function dlp(config: DlpConfig, index: Promise<SensitiveValueIndex> | null): Protection {
  return {
    name: 'dlp',
    async after(_ctx, r) {
      const out = await applyDlp(config, r.columns, r.rows, index);
      return { ...r, rows: out.rows, labels: [...r.labels, ...out.labels] };
    },
  };
}
