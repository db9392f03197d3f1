/**
 * An attacker holding a valid API key tries spellings of it that a lenient parser would
 * read as the same key: whitespace before, after or inside the Authorization value, in
 * ASCII and in Unicode (JavaScript's \s also matches U+00A0 and U+2003). Only the exact key
 * is a credential; every variant is refused as AUTH_INVALID and leaves an audit entry
 * (issue 13, "Identity").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { bearerHeader } from '../src/identity/credentials.ts';
import { codeOf, demoFixture, KEYS, type ServerFixture } from './helpers/workspace.ts';

let fx: ServerFixture;
const KEY = KEYS.ada;

before(async () => { fx = await demoFixture({ patients: 50, http: true }); });
after(async () => { await fx.close(); });

/** One HTTP/1.1 request written byte for byte (latin1, as a header is on the wire); the status and body. */
function raw(authorization: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(fx.http.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    s.write(Buffer.from(`GET /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`, 'latin1'));
  });
}

/** Variants that reach the application as they were sent (HTTP strips only outer SP/HTAB). */
const ON_THE_WIRE: Record<string, string> = {
  'a trailing non-breaking space': `Bearer ${KEY}\u00a0`,
  'a leading non-breaking space': `Bearer \u00a0${KEY}`,
  'an extra leading space': `Bearer  ${KEY}`,
  'a tab instead of the space': `Bearer\t${KEY}`,
  'a non-breaking space instead of the space': `Bearer\u00a0${KEY}`,
  'a tab inside before a space': `Bearer \t${KEY}`,
  'a space inside the key': `Bearer ${KEY.slice(0, 8)} ${KEY.slice(8)}`,
};

/** Variants an in-process client or a proxy may pass without HTTP's trimming of outer whitespace. */
const IN_PROCESS: Record<string, string> = {
  ...ON_THE_WIRE,
  'a trailing space': `Bearer ${KEY} `,
  'a trailing tab': `Bearer ${KEY}\t`,
  'a trailing em space': `Bearer ${KEY}\u2003`,
  'a trailing line feed': `Bearer ${KEY}\n`,
};

describe('an API key is accepted only exactly as issued', () => {
  it('accepts the exact key', async () => {
    assert.equal((await raw(`Bearer ${KEY}`)).status, 200);
    assert.equal((await fx.http.app.inject({ method: 'GET', url: '/v1/datasets', headers: { authorization: `Bearer ${KEY}` } })).statusCode, 200);
  });

  for (const [what, header] of Object.entries(ON_THE_WIRE)) {
    it(`refuses the key with ${what} over a socket, and audits the refusal`, async () => {
      const before = fx.log.size;
      const r = await raw(header);
      assert.equal(r.status, 401, r.body);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'AUTH_INVALID');
      assert.equal(fx.log.size, before + 1);
      const e = fx.log.leaf(before).entry;
      assert.equal(e.errorCode, 'AUTH_INVALID');
      assert.equal(e.decision, 'deny');
      assert.ok(!JSON.stringify(e).includes(KEY), 'the key never appears in the audit entry');
    });
  }

  it('refuses every whitespace variant that reaches the application unstripped', async () => {
    for (const [what, header] of Object.entries(IN_PROCESS)) {
      const r = await fx.http.app.inject({ method: 'GET', url: '/v1/datasets', headers: { authorization: header } });
      assert.equal(r.statusCode, 401, what);
      assert.equal((r.json() as { error: { code: string } }).error.code, 'AUTH_INVALID', what);
    }
  });

  it('refuses a key with whitespace given to the pipeline directly (CLI --workspace, tests)', async () => {
    for (const k of [`${KEY} `, ` ${KEY}`, `${KEY}\t`, `${KEY}\u00a0`, `\u00a0${KEY}`]) {
      assert.equal(await codeOf(fx.gh.query({ credential: k, sql: 'SELECT 1', purpose: 'operations', source: '127.0.0.1', channel: 'test' })), 'AUTH_INVALID', JSON.stringify(k));
    }
  });

  it('refuses to send a --key with whitespace rather than let the HTTP client trim it', () => {
    assert.equal(bearerHeader(KEY), `Bearer ${KEY}`);
    for (const k of [`${KEY} `, ` ${KEY}`, `${KEY}\t`, `${KEY}\n`, `${KEY}\u00a0`]) assert.throws(() => bearerHeader(k), { code: 'AUTH_INVALID' });
  });
});
