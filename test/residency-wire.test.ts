/**
 * The PostgreSQL wire protocol on a federated node routes governed queries through the
 * residency node like /v1/query does. A wire connection authenticates with a connection
 * password only this node can verify, so a query that would have to travel is refused,
 * saying why, with one audited entry, and nothing is sent to another region.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createScenario, SCENARIO_KEYS } from '../src/residency/scenario.ts';
import { startNode, type GatehouseNode, type NodeHttp } from '../src/node/start.ts';
import type { WireServer } from '../src/wire/server.ts';

describe('the wire protocol on a federated node', () => {
  let dir: string;
  let node: GatehouseNode<NodeHttp | null, WireServer>;
  let password: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-residency-wire-'));
    const { eu } = await createScenario(dir);
    node = await startNode({ workspaceDir: eu.wsDir, auditDir: join(eu.wsDir, 'audit'), demo: true, engineOptions: { poolSize: 1 }, wire: { port: 0 }, federation: { listen: { port: 0 } } });
    const issued = await node.gatehouse.issueConnectionPassword({ credential: SCENARIO_KEYS.ursula, source: '127.0.0.1', channel: 'test' });
    password = issued.password;
  });

  after(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ host: '127.0.0.1', port: node.wire.port, user: 'ursula', password, database: 'gatehouse', options: '-c gatehouse.purpose=research' });
    await c.connect();
    return c;
  };

  test('a query about this region\'s data is answered over the wire, routed locally', async () => {
    const c = await connect();
    try {
      const r = await c.query('SELECT patient_id, condition FROM eu_patients LIMIT 3');
      assert.equal(r.rows.length, 3);
    } finally {
      await c.end();
    }
  });

  test('a query that would travel to another region is refused on a wire connection, saying why, with one entry and nothing sent', async () => {
    const c = await connect();
    let written: number;
    try {
      await node.audit.refresh();
      const size = node.audit.size;
      await assert.rejects(c.query('SELECT condition, count(*) AS n FROM patients GROUP BY condition'), (e: Error) => {
        assert.match(e.message, /wire connection password or client certificate is verified only by the node it was issued on/);
        return true;
      });
      await node.audit.refresh();
      written = node.audit.size - size;
    } finally {
      await c.end();
    }
    assert.equal(written, 1, 'one entry for the refused query');
    const hits = await node.audit.search({ action: 'query' });
    const last = hits[hits.length - 1]!.entry;
    assert.equal(last.errorCode, 'AUTH_REQUIRED');
    assert.equal(last.channel, 'pgwire');
    assert.ok(last.reasons.some((r) => r.startsWith('request ')) && last.reasons.some((r) => r.includes('split into per-region partial aggregates')), JSON.stringify(last.reasons));
  });
});
