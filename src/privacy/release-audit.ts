/**
 * Release auditing for aggregation-only results: audit what was *released*, not only what
 * was asked. A threshold on each cell does not stop an analyst from combining cells across
 * queries — "all claims" minus the published payer cells is the suppressed payer; the
 * Medicare cell minus "Medicare, except patients born on D" is one patient.
 *
 * Model (query auditing for sums, Kenthapadi, Mishra, Nissim, "Simulatable auditing",
 * PODS 2005; Chin & Özsoyoglu, "Auditing and inference control in statistical databases",
 * IEEE TSE 1982; and the τ-ARGUS audit of linked tables, Hundepool et al., "Statistical
 * Disclosure Control", Wiley 2012, §4.4): every released cell — a count or a sum over the
 * rows its filter and group key select — is a linear constraint over *atoms*, the classes
 * of rows that every remembered cell predicate classifies the same way. Counts and sums are
 * linear in the atoms alike, so one constraint matrix serves both. A set of releases
 * discloses an atom (or a small combination of atoms) when that combination lies in the
 * row space of the matrix: then its exact value follows from published numbers. We
 * keep the reduced row echelon form over GF(p), p = 2^26 − 5 (membership over the
 * rationals implies membership mod p, so nothing is missed; a false alarm needs p to
 * divide a pivot, negligible for 0/1 rows), and refuse any new cell whose release would
 * make a pivot row's support cover fewer than `threshold` distinct units. Such cells are
 * withheld (suppressed further); the others are released and remembered.
 *
 * The atoms come from the engine in one grouped scan of the dataset (`auditQuery`); the
 * algebra runs here. Limits, stated in docs/privacy.md: the decision depends on the data
 * (it is not simulatable in the sense of Kenthapadi et al., so a withheld cell tells that a
 * small combination exists); only pivot rows are tested, not every vector of the row
 * space; rounding of published counts is ignored (treated as exact, which is
 * conservative); and the ledger is bounded per principal and dataset by refusing rather
 * than forgetting. Differential privacy is the general answer.
 */
import { GatehouseError } from '../errors.ts';
import type { CellValue } from '../model/result.ts';
import type { Expr, Select } from '../query/ir.ts';
import { deserialisePredicate, serialisePredicate } from './differencing-history.ts';
import { PROBE_ALIAS, type DifferencingProbe } from './differencing.ts';
import { DatabaseSync } from 'node:sqlite';

export const AUDIT_PRIME = 67_108_859; // 2^26 − 5: products of two residues stay below 2^53

/** Cells × atoms above which an audit withholds every new cell instead of computing (≈ 1 s of algebra, bench/aggregation-audit.ts). */
export const MAX_AUDIT_WORK = 250_000;

/** A released cell as remembered: its row predicate over the protected dataset's scan. */
export interface LedgerCell {
  readonly dataset: string;
  readonly key: string;
  readonly predicate: Expr;
  readonly at: number;
}

/** Storage of released cells, per principal (narrow, so it can move into the state layer). */
export interface ReleaseLedger {
  cells(principal: string, dataset: string, since: number): LedgerCell[];
  add(principal: string, cells: readonly LedgerCell[]): void;
}

