/**
 * Data-loss prevention: the shapes every detector, the catalog-value index and the
 * result scanner share. A finding names *where* something sensitive is (detector, column,
 * row) and never *what* it is: no type here has a field that could carry a cell value.
 */
import type { Classification } from '../../model/types.ts';

import { DETECTOR_IDS, DLP_ACTIONS, type DetectorId, type DlpAction } from '../../model/dlp-config.ts';

export { DETECTOR_IDS, DLP_ACTIONS };
export type { DetectorId, DlpAction };

/** One sensitive value found: detector, result column name, 0-based row index. Never the value. */
export interface Finding {
  readonly detector: DetectorId;
  readonly column: string;
  readonly row: number;
}

/**
 * Character counts of one cell, computed in a single pass so that each detector can skip
 * cells it cannot possibly match (an e-mail needs an `@`, a card needs 13 digits ...).
 */
export interface TextFeatures {
  length: number;
  digits: number;
  letters: number;
  upper: number;
  at: number;
  dots: number;
  colons: number;
  plus: number;
}

/**
 * A pattern detector. `requires` gives minimum character counts any match needs (a
 * necessary condition: a cell below any of them cannot match), so the scanner skips the
 * regular expression for most cells without calling into the detector; `matches` says
 * whether the text contains at least one valid occurrence. Neither ever returns or stores
 * the matched text.
 */
export interface Detector {
  readonly id: Exclude<DetectorId, 'catalog_value'>;
  /** Classification a finding gets unless the DLP configuration overrides it. */
  readonly classification: Classification;
  readonly requires: Readonly<Partial<TextFeatures>>;
  matches(text: string): boolean;
}
