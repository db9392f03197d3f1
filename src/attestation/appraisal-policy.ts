/**
 * The appraisal: Cedar decides whether verified claims may receive a dataset's key, the way
 * Trustee's KBS hands its attestation-service results to a resource policy. Each refusal
 * condition is its own named `forbid`, so the decision lists exactly which ones failed; the
 * one `permit` admits the rest. Default deny holds: a Cedar error or an unknown format denies.
 *
 *   principal  Job::"<job id>"
 *   action     Action::"release_key"
 *   resource   Dataset::"<name>" { approvedMeasurements: Set<String>, approvedCodeHashes: Set<String> }
 *   context    { format, testMode, debug, ageSeconds, maxAgeSeconds, measurement, codeHash, bindingValid }
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

export interface AppraisalInput {
  readonly jobId: string;
  readonly dataset: string;
  readonly format: string;
  readonly testMode: boolean;
  readonly debug: boolean;
  readonly ageSeconds: number;
  readonly maxAgeSeconds: number;
  readonly measurement: string;
  readonly codeHash: string;
  readonly bindingValid: boolean;
  readonly approvedMeasurements: readonly string[];
  readonly approvedCodeHashes: readonly string[];
}

export interface AppraisalDecision {
  readonly allowed: boolean;
  /** Ids of the forbids that refused (empty when allowed). */
  readonly refusedBy: readonly string[];
  readonly reasons: readonly string[];
}

const HEAD = 'principal is Job, action == Action::"release_key", resource is Dataset';

export const APPRAISAL_POLICIES: Readonly<Record<string, { text: string; reason: string }>> = {
  'release-key': { text: `permit (${HEAD});`, reason: '' },
  'debug-mode': { text: `forbid (${HEAD}) when { context.debug };`, reason: 'the enclave runs in debug mode (its memory is readable by the host)' },
  'stale-evidence': { text: `forbid (${HEAD}) when { context.ageSeconds > context.maxAgeSeconds || context.ageSeconds < -60 };`, reason: 'the evidence is not fresh' },
  'unapproved-measurement': { text: `forbid (${HEAD}) unless { resource.approvedMeasurements.contains(context.measurement) };`, reason: 'the enclave measurement is not approved for this dataset' },
  'unapproved-code': { text: `forbid (${HEAD}) unless { resource.approvedCodeHashes.contains(context.codeHash) };`, reason: 'the job code hash is not approved for this dataset' },
  'sample-outside-test': { text: `forbid (${HEAD}) when { context.format == "sample" && !context.testMode };`, reason: 'the sample TEE is accepted in test mode only' },
  'unbound-evidence': { text: `forbid (${HEAD}) unless { context.bindingValid };`, reason: 'the evidence is not bound to this job, code hash and enclave key' },
};

export function appraise(input: AppraisalInput): AppraisalDecision {
  const staticPolicies = Object.fromEntries(Object.entries(APPRAISAL_POLICIES).map(([id, p]) => [id, p.text]));
  const answer = cedar.isAuthorized({
    principal: { type: 'Job', id: input.jobId },
    action: { type: 'Action', id: 'release_key' },
    resource: { type: 'Dataset', id: input.dataset },
    context: {
      format: input.format, testMode: input.testMode, debug: input.debug,
      ageSeconds: Math.trunc(input.ageSeconds), maxAgeSeconds: Math.trunc(input.maxAgeSeconds),
      measurement: input.measurement, codeHash: input.codeHash, bindingValid: input.bindingValid,
    },
    policies: { staticPolicies },
    entities: [
      { uid: { type: 'Job', id: input.jobId }, attrs: {}, parents: [] },
      { uid: { type: 'Dataset', id: input.dataset }, attrs: { approvedMeasurements: [...input.approvedMeasurements], approvedCodeHashes: [...input.approvedCodeHashes] }, parents: [] },
    ],
  });
  if (answer.type === 'failure') return { allowed: false, refusedBy: ['evaluation-error'], reasons: ['the appraisal could not be evaluated (default deny)'] };
  const { decision, diagnostics } = answer.response;
  if (diagnostics.errors.length > 0) return { allowed: false, refusedBy: ['evaluation-error'], reasons: ['the appraisal could not be evaluated (default deny)'] };
  if (decision === 'allow') return { allowed: true, refusedBy: [], reasons: [] };
  const refusedBy = diagnostics.reason.filter((id) => id !== 'release-key');
  return { allowed: false, refusedBy, reasons: refusedBy.map((id) => APPRAISAL_POLICIES[id]?.reason ?? id) };
}
