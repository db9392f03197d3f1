/**
 * A job's code bundle: a JavaScript module and the manifest that says what it reads, why,
 * with which parameters and what it returns, signed by the partner (Ed25519, RFC 8032).
 *
 *   { "manifest": { name, version, purpose, datasets, inputs, parameters, outputs, limits?, grants? },
 *     "code": "<ES module source>",
 *     "signer": "<key id>", "signature": "<base64url Ed25519 over the code hash>" }
 *
 * The **code hash** is SHA-256 over the RFC 8785 canonical JSON of `{ manifest, code }`, so a
 * changed byte of the module *or* of the manifest (an extra input query, a larger limit) is a
 * different hash and needs a new approval. The signature covers the code hash prefixed with a
 * domain label, so a partner's key signs job bundles and nothing else through this path.
 *
 * Inputs are SQL the governed query path runs as the job's own principal (decided, masked,
 * capped, audited); the job only ever sees their released rows.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalize } from '../audit/canonical.ts';
import { GatehouseError } from '../errors.ts';
import type { SandboxGrants, SandboxLimits } from './sandbox/protocol.ts';

export interface InputSpec {
  readonly dataset: string;
  readonly sql: string;
}

export interface ParameterSpec {
  readonly type: 'number' | 'string' | 'boolean';
  readonly default?: number | string | boolean;
}

export interface OutputSpec {
  /** `table`: an array of flat rows with these columns; `value`: one JSON value. */
  readonly kind: 'table' | 'value';
  readonly columns?: readonly string[];
  /** For tables: the column holding each row's count (disclosure control checks small counts). */
  readonly countColumn?: string;
  /** For tables: a sum column and the column with its largest single contribution (dominance check). */
  readonly dominance?: { readonly sum: string; readonly largest: string };
}

export interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly purpose: string;
  readonly datasets: readonly string[];
  readonly inputs: Readonly<Record<string, InputSpec>>;
  readonly parameters: Readonly<Record<string, ParameterSpec>>;
  readonly outputs: Readonly<Record<string, OutputSpec>>;
  readonly limits?: Partial<SandboxLimits>;
  readonly grants?: Partial<SandboxGrants>;
  /** `javascript` (default): `code` is an ES module; `wasm`: `code` is base64 of a WebAssembly module using the row-bridge ABI (src/jobs/sandbox/wasm-runner.ts). */
  readonly runtime?: 'javascript' | 'wasm';
}

export interface CodeBundle {
  readonly manifest: Manifest;
  readonly code: string;
  readonly signer: string;
  readonly signature: string;
}

const SIGN_LABEL = 'gatehouse.job-bundle.v1:';
const NAME = /^[a-z][a-z0-9_-]{0,62}$/;
export const MAX_CODE_BYTES = 512 * 1024;

