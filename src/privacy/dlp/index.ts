/**
 * Data-loss prevention for outgoing results: pattern detectors, exact catalog values
 * (keyed fingerprints), and a policy-driven result scanner. See docs/dlp.md.
 */
export { DETECTOR_IDS, DLP_ACTIONS, type Detector, type DetectorId, type DlpAction, type Finding, type TextFeatures } from './types.ts';
export { DETECTORS, DETECTORS_BY_ID } from './detectors/all.ts';
export { DEFAULT_ACTIONS, createDlpPolicy, parseDlpConfig, type DetectorSetting, type DlpConfig, type DlpPolicy, type EnabledDetector, type PatternDetectorId } from './policy.ts';
export { SensitiveValueIndex, type SensitiveValue, type SensitiveValueIndexOptions } from './sensitive-value-index.ts';
export { LOW_CARDINALITY_TAGS, isIndexableTag, normalise, normaliserForTag, type NormaliserKind } from './normalise.ts';
export { blockedError, scanResult, summariseFindings, type DlpScanResult, type ScanAction, type ScanFinding } from './scan.ts';
export { DlpConfigInvalid, DlpError, DlpIndexDisposed, DlpInputInvalid, DlpResultBlocked, type BlockedReason } from './errors.ts';
