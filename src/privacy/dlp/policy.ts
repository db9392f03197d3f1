/**
 * The DLP policy: which detectors run, and what happens to a finding — by the finding's
 * classification, or by a per-detector override. The workspace's `dlp:` YAML block is
 * parsed by `parseDlpConfig` and resolved once by `createDlpPolicy`; the scanner only
 * reads the resolved form.
 *
 *   dlp:
 *     actions: { regulated: block, confidential: redact, internal: alert }
 *     detectors: [email, phone, us_ssn, { id: ipv4, classification: internal }, { id: iban, action: redact }]
 */
import { CLASSIFICATIONS, type Classification } from '../../model/types.ts';
import { DETECTORS, DETECTORS_BY_ID } from './detectors/all.ts';
import { DlpConfigInvalid } from './errors.ts';
import { DLP_ACTIONS, type Detector, type DetectorId, type DlpAction } from './types.ts';
import type { DetectorSetting, DlpConfig, PatternDetectorId } from '../../model/dlp-config.ts';

export type { DetectorSetting, DlpConfig, PatternDetectorId } from '../../model/dlp-config.ts';

export interface EnabledDetector {
  readonly detector: Detector;
  readonly classification: Classification;
  readonly action: DlpAction;
}

/** The resolved policy the scanner runs. */
export interface DlpPolicy {
  readonly detectors: readonly EnabledDetector[];
  /** Action per classification; catalog-value findings use the classification of their column. */
  readonly actions: Readonly<Record<Classification, DlpAction>>;
}

export const DEFAULT_ACTIONS: Readonly<Record<Classification, DlpAction>> = {
  public: 'alert',
  internal: 'alert',
  confidential: 'redact',
  regulated: 'block',
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const list = (xs: readonly string[]) => xs.join(', ');

/**
 * Validates a parsed `dlp:` value (from YAML or JSON) and returns it typed. Throws
 * DlpConfigInvalid listing every problem with its path; nothing else is accepted.
 */
export function parseDlpConfig(raw: unknown, path = 'dlp'): DlpConfig {
  const problems: string[] = [];
  if (raw === undefined || raw === null) return {};
  if (!isRecord(raw)) throw new DlpConfigInvalid([`${path}: must be a mapping`]);
  for (const key of Object.keys(raw)) {
    if (key !== 'actions' && key !== 'detectors') problems.push(`${path}.${key}: unknown key (expected actions, detectors)`);
  }
  let actions: Partial<Record<Classification, DlpAction>> | undefined;
  if (raw.actions !== undefined) {
    if (!isRecord(raw.actions)) problems.push(`${path}.actions: must be a mapping of classification to action`);
    else {
      actions = {};
      for (const [k, v] of Object.entries(raw.actions)) {
        if (!(CLASSIFICATIONS as readonly string[]).includes(k)) problems.push(`${path}.actions.${k}: unknown classification (expected ${list(CLASSIFICATIONS)})`);
        else if (!(DLP_ACTIONS as readonly unknown[]).includes(v)) problems.push(`${path}.actions.${k}: action must be one of ${list(DLP_ACTIONS)}`);
        else actions[k as Classification] = v as DlpAction;
      }
    }
  }
  let detectors: (PatternDetectorId | DetectorSetting)[] | undefined;
  if (raw.detectors !== undefined) {
    if (!Array.isArray(raw.detectors)) problems.push(`${path}.detectors: must be a list`);
    else {
      detectors = [];
      const seen = new Set<string>();
      raw.detectors.forEach((item: unknown, i: number) => {
        const at = `${path}.detectors[${i}]`;
        const setting = parseDetectorSetting(item, at, problems);
        if (setting === null) return;
        const id = typeof setting === 'string' ? setting : setting.id;
        if (seen.has(id)) problems.push(`${at}: detector ${id} is listed twice`);
        seen.add(id);
        detectors!.push(setting);
      });
    }
  }
  if (problems.length > 0) throw new DlpConfigInvalid(problems);
  return { ...(actions === undefined ? {} : { actions }), ...(detectors === undefined ? {} : { detectors }) };
}

const KNOWN = DETECTORS.map((d) => d.id);

function parseDetectorSetting(item: unknown, at: string, problems: string[]): PatternDetectorId | DetectorSetting | null {
  if (typeof item === 'string') {
    if (!DETECTORS_BY_ID.has(item)) {
      problems.push(`${at}: unknown detector (expected one of ${list(KNOWN)})`);
      return null;
    }
    return item as PatternDetectorId;
  }
  if (!isRecord(item)) {
    problems.push(`${at}: must be a detector name or { id, classification?, action? }`);
    return null;
  }
  const before = problems.length;
  for (const key of Object.keys(item)) {
    if (key !== 'id' && key !== 'classification' && key !== 'action') problems.push(`${at}.${key}: unknown key (expected id, classification, action)`);
  }
  if (typeof item.id !== 'string' || !DETECTORS_BY_ID.has(item.id)) problems.push(`${at}.id: unknown detector (expected one of ${list(KNOWN)})`);
  if (item.classification !== undefined && !(CLASSIFICATIONS as readonly unknown[]).includes(item.classification)) {
    problems.push(`${at}.classification: must be one of ${list(CLASSIFICATIONS)}`);
  }
  if (item.action !== undefined && !(DLP_ACTIONS as readonly unknown[]).includes(item.action)) {
    problems.push(`${at}.action: must be one of ${list(DLP_ACTIONS)}`);
  }
  if (problems.length > before) return null;
  return {
    id: item.id as PatternDetectorId,
    ...(item.classification === undefined ? {} : { classification: item.classification as Classification }),
    ...(item.action === undefined ? {} : { action: item.action as DlpAction }),
  };
}

/** Resolves a configuration (default: every detector, DEFAULT_ACTIONS) into the policy the scanner runs. */
export function createDlpPolicy(config: DlpConfig = {}): DlpPolicy {
  const checked = parseDlpConfig(config);
  const actions: Record<Classification, DlpAction> = { ...DEFAULT_ACTIONS, ...checked.actions };
  const settings: readonly (PatternDetectorId | DetectorSetting)[] = checked.detectors ?? KNOWN;
  const byId = new Map<string, DetectorSetting>();
  for (const s of settings) byId.set(typeof s === 'string' ? s : s.id, typeof s === 'string' ? { id: s } : s);
  // Run in the canonical order so redaction labels do not depend on how the list was written.
  const detectors: EnabledDetector[] = [];
  for (const detector of DETECTORS) {
    const s = byId.get(detector.id);
    if (s === undefined) continue;
    const classification = s.classification ?? detector.classification;
    detectors.push({ detector, classification, action: s.action ?? actions[classification] });
  }
  return { detectors, actions };
}