function invalid(message: string): GatehouseError {
  return new GatehouseError('REQUEST_INVALID', message, { detail: 'JOB_BUNDLE_INVALID', hint: 'fix the bundle manifest (docs/code-to-data.md) and sign it again' });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates the manifest shape; names are identifiers so they are safe as keys and in messages. */
export function validateManifest(m: unknown): Manifest {
  if (!isRecord(m)) throw invalid('the manifest must be an object');
  const str = (k: string) => { const v = m[k]; if (typeof v !== 'string' || v.length === 0 || v.length > 200) throw invalid(`manifest.${k} must be a non-empty string`); return v; };
  const name = str('name'); str('version'); str('purpose');
  if (!NAME.test(name)) throw invalid('manifest.name must be a lowercase identifier');
  if (!Array.isArray(m.datasets) || m.datasets.length === 0 || !m.datasets.every((d) => typeof d === 'string' && NAME.test(d))) throw invalid('manifest.datasets must list the datasets the job reads');
  if (!isRecord(m.inputs) || Object.keys(m.inputs).length === 0) throw invalid('manifest.inputs must name at least one input query');
  for (const [k, v] of Object.entries(m.inputs)) {
    if (!NAME.test(k) || !isRecord(v) || typeof v.dataset !== 'string' || typeof v.sql !== 'string' || v.sql.length > 20_000) throw invalid(`manifest.inputs.${NAME.test(k) ? k : '?'} must be { dataset, sql }`);
    if (!(m.datasets as string[]).includes(v.dataset)) throw invalid(`manifest.inputs.${k} reads a dataset the manifest does not declare`);
  }
  if (!isRecord(m.parameters)) throw invalid('manifest.parameters must be an object (it may be empty)');
  for (const [k, v] of Object.entries(m.parameters)) {
    if (!NAME.test(k) || !isRecord(v) || !['number', 'string', 'boolean'].includes(v.type as string)) throw invalid(`manifest.parameters.${NAME.test(k) ? k : '?'} must be { type: number|string|boolean }`);
  }
  if (!isRecord(m.outputs) || Object.keys(m.outputs).length === 0) throw invalid('manifest.outputs must name at least one expected output');
  for (const [k, v] of Object.entries(m.outputs)) {
    if (!NAME.test(k) || !isRecord(v) || (v.kind !== 'table' && v.kind !== 'value')) throw invalid(`manifest.outputs.${NAME.test(k) ? k : '?'} must be { kind: table|value }`);
    if (v.kind === 'table' && (!Array.isArray(v.columns) || v.columns.length === 0 || !v.columns.every((c) => typeof c === 'string' && NAME.test(c)))) throw invalid(`manifest.outputs.${k} must list its columns`);
  }
  if (m.limits !== undefined && !isRecord(m.limits)) throw invalid('manifest.limits must be an object');
  if (m.grants !== undefined && !isRecord(m.grants)) throw invalid('manifest.grants must be an object');
  if (m.runtime !== undefined && m.runtime !== 'javascript' && m.runtime !== 'wasm') throw invalid('manifest.runtime must be javascript or wasm');
  return m as unknown as Manifest;
}

/** SHA-256 (hex) of the canonical `{ manifest, code }`: what the owner approves. */
export function codeHash(manifest: Manifest, code: string): string {
  return createHash('sha256').update(canonicalize({ manifest, code })).digest('hex');
}

export function signBundle(manifest: Manifest, code: string, signer: string, privateKey: KeyObject): CodeBundle {
  const hash = codeHash(validateManifest(manifest), code);
  return { manifest, code, signer, signature: sign(null, Buffer.from(SIGN_LABEL + hash), privateKey).toString('base64url') };
}

/** Validates a bundle and its signature by the registered key; returns its code hash. */
export function verifyBundle(bundle: unknown, signerKey: (keyId: string) => string | null): { bundle: CodeBundle; codeHash: string } {
  if (!isRecord(bundle)) throw invalid('the bundle must be an object { manifest, code, signer, signature }');
  const manifest = validateManifest(bundle.manifest);
  if (typeof bundle.code !== 'string' || bundle.code.length === 0 || Buffer.byteLength(bundle.code) > MAX_CODE_BYTES) throw invalid(`the bundle code must be a JavaScript module of at most ${MAX_CODE_BYTES} bytes`);
  if (typeof bundle.signer !== 'string' || typeof bundle.signature !== 'string') throw invalid('the bundle must carry signer and signature');
  const pem = signerKey(bundle.signer);
  if (pem === null) throw new GatehouseError('POLICY_DENIED', 'the bundle is signed by a key this node does not know', { detail: 'JOB_UNKNOWN_SIGNER', hint: 'ask the data owner to register your signing key (gatehouse job signer add)' });
  const hash = codeHash(manifest, bundle.code);
  let ok = false;
  try {
    ok = verify(null, Buffer.from(SIGN_LABEL + hash), createPublicKey(pem), Buffer.from(bundle.signature, 'base64url'));
  } catch {
    ok = false;
  }
  if (!ok) throw new GatehouseError('POLICY_DENIED', 'the bundle signature does not verify with the signer\'s registered key', { detail: 'JOB_BAD_SIGNATURE', hint: 'sign the exact bundle you submit; any change to code or manifest needs a new signature' });
  return { bundle: { manifest, code: bundle.code, signer: bundle.signer, signature: bundle.signature }, codeHash: hash };
}
