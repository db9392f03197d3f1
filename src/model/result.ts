/**
 * What an engine answers and every output protection reads: named, typed columns and rows of
 * plain values. The shape lives in the model so that the parts reading results (privacy,
 * governance, the faces) need nothing from the engines that produce them.
 */
export type CellValue = null | boolean | number | string | CellValue[] | { [k: string]: CellValue };

export interface ResultColumn {
  readonly name: string;
  readonly type: string;
}

export interface EngineResult {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly CellValue[])[];
}
