/**
 * Primary small-cell suppression: a cell covering fewer than `threshold` distinct privacy
 * units is withheld. The default threshold is 8, i.e. counts of 7 or fewer are suppressed,
 * the OpenSAFELY rule ("OpenSAFELY requires that researchers redact any outputs based on
 * counts <= 7", docs.opensafely.org/releasing-files/, "Redacting counts less than or
 * equal to 7"). The threshold is counted in distinct privacy units (patients), not rows:
 * one patient with forty prescriptions is one unit.
 *
 * Zero cells (covering no unit): OpenSAFELY notes that "counts of zero can be retained in
 * general", so by default a zero-unit cell whose measures are all 0 or NULL is published
 * as a zero; `zeros: 'suppress'` withholds it instead (a zero can disclose a property of a
 * whole group, "none of the X had Y"). A zero-unit cell with a non-zero measure means rows
 * without a privacy unit (a NULL unit): nothing bounds how few people it describes, so it
 * is always suppressed.
 *
 * Inputs are validated here, at the boundary, and rejected rather than guessed: a
 * missing or malformed unit count never publishes a cell.
 */
import { SdcInputInvalid } from './errors.ts';
import type { Cell, MarginKnowledge, Measure, Rounding, SdcOptions } from './types.ts';

export const DEFAULT_THRESHOLD = 8;

export interface ResolvedOptions {
  readonly threshold: number;
  readonly rounding: Rounding;
  readonly zeros: 'publish' | 'suppress';
  readonly margins: MarginKnowledge;
}

export function resolveOptions(options: SdcOptions = {}): ResolvedOptions {
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  if (!Number.isSafeInteger(threshold) || threshold < 1) throw new SdcInputInvalid('threshold must be a positive integer');
  const rounding = options.rounding ?? 'none';
  if (rounding !== 'none' && rounding !== 'nearest5' && rounding !== 'midpoint6') throw new SdcInputInvalid('rounding must be none, nearest5 or midpoint6');
  const zeros = options.zeros ?? 'publish';
  if (zeros !== 'publish' && zeros !== 'suppress') throw new SdcInputInvalid('zeros must be publish or suppress');
  const margins = options.margins ?? 'assume-known';
  if (margins !== 'assume-known' && margins !== 'published-only') throw new SdcInputInvalid('margins must be assume-known or published-only');
  return { threshold, rounding, zeros, margins };
}

export function validateMeasures(measures: readonly Measure[]): void {
  if (!Array.isArray(measures)) throw new SdcInputInvalid('measures must be an array');
  const seen = new Set<string>();
  for (const m of measures) {
    if (typeof m?.name !== 'string' || (m.kind !== 'count' && m.kind !== 'sum')) throw new SdcInputInvalid('each measure needs a name and a kind (count or sum)');
    if (seen.has(m.name)) throw new SdcInputInvalid(`measure "${m.name}" is listed twice`);
    seen.add(m.name);
  }
}

/** Throws unless `units` is a usable distinct-unit count. `where` names the cell, never its value. */
export function validateUnits(units: unknown, where: string): number {
  if (units === null || units === undefined) throw new SdcInputInvalid(`${where}: the distinct privacy unit count is missing`);
  if (typeof units !== 'number' || !Number.isSafeInteger(units) || units < 0) {
    throw new SdcInputInvalid(`${where}: the distinct privacy unit count is not a non-negative integer`);
  }
  return units;
}

/** Throws unless the value fits the measure: NULL, or finite (and a non-negative integer for counts). */
export function validateValue(value: unknown, measure: Measure, where: string): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new SdcInputInvalid(`${where}, measure "${measure.name}": not a finite number`);
  if (measure.kind === 'count' && (!Number.isSafeInteger(value) || value < 0)) {
    throw new SdcInputInvalid(`${where}, measure "${measure.name}": a count must be a non-negative integer`);
  }
  return Object.is(value, -0) ? 0 : value;
}

export function validateCell(cell: Cell, measures: readonly Measure[], where: string): Cell {
  if (cell === null || typeof cell !== 'object') throw new SdcInputInvalid(`${where}: not a cell`);
  const units = validateUnits(cell.units, where);
  if (!Array.isArray(cell.values) || cell.values.length !== measures.length) throw new SdcInputInvalid(`${where}: expected one value per measure`);
  const values = cell.values.map((v, i) => validateValue(v, measures[i]!, where));
  return { units, values };
}

/** True when the validated cell must be withheld by primary suppression. */
export function isPrimarySuppressed(cell: Cell, options: ResolvedOptions): boolean {
  if (cell.units >= options.threshold) return false;
  if (cell.units > 0) return true;
  const allZero = cell.values.every((v) => v === null || v === 0);
  return !allZero || options.zeros === 'suppress';
}
