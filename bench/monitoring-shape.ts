/**
 * `npx node bench/monitoring-shape.ts [--quick]`
 *
 * What the request facts (issue 21 follow-up: the SQL's literal-free shape, handed over by
 * the kernel's record hook) add to monitoring's inline cost. The same synthetic stream as
 * bench/monitoring.ts, observed by two monitors interleaved in one loop: one given only the
 * audit entry, one given the entry and a realistic SQL text of 150–250 characters (the shape
 * is normalised and hashed inline). Per-call performance.now(); p50 and p99; goal ≤ 50 µs p50.
 */
import { Monitor } from '../src/monitoring/monitor.ts';
import { SYNTHETIC_CONFIG, syntheticStream } from '../src/monitoring/synthetic.ts';

const quick = process.argv.includes('--quick');
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

const stream = syntheticStream(7, { days: quick ? 4 : 8, analysts: quick ? 28 : 40 });
let now = new Date(0);
const orgOf = (p: string) => stream.principals.get(p) ?? null;
const entryOnly = new Monitor({ config: SYNTHETIC_CONFIG, orgOf, now: () => now });
const withSql = new Monitor({ config: SYNTHETIC_CONFIG, orgOf, now: () => now });
const sqlOf = (i: number): string => `SELECT c.claim_id, c.payer, c.amount_billed, p.region FROM claims c JOIN patients p ON p.patient_id = c.patient_id WHERE c.claim_id BETWEEN ${i} AND ${i + 40} AND c.payer IN ('Acme', 'Keystone', 'North ${i % 7}') ORDER BY c.claim_id LIMIT 100`;
const half = Math.floor(stream.records.length / 2);
for (let i = 0; i < half; i++) {
  const { record, auditId } = stream.records[i]!;
  now = new Date(record.time);
  entryOnly.observe(record, auditId);
  withSql.observe(record, auditId, { sql: sqlOf(i) });
}
const a: number[] = [];
const b: number[] = [];
for (let round = 0; round < (quick ? 1 : 3); round++) {
  for (let i = half; i < stream.records.length; i++) {
    const { record, auditId } = stream.records[i]!;
    now = new Date(record.time);
    const sql = sqlOf(i);
    for (const m of (i + round) % 2 === 0 ? [entryOnly, withSql] : [withSql, entryOnly]) {
      const t0 = performance.now();
      if (m === withSql) m.observe(record, auditId, { sql }); else m.observe(record, auditId);
      (m === entryOnly ? a : b).push((performance.now() - t0) * 1000);
    }
  }
}
const us = (x: number): string => `${x.toFixed(1)} µs`;
console.log(`monitoring inline cost per request (${a.length} requests after ${half} warm-up)`);
console.log(`  entry only            p50 ${us(quantile(a, 0.5))}  p99 ${us(quantile(a, 0.99))}`);
console.log(`  entry + SQL shape     p50 ${us(quantile(b, 0.5))}  p99 ${us(quantile(b, 0.99))}`);
console.log(`  goal ≤ 50 µs at p50: ${quantile(b, 0.5) <= 50 ? 'met' : 'NOT met'}`);
