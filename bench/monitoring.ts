/**
 * `npx node bench/monitoring.ts [--quick] [--eval]`
 *
 * Cost: the inline work monitoring adds to every request — Monitor.observe on a recorded
 * audit entry (event, score, the five window rules, baselines, live tallies) — on a
 * synthetic stream of realistic entries after the baselines are warm. Per-call timings with
 * performance.now(); p50 and p99 over every call; the goal is ≤ 50 µs at p50 (issue 21).
 * Interleaved in the same loop, the same calls with a live SSE subscriber attached, so the
 * two figures share the machine's load.
 *
 * --eval: precision and recall of every rule on synthetic streams with injected anomalies
 * (src/monitoring/synthetic.ts), as the Markdown table docs/monitoring.md quotes.
 */
import { Monitor } from '../src/monitoring/monitor.ts';
import { evaluate, SYNTHETIC_CONFIG, syntheticStream } from '../src/monitoring/synthetic.ts';

const quick = process.argv.includes('--quick');

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function cost(): void {
  const stream = syntheticStream(7, { days: quick ? 4 : 8, analysts: quick ? 28 : 40 });
  const config = SYNTHETIC_CONFIG;
  let now = new Date(0);
  const plain = new Monitor({ config, orgOf: (p) => stream.principals.get(p) ?? null, now: () => now });
  const watched = new Monitor({ config, orgOf: (p) => stream.principals.get(p) ?? null, now: () => now });
  let delivered = 0;
  watched.subscribe(() => { delivered++; });
  // Warm: the first half builds baselines (and JIT-compiles the paths).
  const half = Math.floor(stream.records.length / 2);
  for (let i = 0; i < half; i++) {
    const { record, auditId } = stream.records[i]!;
    now = new Date(record.time);
    plain.observe(record, auditId);
    watched.observe(record, auditId);
  }
  const a: number[] = [];
  const b: number[] = [];
  const rounds = quick ? 1 : 3;
  for (let round = 0; round < rounds; round++) {
    for (let i = half; i < stream.records.length; i++) {
      const { record, auditId } = stream.records[i]!;
      now = new Date(record.time);
      const first = (i + round) % 2 === 0;
      for (const m of first ? [plain, watched] : [watched, plain]) {
        const t0 = performance.now();
        m.observe(record, auditId);
        (m === plain ? a : b).push((performance.now() - t0) * 1000);
      }
    }
  }
  const us = (x: number): string => `${x.toFixed(1)} µs`;
  console.log(`monitoring inline cost per request (${a.length} requests after ${half} warm-up, ${stream.principals.size} principals)`);
  console.log(`  observe                  p50 ${us(quantile(a, 0.5))}  p99 ${us(quantile(a, 0.99))}`);
  console.log(`  observe + SSE subscriber p50 ${us(quantile(b, 0.5))}  p99 ${us(quantile(b, 0.99))}  (${delivered} events delivered)`);
  console.log(`  goal ≤ 50 µs at p50: ${quantile(a, 0.5) <= 50 && quantile(b, 0.5) <= 50 ? 'met' : 'NOT met'}`);
}

function quality(): void {
  const seeds = quick ? [21] : [21, 22, 23, 24, 25];
  const totals = new Map<string, { injected: number; detected: number; alerts: number; tp: number }>();
  for (const seed of seeds) {
    for (const q of evaluate(syntheticStream(seed))) {
      const t = totals.get(q.rule) ?? { injected: 0, detected: 0, alerts: 0, tp: 0 };
      t.injected += q.injected; t.detected += q.detected; t.alerts += q.alerts; t.tp += q.truePositives;
      totals.set(q.rule, t);
    }
  }
  const pct = (n: number, d: number): string => (d === 0 ? '—' : `${Math.round((n / d) * 100)} %`);
  console.log(`\nprecision and recall per rule, seeds ${seeds.join(', ')} (6 days × 24 analysts each)\n`);
  console.log('| rule | injected | detected | detections | of which during an incident | precision | recall |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [rule, t] of totals) console.log(`| ${rule} | ${t.injected} | ${t.detected} | ${t.alerts} | ${t.tp} | ${pct(t.tp, t.alerts)} | ${pct(t.detected, t.injected)} |`);
}

cost();
if (process.argv.includes('--eval')) quality();
