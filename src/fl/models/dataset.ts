/**
 * Rows to a Dataset (row-major Float64Array and 0/1 labels), and the held-out split each
 * participant evaluates on: the last `fraction` of its rows, so the split is the same every
 * round without shuffling state.
 */
import type { Dataset } from './types.ts';

export function toDataset(rows: readonly (readonly number[])[], labels: readonly number[]): Dataset {
  const d = rows[0]?.length ?? 0;
  const x = new Float64Array(rows.length * d);
  rows.forEach((r, i) => x.set(r, i * d));
  return { x, y: Uint8Array.from(labels), n: rows.length, d };
}

export function splitHoldout(data: Dataset, fraction: number): { train: Dataset; test: Dataset } {
  const nTest = Math.floor(data.n * fraction);
  const nTrain = data.n - nTest;
  return {
    train: { x: data.x.subarray(0, nTrain * data.d), y: data.y.subarray(0, nTrain), n: nTrain, d: data.d },
    test: { x: data.x.subarray(nTrain * data.d), y: data.y.subarray(nTrain), n: nTest, d: data.d },
  };
}
