import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admission } from './admission.ts';
import { GatehouseError } from '../errors.ts';

const code = (p: Promise<unknown>): Promise<string> => p.then(() => 'granted', (e: unknown) => (e instanceof GatehouseError ? e.code : String(e)));

test('a flood from one principal does not starve another: freed slots go round-robin between principals', async () => {
  const a = new Admission({ total: 2, perPrincipal: 10, perOrganisation: 10, queuePerPrincipal: 10, maxWaitMs: 10_000 });
  const running = [await a.acquire('flooder', 'x'), await a.acquire('flooder', 'x')];
  const order: string[] = [];
  const granted: Promise<import('./admission.ts').Slot>[] = [];
  for (let i = 0; i < 5; i++) granted.push(a.acquire('flooder', 'x').then((s) => { order.push('flooder'); return s; }));
  granted.push(a.acquire('analyst', 'y').then((s) => { order.push('analyst'); return s; }));
  running[0]!.release();
  running[1]!.release();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['flooder', 'analyst'], 'the analyst waits one turn, not behind the whole flood');
  // Drain: each release hands the slot to the next waiter, so every one is served.
  for (const g of granted) (await g).release();
  assert.equal(order.length, 6);
  assert.equal(a.running, 0);
});

test('one principal never runs more than perPrincipal queries, one organisation never more than perOrganisation', async () => {
  const a = new Admission({ total: 10, perPrincipal: 1, perOrganisation: 2, queuePerPrincipal: 5, maxWaitMs: 10_000 });
  const s1 = await a.acquire('p1', 'org');
  let second = false;
  const p1b = a.acquire('p1', 'org').then((s) => { second = true; return s; });
  const s2 = await a.acquire('p2', 'org');
  let third = false;
  const p3 = a.acquire('p3', 'org').then((s) => { third = true; return s; });
  await new Promise((r) => setImmediate(r));
  assert.equal(second, false, 'p1 waits for its own running query');
  assert.equal(third, false, 'the organisation is at its limit of 2');
  assert.equal(a.running, 2);
  s1.release();
  const next = await Promise.race([p1b, p3]);
  assert.equal(a.running, 2, 'a slot of the organisation went to one waiting member');
  next.release(); s2.release();
  (await p1b).release(); (await p3).release();
  assert.equal(a.running, 0);
});

test('a full queue is refused at once with RATE_LIMITED and a Retry-After; a long wait is refused too', async () => {
  const a = new Admission({ total: 1, perPrincipal: 1, perOrganisation: 1, queuePerPrincipal: 1, maxWaitMs: 30 });
  const s = await a.acquire('p', null);
  const waiting = code(a.acquire('p', null));
  const refused = a.acquire('p', null).catch((e: unknown) => e);
  const err = await refused;
  assert.ok(err instanceof GatehouseError && err.code === 'RATE_LIMITED' && err.retryAfterSeconds === 1 && err.status === 429);
  assert.equal(await waiting, 'RATE_LIMITED', 'no slot freed within maxWaitMs');
  s.release();
  assert.equal(a.running, 0);
  (await a.acquire('p', null)).release();
});

test('a cancelled waiter leaves the queue and takes no slot', async () => {
  const a = new Admission({ total: 1, perPrincipal: 1, perOrganisation: 1, queuePerPrincipal: 4, maxWaitMs: 10_000 });
  const s = await a.acquire('p', null);
  const ctl = new AbortController();
  const waiting = code(a.acquire('q', null, ctl.signal));
  ctl.abort();
  assert.equal(await waiting, 'QUERY_TIMEOUT');
  s.release();
  assert.equal(a.running, 0, 'the cancelled waiter was not granted the freed slot');
});
