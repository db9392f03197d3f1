import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fiellerInterval } from './ratio-interval.ts';
import { quantileWithInterval } from './quantile-posterior.ts';

describe('ratio (mean) interval by Fieller', () => {
  it('is the delta-method interval in quadrature when the count is exact', () => {
    const [lo, hi] = fiellerInterval(5000, 100, 196, 0, null)!;
    assert.ok(Math.abs(lo - (50 - 1.959963984540054 * 1.96)) < 1e-9 && Math.abs(hi - (50 + 1.959963984540054 * 1.96)) < 1e-9);
  });

  it('widens to the declared bounds when the noisy count cannot be told from zero and both rays of the set meet them', () => {
    assert.deepEqual(fiellerInterval(300, 5, 100, 50, [-1000, 1000]), [-1000, 1000]);
  });

  it('keeps the one ray of an unbounded Fieller set that meets the declared bounds instead of the whole range', () => {
    // c = 10 ± 6 cannot be told from 0 (a < 0): Fieller's set is (−∞, r₁] ∪ [r₂, ∞) with r₁ < 0 < r₂ < 1000.
    const [s, c, sdS, sdC, z] = [8000, 10, 500, 6, 1.959963984540054];
    const iv = fiellerInterval(s, c, sdS, sdC, [0, 1000])!;
    const inSet = (mu: number): boolean => Math.abs(s - mu * c) <= z * Math.sqrt(sdS ** 2 + mu * mu * sdC ** 2);
    assert.ok(iv[0] > 300 && iv[0] < 400 && iv[1] === 1000, String(iv));
    for (let mu = 0; mu <= 1000; mu += 0.5) assert.equal(inSet(mu), mu >= iv[0], `μ = ${mu}`);
  });

  it('is narrower than the old linear sum of half-widths when both are noisy', () => {
    const s = 20000, c = 100, sdS = 500, sdC = 5;
    const [lo, hi] = fiellerInterval(s, c, sdS, sdC, null)!;
    const linear = (1.96 * sdS + (s / c) * 1.96 * sdC) / c;
    assert.ok(hi - lo < 2 * linear * 0.8, `${hi - lo} vs ${2 * linear}`);
  });
});

describe('quantile interval from a noisy histogram', () => {
  it('brackets the quantile of a large, barely noisy histogram within a fraction of a bucket', () => {
    const counts = Array.from({ length: 64 }, () => 100); // uniform over [0, 640]
    const r = quantileWithInterval(counts, [0, 640], 0.5, { kind: 'gaussian', scale: 1 });
    assert.equal(r.value, 320);
    assert.ok(r.interval[0] <= 320 && 320 <= r.interval[1] && r.interval[1] - r.interval[0] < 10, String(r.interval));
  });

  it('still gives an interval, the whole range, when the noisy total is below one', () => {
    const counts = Array.from({ length: 64 }, (_, i) => (i % 2 ? 3 : -3)).map((x, i) => (i === 0 ? x - 1 : x));
    const r = quantileWithInterval(counts, [0, 100], 0.9, { kind: 'gaussian', scale: 8 });
    assert.equal(r.value, null);
    assert.deepEqual(r.interval, [0, 100]);
  });
});
