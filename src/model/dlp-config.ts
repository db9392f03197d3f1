/**
 * The shape of the workspace's `dlp:` block once parsed (and of an obligation's): which
 * detectors run and what each classification's findings do. The privacy part owns the parser
 * and the scanner (src/privacy/dlp/); the shape lives here so that the workspace model needs
 * nothing from the parts that read it.
 */
import type { Classification } from './classification.ts';

/** Every detector Gatehouse ships, plus `catalog_value` for exact catalog values. */
export const DETECTOR_IDS = [
  'email',
  'phone',
  'us_ssn',
  'uk_nhs_number',
  'ca_sin',
  'es_dni',
  'payment_card',
  'iban',
  'ipv4',
  'ipv6',
  'catalog_value',
] as const;
export type DetectorId = (typeof DETECTOR_IDS)[number];

/** What the policy does with a finding: refuse the whole result, blank the cell, or only report. */
export const DLP_ACTIONS = ['block', 'redact', 'alert'] as const;
export type DlpAction = (typeof DLP_ACTIONS)[number];

export type PatternDetectorId = Exclude<DetectorId, 'catalog_value'>;

export interface DetectorSetting {
  readonly id: PatternDetectorId;
  /** Classification given to this detector's findings (default: the detector's own). */
  readonly classification?: Classification;
  /** Action for this detector's findings, overriding the classification's action. */
  readonly action?: DlpAction;
}

/** The `dlp:` block of gatehouse.yaml, as written. */
export interface DlpConfig {
  /** Action per classification; missing classifications take DEFAULT_ACTIONS. */
  readonly actions?: Readonly<Partial<Record<Classification, DlpAction>>>;
  /** Detectors to run; omitted means all of them, `[]` means none (catalog values only). */
  readonly detectors?: readonly (PatternDetectorId | DetectorSetting)[];
}
