/**
 * The log explorer's time-window search starts where the window can first match
 * (seekTime in src/audit/http.ts) instead of at entry 0 — and must never skip an entry in
 * the window, even when entries arrive slightly out of time order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { seekTime, TIME_ORDER_SKEW_MS } from '../src/audit/http.ts';

const T0 = Date.UTC(2026, 4, 1);
function logOf(times: readonly number[]) {
  return { size: times.length, leaf: (i: number) => ({ entry: { time: new Date(times[i]!).toISOString() } }) } as never;
}

describe('seeking the first entry of a time window', () => {
  it('skips the part of the log that is entirely before the window', () => {
    const times = Array.from({ length: 100_000 }, (_, i) => T0 + i * 1000);
    const from = new Date(T0 + 90_000 * 1000).toISOString();
    const start = seekTime(logOf(times), from);
    assert.ok(start > 80_000, `started at ${start}`);
    assert.ok(start <= 90_000, 'the first entry of the window is not skipped');
  });

  it('never skips an in-window entry that arrived after later-stamped ones (skew within the margin)', () => {
    // Requests stamped when they began and appended when they ended: out of order by up to 5 minutes.
    let seed = 7;
    const rnd = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const times = Array.from({ length: 20_000 }, (_, i) => T0 + i * 1000 - Math.floor(rnd() * 300_000));
    for (const offset of [1_000, 5_000, 12_345, 19_000]) {
      const from = T0 + offset * 1000;
      const start = seekTime(logOf(times), new Date(from).toISOString());
      const firstInWindow = times.findIndex((t) => t >= from);
      assert.ok(firstInWindow >= 0 && start <= firstInWindow, `from +${offset}s: start ${start} ≤ first match ${firstInWindow}`);
    }
    assert.ok(TIME_ORDER_SKEW_MS >= 300_000);
  });

  it('keeps an explicit fromIndex when it is already further on', () => {
    const times = Array.from({ length: 1000 }, (_, i) => T0 + i * 1000);
    assert.equal(seekTime(logOf(times), new Date(T0).toISOString(), 700), 700);
    assert.equal(seekTime(logOf(times), 'not a time', 5), 5);
  });
});