export class MemoryReleaseLedger implements ReleaseLedger {
  readonly #cells = new Map<string, Map<string, LedgerCell>>();
  cells(principal: string, dataset: string, since: number): LedgerCell[] {
    return [...(this.#cells.get(`${principal}\u0000${dataset}`)?.values() ?? [])].filter((c) => c.at >= since);
  }
  add(principal: string, cells: readonly LedgerCell[]): void {
    for (const c of cells) {
      const k = `${principal}\u0000${c.dataset}`;
      const m = this.#cells.get(k) ?? new Map<string, LedgerCell>();
      m.set(c.key, c);
      this.#cells.set(k, m);
    }
  }
}

export class SqliteReleaseLedger implements ReleaseLedger {
  readonly #db: DatabaseSync;
  constructor(target: string | DatabaseSync) {
    this.#db = typeof target === 'string' ? new DatabaseSync(target) : target;
    this.#db.exec(`CREATE TABLE IF NOT EXISTS released_cells (
      principal TEXT NOT NULL, dataset TEXT NOT NULL, key TEXT NOT NULL, predicate TEXT NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (principal, dataset, key)) WITHOUT ROWID`);
  }
  cells(principal: string, dataset: string, since: number): LedgerCell[] {
    const rows = this.#db.prepare('SELECT key, predicate, at FROM released_cells WHERE principal = ? AND dataset = ? AND at >= ? ORDER BY at')
      .all(principal, dataset, since) as { key: string; predicate: string; at: number }[];
    return rows.map((r) => ({ dataset, key: r.key, predicate: deserialisePredicate(r.predicate), at: Number(r.at) }));
  }
  add(principal: string, cells: readonly LedgerCell[]): void {
    const st = this.#db.prepare(`INSERT INTO released_cells (principal, dataset, key, predicate, at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (principal, dataset, key) DO UPDATE SET at = max(at, excluded.at)`);
    for (const c of cells) st.run(principal, c.dataset, c.key, serialisePredicate(c.predicate), c.at);
  }
}

// ---- the algebra --------------------------------------------------------------------------

function mulmod(a: number, b: number): number { return (a * b) % AUDIT_PRIME; }

function inverse(a: number): number {
  // Fermat: a^(p−2) mod p, by squaring (each product < 2^52).
  let result = 1, base = a % AUDIT_PRIME, e = AUDIT_PRIME - 2;
  while (e > 0) {
    if (e & 1) result = mulmod(result, base);
    base = mulmod(base, base);
    e = Math.floor(e / 2);
  }
  return result;
}

/**
 * A reduced row echelon basis over GF(p), kept up to date one row at a time: adding a row
 * reduces it by the existing pivots (O(rank·A)) and, if anything is left, eliminates its
 * new pivot column from the other rows. `tryAdd` first computes what the basis would
 * become and applies it only if no row of the result has a small support.
 */
export class EchelonBasis {
  readonly #width: number;
  readonly #rows: Float64Array[] = [];
  /** Non-zero positions of each row (rows are sparse at first; the loops skip zeros). */
  readonly #nz: Int32Array[] = [];
  readonly #pivots: number[] = [];
  constructor(width: number) { this.#width = width; }

  get rank(): number { return this.#rows.length; }

  static #nonZero(row: Float64Array): Int32Array {
    const out: number[] = [];
    for (let j = 0; j < row.length; j++) if (row[j] !== 0) out.push(j);
    return Int32Array.from(out);
  }

  #reduce(v: readonly number[] | Float64Array): Float64Array | null {
    const r = Float64Array.from(v, (x) => ((x % AUDIT_PRIME) + AUDIT_PRIME) % AUDIT_PRIME);
    for (let i = 0; i < this.#rows.length; i++) {
      const f = r[this.#pivots[i]!]!;
      if (f === 0) continue;
      const row = this.#rows[i]!;
      for (const j of this.#nz[i]!) r[j] = (r[j]! - mulmod(f, row[j]!) + AUDIT_PRIME) % AUDIT_PRIME;
    }
    let pivot = -1;
    for (let j = 0; j < this.#width; j++) if (r[j] !== 0) { pivot = j; break; }
    if (pivot < 0) return null;
    const inv = inverse(r[pivot]!);
    if (inv !== 1) for (let j = pivot; j < this.#width; j++) if (r[j] !== 0) r[j] = mulmod(r[j]!, inv);
    return r;
  }

  /**
   * Adds the row unless the resulting basis has a row whose support covers between 1 and
   * threshold−1 units (`units[a]` per atom). Returns false (and changes nothing) then.
   * With `threshold` 0 the row is always added.
   */
  tryAdd(v: readonly number[], units: readonly number[], threshold: number): boolean {
    const r = this.#reduce(v);
    if (r === null) return true; // already implied by what was published: nothing new
    const rnz = EchelonBasis.#nonZero(r);
    const pivot = rnz[0]!;
    const small = (row: Float64Array, nz: Int32Array): boolean => {
      let covered = 0;
      for (const j of nz) covered += units[j]!;
      return covered > 0 && covered < threshold;
    };
    const updated: [number, Float64Array, Int32Array][] = [];
    for (let i = 0; i < this.#rows.length; i++) {
      const f = this.#rows[i]![pivot]!;
      if (f === 0) continue;
      const row = Float64Array.from(this.#rows[i]!);
      for (const j of rnz) row[j] = (row[j]! - mulmod(f, r[j]!) + AUDIT_PRIME) % AUDIT_PRIME;
      updated.push([i, row, EchelonBasis.#nonZero(row)]);
    }
    if (threshold > 0 && (small(r, rnz) || updated.some(([, row, nz]) => small(row, nz)))) return false;
    for (const [i, row, nz] of updated) { this.#rows[i] = row; this.#nz[i] = nz; }
    this.#rows.push(r);
    this.#nz.push(rnz);
    this.#pivots.push(pivot);
    return true;
  }
}

/**
 * Does the set of cells (each a 0/1 membership row over the atoms) pin some combination of
 * atoms that together cover fewer than `threshold` units? `units[a]` is atom a's count of
 * distinct units. (Only the rows of the reduced echelon form are tested.)
 */
export function disclosesSmallCombination(cells: readonly (readonly number[])[], units: readonly number[], threshold: number): boolean {
  const basis = new EchelonBasis(units.length);
  return !cells.every((c) => basis.tryAdd(c, units, threshold));
}

/**
 * Which new cells can be released: old cells are taken as released; new cells are added in
 * order, each only if, together with everything accepted so far, it discloses no small
 * combination.
 */
export function auditCells(atoms: readonly { readonly member: readonly boolean[]; readonly units: number }[], oldCount: number, newCount: number, threshold: number): boolean[] {
  const units = atoms.map((a) => a.units);
  const column = (i: number): number[] => atoms.map((a) => (a.member[i] ? 1 : 0));
  const basis = new EchelonBasis(atoms.length);
  for (let i = 0; i < oldCount; i++) basis.tryAdd(column(i), units, 0);
  return Array.from({ length: newCount }, (_, j) => basis.tryAdd(column(oldCount + j), units, threshold));
}

// ---- the engine side ------------------------------------------------------------------------

const FALSE: Expr = { kind: 'literal', type: 'boolean', value: false };
const fn = (name: string, args: Expr[]): Expr => ({ kind: 'func', name, args, star: false, distinct: false, filter: null, over: null });

function keyOf(p: Expr): string {
  return JSON.stringify(p, (k, v) => (k === 'lineage' ? undefined : v));
}

/** SELECT b0 … bm, count(DISTINCT unit) FROM scan WHERE b0 OR … GROUP BY b0 … bm: the atoms. */
export function auditQuery(probe: DifferencingProbe, predicates: readonly Expr[]): Select {
  const unit: Expr = { kind: 'column', relation: PROBE_ALIAS, name: probe.unitColumn, lineage: { sources: new Set() } };
  const truth = (p: Expr): Expr => fn('coalesce', [containsSubquery(p) ? p : fn('try', [p]), FALSE]);
  const bits = predicates.map(truth);
  return {
    kind: 'select', with: [], distinct: false, from: { ...probe.scan, alias: PROBE_ALIAS },
    targets: [...bits.map((b, i) => ({ expr: b, alias: `b${i}` })), { expr: { kind: 'func', name: 'count', args: [unit], star: false, distinct: true, filter: null, over: null }, alias: 'units' }],
    where: bits.reduce((l, r) => ({ kind: 'binary', op: 'OR', left: l, right: r })),
    groupBy: bits, having: null, orderBy: [], limit: null, offset: null,
  };
}

function containsSubquery(e: Expr): boolean {
  return JSON.stringify(e, (k, v) => (k === 'lineage' ? undefined : v)).includes('"kind":"select"');
}

export interface AuditOptions {
  readonly ledger?: ReleaseLedger;
  /** Cells remembered per principal and dataset in the window; past it, releases are refused. */
  readonly capacity?: number;
  readonly windowMs?: number;
}

/** One audit in progress: run `query`, hand its rows to `finish`. */
export interface AuditStep {
  /** The audit query to run, or null when every cell was already published (nothing new to audit). */
  readonly query: Select | null;
  /** Per new cell (in the order given): may it be released? Records the released ones. */
  finish(rows: readonly (readonly CellValue[])[]): boolean[];
}

export class ReleaseAuditor {
  readonly #ledger: ReleaseLedger;
  readonly #capacity: number;
  readonly #windowMs: number;

  constructor(options: AuditOptions = {}) {
    this.#ledger = options.ledger ?? new MemoryReleaseLedger();
    this.#capacity = options.capacity ?? 300;
    this.#windowMs = options.windowMs ?? 90 * 86_400_000;
  }

  /**
   * Starts auditing the release of `cells` (row predicates over the probe's scan, one per
   * released group; null for a group whose key cannot be written back as a filter — it is
   * withheld). Returns null when there is nothing to audit.
   */
  begin(subject: string, probe: DifferencingProbe, cells: readonly (Expr | null)[], now = Date.now()): AuditStep | null {
    if (cells.length === 0) return null;
    const old = this.#ledger.cells(subject, probe.dataset, now - this.#windowMs);
    const oldKeys = new Set(old.map((c) => c.key));
    const fresh = cells.map((c) => (c === null ? null : { predicate: c, key: keyOf(c) }));
    const novel = fresh.filter((c): c is { predicate: Expr; key: string } => c !== null && !oldKeys.has(c.key));
    if (old.length + novel.length > this.#capacity) {
      throw new GatehouseError('DIFFERENCING_DETECTED', `refused: releasing these cells would take the cells published to you from "${probe.dataset}" past ${this.#capacity}, the most release auditing can keep`, {
        hint: 'ask the data owner for differentially private access', reasons: [`alert: release audit — ledger full on "${probe.dataset}"`],
      });
    }
    // Every cell already published (a repeated query): nothing new can be learnt, no scan.
    if (novel.length === 0) return { query: null, finish: () => fresh.map((c) => c !== null) };
    const predicates = [...old.map((c) => c.predicate), ...novel.map((c) => c.predicate)];
    const ledger = this.#ledger;
    return {
      query: auditQuery(probe, predicates),
      finish(rows) {
        const m = predicates.length;
        const atoms = rows.map((r) => ({ member: r.slice(0, m).map((v) => v === true), units: Number(r[m] ?? 0) }));
        // Bounded work (the algebra is O(cells² · atoms) at worst): past the bound, nothing
        // new is released (fail closed) rather than stalling the process.
        const keepNovel = m * atoms.length > MAX_AUDIT_WORK ? novel.map(() => false) : auditCells(atoms, old.length, novel.length, probe.threshold);
        const released = new Map(novel.map((c, i) => [c.key, keepNovel[i]!]));
        ledger.add(subject, novel.filter((_, i) => keepNovel[i]).map((c) => ({ dataset: probe.dataset, key: c.key, predicate: c.predicate, at: now })));
        return fresh.map((c) => c !== null && (oldKeys.has(c.key) || released.get(c.key) === true));
      },
    };
  }
}

/**
 * The release step as one result transformer: audits the rows disclosure control is about
 * to publish against everything this principal was published before, per protected
 * dataset of the query, and withholds the rows that would pin a small combination.
 * `run` executes an audit query on the engine that holds the dataset.
 */
export async function auditRelease(
  auditor: ReleaseAuditor, run: (query: Select) => Promise<{ readonly rows: readonly (readonly CellValue[])[] }>,
  subject: string, plan: { readonly groupKeys: readonly number[]; readonly probes: readonly DifferencingProbe[] },
  rows: readonly (readonly CellValue[])[], now = Date.now(),
): Promise<{ rows: (readonly CellValue[])[]; withheld: number }> {
  let keep = rows.map(() => true);
  for (const probe of plan.probes) {
    const cells = rows.map((r) => probe.cell?.(plan.groupKeys.map((i) => r[i])) ?? null);
    const step = auditor.begin(subject, probe, cells, now);
    if (!step) continue;
    const verdict = step.finish(step.query === null ? [] : (await run(step.query)).rows);
    keep = keep.map((k, i) => k && verdict[i]!);
  }
  const out = rows.filter((_, i) => keep[i]);
  return { rows: out, withheld: rows.length - out.length };
}
