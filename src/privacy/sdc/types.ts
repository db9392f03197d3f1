/**
 * Shared types of statistical disclosure control (SDC). A table is a set of cells, each
 * the aggregate of one group: the number of distinct privacy units it covers (`units`,
 * computed by the pipeline as a hidden `count(DISTINCT unit)`) and one value per
 * measure. Totals are cells too: a total sums the cells of one line of the table.
 */

/** `none`, round counts to the nearest 5, or OpenSAFELY "midpoint 6" rounding. */
export type Rounding = 'none' | 'nearest5' | 'midpoint6';

/**
 * `count` measures (COUNT(*), COUNT(col), COUNT(DISTINCT ...)) must be non-negative
 * integers and are the ones rounding applies to; `sum` measures are any finite number.
 * Both must be additive over the cells of a line (a total is the sum of its cells),
 * which is what secondary suppression protects.
 */
export type MeasureKind = 'count' | 'sum';

export interface Measure {
  readonly name: string;
  readonly kind: MeasureKind;
}

/**
 * What the attacker is assumed to know about margins (line totals) the table does not carry.
 * - `assume-known` (default): each of them can be obtained by one more query (the same
 *   query without a GROUP BY key), so it counts as visible, except a margin whose line
 *   covers fewer than `threshold` units in all, because that query would be suppressed.
 * - `published-only`: the attacker knows the totals in this table and those marked
 *   `publishedElsewhere`, nothing more.
 * In both, a total the table carries may be hidden as a complement like any cell;
 * obtaining it, or any hidden cell, by further queries is differencing across queries,
 * which this module does not see (docs/disclosure-control.md, "Limits").
 */
export type MarginKnowledge = 'assume-known' | 'published-only';

export interface SdcOptions {
  /** Smallest number of distinct privacy units a published cell may cover. Default 8 (≤ 7 suppressed). */
  readonly threshold?: number;
  /** Rounding of published `count` measures, applied after suppression. Default `none`. */
  readonly rounding?: Rounding;
  /**
   * A cell covering no privacy unit whose measures are all 0 or NULL: `publish` it as a
   * zero (default, the OpenSAFELY guidance) or `suppress` it. A zero-unit cell with any
   * non-zero measure (rows without a privacy unit) is always suppressed.
   */
  readonly zeros?: 'publish' | 'suppress';
  /** Default `assume-known`. */
  readonly margins?: MarginKnowledge;
}

/** One cell of an input table, with its true values. */
export interface Cell {
  /** Distinct privacy units the cell covers: a non-negative safe integer. */
  readonly units: number;
  /** One value per measure, in the table's measure order; NULL as SQL returns it. */
  readonly values: readonly (number | null)[];
}

/** A total is a cell; one already public (published earlier) is never suppressed. */
export interface Total extends Cell {
  readonly publishedElsewhere?: boolean;
}

/** A row of cells and, optionally, their total. */
export interface OneWayTable {
  readonly measures: readonly Measure[];
  readonly cells: readonly Cell[];
  readonly total?: Total | null;
}

/**
 * Rows × columns. `cells[r][c]` is null when the group does not exist (no rows), which
 * the attacker knows means zero. Margins are optional, each entry independently.
 */
export interface TwoWayTable {
  readonly measures: readonly Measure[];
  readonly cells: readonly (readonly (Cell | null)[])[];
  readonly rowTotals?: readonly (Total | null)[] | null;
  readonly columnTotals?: readonly (Total | null)[] | null;
  readonly grandTotal?: Total | null;
}

export type Suppression = 'primary' | 'secondary';

/** A cell as released: suppressed cells have every value NULL. Units are never released. */
export interface PublishedCell {
  readonly values: readonly (number | null)[];
  readonly suppressed: Suppression | null;
}

export interface PublishedOneWay {
  readonly measures: readonly Measure[];
  readonly cells: readonly PublishedCell[];
  readonly total: PublishedCell | null;
}

export interface PublishedTwoWay {
  readonly measures: readonly Measure[];
  readonly cells: readonly (readonly (PublishedCell | null)[])[];
  readonly rowTotals: readonly (PublishedCell | null)[] | null;
  readonly columnTotals: readonly (PublishedCell | null)[] | null;
  readonly grandTotal: PublishedCell | null;
}

/** A cell of a one-way table: its index, or its total. */
export type OneWayRef = number | 'total';

/** A cell of a two-way table: [row, column]; `'total'` names a margin. */
export type TwoWayRef = readonly [row: number | 'total', column: number | 'total'];

export interface SdcResult<T, R> {
  readonly table: T;
  readonly suppressedPrimary: readonly R[];
  readonly suppressedSecondary: readonly R[];
  readonly threshold: number;
  readonly rounding: Rounding;
}
