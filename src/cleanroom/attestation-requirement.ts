/**
 * `compute.requireAttestation`: a collaboration setting that makes every contributing member
 * release its columns only to a compute node that proves, with fresh TEE evidence, which
 * engine image it runs (docs/cleanrooms.md#attested-compute-node). It names
 *
 *   - the evidence format: `aws-nitro` (AWS Nitro Enclaves attestation documents) or `sample`
 *     (the local sandbox attester, a software TEE that members accept in test mode only);
 *   - the accepted measurements (Nitro PCR0; for the local sandbox attester, the sandbox
 *     measurement of compute-attester.ts);
 *   - further PCRs that must hold exactly (Nitro PCR1 kernel, PCR2 application, PCR8 signing
 *     certificate: AWS Nitro Enclaves User Guide, "Where to get an enclave's measurements");
 *   - how old the evidence may be (seconds, at most 300 as the key broker's default).
 *
 * The setting is fixed when the collaboration is created: a member refuses any later
 * version that changes it (service.ts #acceptVersion), so a coordinator cannot lift the
 * requirement after members contributed under it.
 */
import type { TeeFormat } from '../attestation/types.ts';
import { CleanroomError } from './errors.ts';

export interface AttestationRequirement {
  readonly format: TeeFormat;
  /** Accepted enclave measurements, lowercase hex (Nitro: PCR0, SHA-384). */
  readonly measurements: readonly string[];
  /** PCR index → lowercase hex that the evidence must report exactly. */
  readonly pcrs: Readonly<Record<string, string>>;
  readonly maxAgeSeconds: number;
}

export interface ComputeSettings {
  readonly requireAttestation: AttestationRequirement | null;
}

const HEX = /^[0-9a-f]{64,128}$/;

function invalid(message: string): never {
  throw new CleanroomError('CLEANROOM_DEFINITION_INVALID', message, 'fix compute.requireAttestation as the message says (docs/cleanrooms.md#attested-compute-node)');
}

/** Validates the setting as given at creation; null when the collaboration requires no attestation. */
export function parseComputeSettings(raw: unknown): ComputeSettings {
  if (raw === undefined || raw === null) return { requireAttestation: null };
  if (typeof raw !== 'object' || Array.isArray(raw)) invalid('compute is an object: { requireAttestation: { format, measurements, pcrs?, maxAgeSeconds? } }');
  const r = (raw as { requireAttestation?: unknown }).requireAttestation;
  if (r === undefined || r === null) return { requireAttestation: null };
  if (typeof r !== 'object' || Array.isArray(r)) invalid('compute.requireAttestation is an object');
  const a = r as Record<string, unknown>;
  if (a.format !== 'aws-nitro' && a.format !== 'sample') invalid('compute.requireAttestation.format must be aws-nitro or sample');
  const m = a.measurements;
  if (!Array.isArray(m) || m.length === 0 || m.length > 20 || m.some((x) => typeof x !== 'string' || !HEX.test(x.toLowerCase()))) {
    invalid('compute.requireAttestation.measurements must list 1 to 20 measurements as hex (Nitro PCR0 is 96 hex digits)');
  }
  const pcrs: Record<string, string> = {};
  if (a.pcrs !== undefined) {
    if (typeof a.pcrs !== 'object' || a.pcrs === null || Array.isArray(a.pcrs)) invalid('compute.requireAttestation.pcrs maps a PCR index (0-31) to its hex value');
    for (const [k, v] of Object.entries(a.pcrs as Record<string, unknown>)) {
      if (!/^(?:[0-9]|[12][0-9]|3[01])$/.test(k) || typeof v !== 'string' || !HEX.test(v.toLowerCase())) invalid(`compute.requireAttestation.pcrs["${k}"] must be a PCR index 0-31 with a hex value`);
      pcrs[k] = (v as string).toLowerCase();
    }
  }
  const age = a.maxAgeSeconds ?? 300;
  if (typeof age !== 'number' || !Number.isInteger(age) || age < 1 || age > 300) invalid('compute.requireAttestation.maxAgeSeconds must be a whole number from 1 to 300');
  return { requireAttestation: { format: a.format, measurements: (m as string[]).map((x) => x.toLowerCase()), pcrs, maxAgeSeconds: age as number } };
}
