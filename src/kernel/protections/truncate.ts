/** Row cap on a plain result: the rendered LIMIT asked for one row more, so truncation is detected and flagged. */
import type { Protection } from '../execute.ts';

export function truncate(rowLimit: number): Protection {
  return {
    name: 'truncate',
    after: (_ctx, r) => (r.rows.length > rowLimit ? { ...r, rows: r.rows.slice(0, rowLimit), truncated: true } : r),
  };
}
