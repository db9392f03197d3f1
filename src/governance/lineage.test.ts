import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ArtefactMeta } from '../keys/artefacts.ts';
import type { DatasetDef, Workspace } from '../model/types.ts';
import { lineage, strictest } from './lineage.ts';

const col = (name: string, classification: DatasetDef['classification']) => ({ name, type: 'VARCHAR', classification, tags: [], mask: null, description: null }) as unknown as DatasetDef['columns'][number];
const ds = (name: string, classification: DatasetDef['classification'], columns: DatasetDef['columns']): DatasetDef => ({ name, classification, columns } as unknown as DatasetDef);
const ws = { datasets: new Map([
  ['visits', ds('visits', 'internal', [col('ward', 'internal'), col('diagnosis', 'regulated')])],
  ['wards', ds('wards', 'public', [col('ward', 'public')])],
]) } as unknown as Workspace;

const art = (id: string, labels: Record<string, string>, extra: Partial<ArtefactMeta> = {}): ArtefactMeta => ({
  id, kind: 'result', owner: 'ivan', labels, mediaType: 'application/json', retainUntil: null, keyId: 'k', sha256: '', ciphertextSha256: '', bytes: 1,
  createdAt: '2026-11-01T00:00:00.000Z', legalHold: null, destroyedAt: null, destroyReason: null, ...extra,
} as ArtefactMeta);

test('a derivative inherits the most restrictive classification of its sources, columns included', () => {
  assert.equal(strictest(ws, ['wards']), 'public');
  assert.equal(strictest(ws, ['wards', 'visits']), 'regulated', 'a regulated column makes the derivative regulated');
  assert.equal(strictest(ws, ['gone']), 'regulated', 'an unknown source fails closed');
});

test('a derivative inherits the shortest retention and its agreement, and the map shows dataset → derivative → partner', () => {
  const rules = [{ kind: 'result', scope: 'visits', days: 30 }, { kind: 'result', scope: '*', days: 90 }, { kind: 'export', scope: 'visits', days: 1 }] as never;
  const l = lineage(ws, [art('r1', { datasets: 'visits,wards', agreement: 'agr_1', org: 'keystone' }, { retainUntil: '2027-01-01T00:00:00.000Z' }), art('r2', { dataset: 'wards' })], rules);
  const [r1, r2] = l.derivatives;
  assert.deepEqual([r1!.classification, r1!.agreement, r1!.retainUntil, r1!.sources], ['regulated', 'agr_1', '2026-12-01T00:00:00.000Z', ['visits', 'wards']]);
  assert.deepEqual([r2!.classification, r2!.agreement, r2!.retainUntil], ['public', null, '2027-01-30T00:00:00.000Z']);
  assert.deepEqual(l.edges.filter((e) => e.to === 'derivative:r1' || e.from === 'derivative:r1').map((e) => `${e.from}>${e.to}`), ['dataset:visits>derivative:r1', 'dataset:wards>derivative:r1', 'derivative:r1>partner:keystone']);
});
