/**
 * How a manifest becomes a sandbox job: its declared limits clamped to the node's maxima,
 * its grants (clock, randomness) as declared and approved with the code hash, and its
 * parameters checked against their declared names and types. Shared by real runs
 * (src/operations/jobs/run.ts) and mock runs (server-side and offline).
 */
import { GatehouseError } from '../errors.ts';
import type { Manifest } from './bundle.ts';
import type { Json, SandboxLimits } from './sandbox/protocol.ts';
import type { SandboxInput, SandboxJob } from './sandbox/worker-process.ts';

/** The most a manifest may ask for; larger requests are clamped. */
export const MAX_LIMITS: SandboxLimits = { memoryBytes: 256 * 1024 * 1024, cpuMs: 60_000, outputBytes: 4 * 1024 * 1024, stackBytes: 1024 * 1024, logBytes: 256 * 1024 };
const DEFAULT_LIMITS: SandboxLimits = { memoryBytes: 64 * 1024 * 1024, cpuMs: 10_000, outputBytes: 1024 * 1024, stackBytes: 256 * 1024, logBytes: 64 * 1024 };

function clampLimits(asked: Partial<SandboxLimits> | undefined): SandboxLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const k of Object.keys(DEFAULT_LIMITS) as (keyof SandboxLimits)[]) {
    const v = asked?.[k];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) out[k] = Math.min(v, MAX_LIMITS[k]);
  }
  return out;
}

/** Parameters as the manifest declares them: declared names only, declared types, defaults filled in. */
export function checkParams(manifest: Manifest, given: Record<string, unknown>): Json {
  const out: Record<string, Json> = {};
  for (const k of Object.keys(given ?? {})) if (!Object.hasOwn(manifest.parameters, k)) throw new GatehouseError('REQUEST_INVALID', `parameter "${k.slice(0, 40)}" is not declared in the manifest`);
  for (const [k, spec] of Object.entries(manifest.parameters)) {
    const v = Object.hasOwn(given ?? {}, k) ? given[k] : spec.default;
    if (v === undefined) throw new GatehouseError('REQUEST_INVALID', `parameter "${k}" is required`);
    if (typeof v !== spec.type) throw new GatehouseError('REQUEST_INVALID', `parameter "${k}" must be a ${spec.type}`);
    out[k] = v as Json;
  }
  return out;
}

export function sandboxOptions(manifest: Manifest, code: string, inputs: Record<string, SandboxInput>, params: Record<string, unknown>): SandboxJob {
  return {
    runtime: manifest.runtime ?? 'javascript',
    code, inputs, params: checkParams(manifest, params), limits: clampLimits(manifest.limits),
    grants: { clock: manifest.grants?.clock === true, randomness: manifest.grants?.randomness === true },
  };
}

