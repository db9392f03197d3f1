/**
 * The governance store: one node:sqlite database (WAL) holding every governance record —
 * partner organisations and vendor risk, agreements, grants and access requests,
 * acknowledgement documents and signatures, training, retention rules and legal holds,
 * findings, classification decisions, and the gate's settings.
 *
 *   const gov = GovernanceStore.open('state/governance.db');
 *   await gov.vendors.register({ name: 'northwind-research', by: 'olivia' });
 *   const { agreement } = await gov.agreements.create({ kind: 'DPA', … }, { knownDatasets });
 *   await gov.grants.approve(requestId, { approverId: 'olivia', isOwner });
 *   await gov.evaluate({ principal, dataset, purpose: 'research' })   // on every request
 *
 * Every method is asynchronous: the same store runs on node:sqlite (`open`, the embedded
 * default) or on PostgreSQL (`on(driver)`: the one Core, src/state/governance-core.ts, on the
 * state SQL driver), where several
 * Gatehouse nodes share it. Every multi-row change is one transaction (SQLite: `BEGIN
 * IMMEDIATE`; PostgreSQL: the schema's advisory lock, one writer across all nodes): nothing is half-applied, and read-check-write
 * sequences (double approval, overlapping agreements, termination) cannot interleave with
 * another connection or node. Times are ISO
 * strings; ids are random and readable (`agr_…`, `grt_…`, `req_…`). The store never writes
 * the audit log: each change returns a `GovernanceEvent` that the caller records.
 */
import { DriverCore } from './core.ts';
import type { SqlDriver } from '../sql/driver.ts';
import { SqliteDriver, sqliteDialect } from '../sql/sqlite.ts';
import { governanceTables } from '../sql/tables/governance.ts';
import { Acknowledgements } from './acknowledgements.ts';
import { Agreements } from './agreements.ts';
import { ClassificationDecisions } from './classification.ts';
import { Findings } from './findings.ts';
import { Gate, type GateInput, type GateResult } from './gate.ts';
import { Grants } from './grants.ts';
import { Retention } from './retention.ts';
import { Training } from './training.ts';
import { GovernanceError, type Core } from './types.ts';
import { Vendors } from './vendors.ts';

export interface GovernanceStoreOptions {
  /** Clock for operations that take no explicit time (default: the system clock). */
  readonly now?: () => Date;
}

const SCHEMA_VERSION = 1;

export class GovernanceStore {
  readonly vendors: Vendors;
  readonly agreements: Agreements;
  readonly grants: Grants;
  readonly acknowledgements: Acknowledgements;
  readonly training: Training;
  readonly retention: Retention;
  readonly findings: Findings;
  readonly classification: ClassificationDecisions;
  readonly gate: Gate;
  readonly #core: Core;

  private constructor(core: Core) {
    this.#core = core;
    this.vendors = new Vendors(core);
    this.retention = new Retention(core);
    // Agreements end their grants and look up holds through these, inside their own transaction.
    let grants: Grants | null = null;
    this.agreements = new Agreements(core, {
      revokeGrantsOf: (id, by, at, reason) => grants!.revokeAllOf(id, by, at, reason),
      granteesOf: (id) => grants!.granteesOf(id),
      holdsOn: async (subjects, at) => (await this.retention.holdsOn(subjects, at)).map((h) => ({ id: h.id, subjectKind: h.subject.kind, subject: h.subject.id, reason: h.reason })),
    });
    grants = new Grants(core, this.agreements);
    this.grants = grants;
    this.acknowledgements = new Acknowledgements(core);
    this.training = new Training(core);
    this.findings = new Findings(core);
    this.classification = new ClassificationDecisions(core);
    this.gate = new Gate(core, { vendors: this.vendors, acknowledgements: this.acknowledgements, training: this.training });
  }

  /** Opens (and creates) the store at `path` (a file, or ':memory:' for tests). */
  static open(path: string, options: GovernanceStoreOptions = {}): GovernanceStore {
    if (typeof path !== 'string' || path.length === 0) throw new GovernanceError('GOV_INVALID', 'the governance store needs a file path (or ":memory:")', 'pass e.g. state/governance.db');
    const driver = SqliteDriver.openSync(path, { busyTimeoutMs: 5000 });
    const db = driver.db;
    try {
      const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
      if (version > SCHEMA_VERSION) {
        throw new GovernanceError('GOV_INVALID', `the governance store ${path} was written by a newer Gatehouse (schema ${version})`, 'upgrade Gatehouse, or open a store of this version');
      }
      db.exec('BEGIN IMMEDIATE');
      try {
        // The tables are declared once for both backends (src/sql/tables/governance.ts).
        db.exec(governanceTables(sqliteDialect()));
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      void driver.close();
      throw err;
    }
    return new GovernanceStore(new DriverCore(driver, { ...(options.now ? { now: options.now } : {}), lockKey: 'gatehouse-governance', owns: true }));
  }

  /** A store on a shared state SQL driver (PostgreSQL: src/state/backend.ts; its tables migrated). */
  static on(driver: SqlDriver, options: GovernanceStoreOptions & { lockKey: string }): GovernanceStore {
    return new GovernanceStore(new DriverCore(driver, { ...(options.now ? { now: options.now } : {}), lockKey: options.lockKey, owns: false }));
  }

  /**
   * A store over any Core: the PostgreSQL one (src/state/governance-pg.ts), shared by several
   * nodes. The core's tables must exist (PostgreSQL: migrations.ts creates them).
   */
  static onCore(core: Core): GovernanceStore {
    return new GovernanceStore(core);
  }

  /** 'sqlite' (the embedded file) or 'postgres' (shared by every node on the database). */
  get backend(): 'sqlite' | 'postgres' {
    return this.#core.dialect;
  }

  /** The gate (gate.ts) — what the request path calls before the Cedar decision. */
  evaluate(input: GateInput): Promise<GateResult> {
    return this.gate.evaluate(input);
  }

  now(): Date {
    return this.#core.now();
  }

  /** Closes the SQLite file (after a running transaction); the PostgreSQL pool belongs to its state. */
  close(): Promise<void> {
    return this.#core.close();
  }
}
