/**
 * HTTP routes for code-to-data jobs and key release, each with a JSON schema (input checked,
 * documented in /openapi.json through the app's onRoute hook). Every route calls one façade
 * method, which authenticates, decides and audits: no second way in.
 *
 *   POST /v1/jobs/signers            register a partner signing key (data owners)
 *   POST /v1/jobs                    submit a signed bundle
 *   POST /v1/jobs/mock               run a bundle on generated mock rows
 *   POST /v1/jobs/mock/publish       publish mock rows of datasets for offline development (data owners)
 *   GET  /v1/jobs                    jobs you may see
 *   GET  /v1/jobs/:id                one job, its approvals and runs
 *   POST /v1/jobs/:id/approve        approve the job's code hash (data owners)
 *   POST /v1/jobs/:id/run            run an approved job (outputs are held for the airlock)
 *   GET  /v1/jobs/runs/:runId/logs   a real run's logs (data owners)
 *   POST /v1/attestation/challenge   a single-use nonce for a job's enclave
 *   POST /v1/attestation/release     evidence in, the dataset key (JWE to the enclave key) out
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ERRORS } from '../errors.ts';
import type { Gatehouse } from '../pipeline/gatehouse.ts';
import { metaOf } from './app.ts';

const errorBody = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, hint: { type: ['string', 'null'] }, reasons: { type: 'array', items: { type: 'string' } } }, required: ['code', 'message'] } },
} as const;
export const ERROR_RESPONSES = Object.fromEntries([...new Set(Object.values(ERRORS).map((e) => e.status))].sort().map((s) => [s, errorBody]));

const id = { type: 'string', minLength: 1, maxLength: 100 } as const;
const hex = (n: number, m = n) => ({ type: 'string', pattern: `^[0-9a-f]{${n},${m}}$` }) as const;
const anyObject = { type: 'object', additionalProperties: true } as const;

function route(summary: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { summary, tags: ['jobs'], security: [{ bearer: [] }], response: { 200: anyObject, ...ERROR_RESPONSES }, ...extra };
}

const bundleSchema = {
  type: 'object', required: ['manifest', 'code', 'signer', 'signature'], additionalProperties: false,
  properties: { manifest: anyObject, code: { type: 'string', minLength: 1, maxLength: 600_000 }, signer: { type: 'string', maxLength: 64 }, signature: { type: 'string', maxLength: 200 } },
} as const;

type P = { Params: { id: string; runId: string } };

export async function registerJobsRoutes(app: FastifyInstance, gatehouse: Gatehouse): Promise<void> {
  app.post('/v1/jobs/signers', { schema: route('Register a partner\'s Ed25519 bundle-signing key (data owners).', { body: { type: 'object', required: ['keyId', 'org', 'publicKeyPem'], additionalProperties: false, properties: { keyId: id, org: id, publicKeyPem: { type: 'string', maxLength: 1000 } } } }) },
    async (r) => gatehouse.addJobSigner(metaOf(r), r.body as { keyId: string; org: string; publicKeyPem: string }));
  app.post('/v1/jobs', { schema: route('Submit a signed code bundle; answers its job id and code hash.', { body: bundleSchema }) },
    async (r) => gatehouse.submitJob(metaOf(r), r.body));
  app.post('/v1/jobs/mock', { schema: route('Run a bundle in the sandbox on generated mock rows (no real data in, so the output comes back).', {
    body: { type: 'object', required: ['manifest', 'code'], additionalProperties: false, properties: { manifest: anyObject, code: { type: 'string', minLength: 1, maxLength: 600_000 }, params: anyObject, rows: { type: 'integer', minimum: 1, maximum: 10_000 }, seed: { type: 'string', maxLength: 100 } } },
  }) }, async (r) => gatehouse.mockJob(metaOf(r), r.body as never));
  app.post('/v1/jobs/mock/publish', { schema: route('Publish mock rows of whole datasets from the catalog declaration, for partners developing offline (data owners).', {
    body: { type: 'object', required: ['datasets'], additionalProperties: false, properties: { datasets: { type: 'array', minItems: 1, maxItems: 50, items: id }, rows: { type: 'integer', minimum: 1, maximum: 100_000 }, seed: { type: 'string', maxLength: 100 } } },
  }) }, async (r) => gatehouse.publishMock(metaOf(r), r.body as { datasets: string[]; rows?: number; seed?: string }));
  app.get('/v1/jobs', { schema: route('The jobs you may see (data owners: all; partners: their own).') }, async (r) => gatehouse.jobStatus(metaOf(r), null));
  app.get<P>('/v1/jobs/:id', { schema: route('One job: manifest, code hash, approvals and runs.', { params: { type: 'object', properties: { id } } }) },
    async (r) => gatehouse.jobStatus(metaOf(r), r.params.id));
  app.post<P>('/v1/jobs/:id/approve', { schema: route('Approve the job\'s code hash for datasets and its purpose, naming the principal it reads as (data owners; never your own job).', {
    params: { type: 'object', properties: { id } },
    body: { type: 'object', required: ['codeHash', 'datasets', 'purpose', 'principal'], additionalProperties: false, properties: { codeHash: hex(64), datasets: { type: 'array', minItems: 1, maxItems: 50, items: id }, purpose: id, principal: id, measurements: { type: 'array', maxItems: 20, items: hex(64, 128) } } },
  }) }, async (r) => gatehouse.approveJob(metaOf(r), { ...(r.body as object), jobId: r.params.id } as never));
  app.post<P>('/v1/jobs/:id/run', { schema: route('Run an approved job; its outputs are held, pinned by hash, for the airlock.', {
    params: { type: 'object', properties: { id } }, body: { type: 'object', additionalProperties: false, properties: { params: anyObject } },
  }) }, async (r: FastifyRequest<P>) => gatehouse.runJob(metaOf(r), { jobId: r.params.id, params: ((r.body ?? {}) as { params?: Record<string, unknown> }).params ?? {} }));
  app.get<P>('/v1/jobs/runs/:runId/logs', { schema: route('The logs of a run on real data (data owners only: a job could log a value).', { params: { type: 'object', properties: { runId: id } } }) },
    async (r) => gatehouse.jobLogs(metaOf(r), r.params.runId));
  app.post('/v1/attestation/challenge', { schema: route('A single-use nonce for the enclave running a job (Trustee KBS `auth`).', {
    body: { type: 'object', required: ['jobId', 'format'], additionalProperties: false, properties: { jobId: id, format: { type: 'string', enum: ['aws-nitro', 'sample'] } } },
  }) }, async (r) => gatehouse.attestChallenge(metaOf(r), r.body as never));
  app.post('/v1/attestation/release', { schema: route('Evidence in; the dataset\'s data key as a JWE to the enclave key out, if Cedar accepts the appraisal.', {
    body: { type: 'object', required: ['challengeId', 'jobId', 'dataset', 'evidence'], additionalProperties: false, properties: { challengeId: id, jobId: id, dataset: id, evidence: { type: 'string', maxLength: 200_000 } } },
  }) }, async (r) => gatehouse.attestRelease(metaOf(r), r.body as never));
}
