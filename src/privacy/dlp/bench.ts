/**
 * Micro benchmark of the DLP result scanner (not a test): 10,000 rows × 10 columns, median
 * of 15 runs after warm-up. Run with `npx node src/privacy/dlp/bench.ts`.
 *
 * Scenarios: a clean analytic result (no PII), a patient extract full of PII (every row has
 * an e-mail, a phone number and a name, one in ten a card number), both with and without a
 * SensitiveValueIndex of 40,000 catalog values, and the catalog index alone.
 */
import type { CellValue, EngineResult } from '../../model/result.ts';
import { createDlpPolicy } from './policy.ts';
import { scanResult } from './scan.ts';
import { SensitiveValueIndex, type SensitiveValue } from './sensitive-value-index.ts';

const ROWS = 10_000;
const FIRST = ['Amara', 'Kofi', 'Jane', 'Li', 'Mateo', 'Sofia', 'Ravi', 'Ingrid', 'Tomás', 'Yuki'];
const LAST = ['Okafor', 'Mensah', 'Doe', 'Wei', 'García', 'Rossi', 'Patel', 'Larsen', 'Silva', 'Tanaka'];
const NOTES = ['follow-up in 2 weeks', 'BP 120/80, stable', 'referred to cardiology', 'no change since 2023-04-01', 'discharged, v2.1.4 form'];

// Deterministic PRNG so runs are comparable.
let seed = 42;
const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
const pad = (n: number, w: number) => String(n).padStart(w, '0');

function patientRow(i: number): CellValue[] {
  const name = `${FIRST[i % 10]} ${LAST[(i / 10 | 0) % 10]} ${i}`;
  return [
    100_000 + i,
    name,
    `${name.toLowerCase().replace(/\W+/g, '.')}@example.org`,
    `(${200 + rnd(700)}) ${200 + rnd(700)}-${pad(rnd(10_000), 4)}`,
    `19${50 + rnd(50)}-${pad(1 + rnd(12), 2)}-${pad(1 + rnd(28), 2)}`,
    pad(rnd(100_000), 5),
    `E${10 + rnd(80)}.${rnd(10)}`,
    rnd(100_000) / 100,
    i % 10 === 0 ? 'paid with 4242 4242 4242 4242' : NOTES[i % NOTES.length]!,
    i % 7 === 0 ? `203.0.113.${rnd(255)}` : 'active',
  ];
}

function cleanRow(i: number): CellValue[] {
  return [
    i, `region-${i % 12}`, `2024-${pad(1 + (i % 12), 2)}-01`, rnd(5000), rnd(100_000) / 7, `E${10 + rnd(80)}.${rnd(10)}`,
    i % 2 === 0 ? 'F' : 'M', NOTES[i % NOTES.length]!, rnd(90), i % 3 === 0 ? 'suppressed' : 'ok',
  ];
}

function result(row: (i: number) => CellValue[]): EngineResult {
  const rows = Array.from({ length: ROWS }, (_, i) => row(i));
  return { columns: rows[0]!.map((_, c) => ({ name: `c${c}`, type: 'VARCHAR' })), rows };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function measure(label: string, run: () => unknown): void {
  for (let i = 0; i < 5; i++) run();
  const times: number[] = [];
  for (let i = 0; i < 31; i++) {
    const t = performance.now();
    run();
    times.push(performance.now() - t);
  }
  const ms = median(times);
  const cells = ROWS * 10;
  console.log(`${label.padEnd(44)} ${ms.toFixed(1).padStart(6)} ms  ${(cells / ms / 1000).toFixed(2).padStart(6)} M cells/s  (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)})`);
}

const patients = result(patientRow);
const clean = result(cleanRow);
const policy = createDlpPolicy();
const redacting = createDlpPolicy({ actions: { regulated: 'redact' } });
const catalogOnly = createDlpPolicy({ detectors: [] });

const catalog: SensitiveValue[] = [];
for (let i = 0; i < 10_000; i++) {
  const row = patientRow(i + 50_000);
  catalog.push({ value: row[1]!, tag: 'pii.name', classification: 'regulated' });
  catalog.push({ value: row[2]!, tag: 'pii.email', classification: 'regulated' });
  catalog.push({ value: row[3]!, tag: 'pii.phone', classification: 'regulated' });
  catalog.push({ value: `${200 + rnd(600)}-${pad(1 + rnd(98), 2)}-${pad(1 + rnd(9998), 4)}`, tag: 'pii.ssn', classification: 'regulated' });
}
let t = performance.now();
const index = await SensitiveValueIndex.build(catalog);
console.log(`index build: ${catalog.length} values in ${(performance.now() - t).toFixed(0)} ms (${index.size} fingerprints)`);

console.log(`scanResult, ${ROWS} rows × 10 columns, median of 31 runs (node ${process.version})`);
measure('clean result, all detectors', () => scanResult(clean, policy));
measure('clean result, all detectors + index', () => scanResult(clean, policy, index));
measure('patient extract, all detectors (block)', () => scanResult(patients, policy));
measure('patient extract, all detectors (redact)', () => scanResult(patients, redacting));
measure('patient extract, all detectors + index', () => scanResult(patients, redacting, index));
measure('patient extract, index only', () => scanResult(patients, catalogOnly, index));
t = performance.now();
const scan = scanResult(patients, redacting, index);
console.log(`patient extract: ${scan.findings.length} findings, action ${scan.action}, one more run ${(performance.now() - t).toFixed(1)} ms`);
