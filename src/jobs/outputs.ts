/**
 * Checks what a job returned against the outputs its manifest declared, before anything is
 * kept: exactly the declared output names, tables as arrays of flat rows with exactly the
 * declared columns, cells as plain scalars. Anything else fails the run (nothing is kept),
 * so the airlock only ever sees outputs of the shape the owner approved.
 */
import { GatehouseError } from '../errors.ts';
import type { Manifest } from './bundle.ts';

export type Cell = null | boolean | number | string;
export type Outputs = Record<string, Cell[][] | unknown>;

export interface CheckedOutput {
  readonly name: string;
  readonly kind: 'table' | 'value';
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  readonly value: unknown;
}

function failed(message: string): GatehouseError {
  return new GatehouseError('JOB_FAILED', message, { detail: 'JOB_OUTPUT_MISMATCH', hint: 'return exactly the outputs the manifest declares; try it with `gatehouse job mock`' });
}

export function checkOutputs(manifest: Manifest, outputText: string): CheckedOutput[] {
  let out: unknown;
  try { out = JSON.parse(outputText); } catch { throw failed('the job output is not JSON'); }
  if (typeof out !== 'object' || out === null || Array.isArray(out)) throw failed('the job must return an object with one entry per declared output');
  const declared = Object.keys(manifest.outputs).sort();
  const got = Object.keys(out).sort();
  if (declared.join('\0') !== got.join('\0')) throw failed(`the job returned outputs [${got.slice(0, 10).map((g) => JSON.stringify(g.slice(0, 40))).join(', ')}] but the manifest declares [${declared.join(', ')}]`);
  return declared.map((name) => {
    const spec = manifest.outputs[name]!;
    const v = (out as Record<string, unknown>)[name];
    if (spec.kind === 'value') return { name, kind: 'value', columns: [], rows: [], value: v };
    const columns = spec.columns ?? [];
    if (!Array.isArray(v)) throw failed(`output "${name}" must be an array of rows`);
    const rows = v.map((r, i) => {
      if (typeof r !== 'object' || r === null || Array.isArray(r)) throw failed(`output "${name}" row ${i} is not an object`);
      const keys = Object.keys(r);
      if (keys.length !== columns.length || !columns.every((c) => Object.hasOwn(r, c))) throw failed(`output "${name}" row ${i} must have exactly the columns ${columns.join(', ')}`);
      return columns.map((c) => {
        const cell = (r as Record<string, unknown>)[c];
        if (cell !== null && typeof cell !== 'string' && typeof cell !== 'number' && typeof cell !== 'boolean') throw failed(`output "${name}" column ${c} must hold scalars`);
        return cell as Cell;
      });
    });
    return { name, kind: 'table', columns, rows, value: null };
  });
}
