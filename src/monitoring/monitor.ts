/**
 * The node's monitor: every recorded audit entry goes through `observe`, inline and
 * synchronously (Runtime.onRecorded runs it before the request is answered), which
 *
 *   1. turns the entry into a MonitorEvent (event.ts: no values, no secrets),
 *   2. scores it against the principal's and organisation's baselines (score.ts),
 *   3. runs the window rules (rules.ts), then updates the baselines and live tallies,
 *   4. raises alerts (alerts.ts), whose notifications become signed webhooks (webhooks.ts),
 *      and whose rules' `respond:` become automatic responses (a hold here, applied and
 *      audited by the responder the node provides),
 *   5. publishes the request and every alert change to stream subscribers (SSE).
 *
 * Nothing in `observe` awaits: network delivery and the audited responses run later, so
 * monitoring never blocks or fails a request (bench/monitoring.ts measures its cost).
 *
 * Holds: `suspend-sessions` refuses the principal until an administrator lifts it;
 * `require-step-up` refuses until the principal presents an MFA event newer than the hold.
 * `checkAccess` is what the request path calls after authentication (Runtime.gate).
 */
import type { AuditRecord } from '../audit/types.ts';
import { GatehouseError } from '../errors.ts';
import { AlertBook, type Alert, type AlertChange } from './alerts.ts';
import { Baselines } from './baseline.ts';
import type { MonitoringConfig, ResponseKind } from './config.ts';
import { readsData, toEvent, type MonitorEvent, type RequestFacts } from './event.ts';
import { LiveActivity } from './activity.ts';
import { buildRules, type Detection, type Rule } from './rules.ts';
import { localClock, scoreRequest } from './score.ts';
import { WebhookSender } from './webhooks.ts';
import { ZoneMap } from './zones.ts';
import { IncidentBook } from './incidents.ts';
import { LeakLedger } from './leaks.ts';
import { PostureWatch } from './posture-watch.ts';
import { randomBytes } from 'node:crypto';
import type { DetectionState, MonitorSnapshot } from './persist.ts';

/** Events kept for replaying the rules' windows after a restart (detection state), at most. */
const MAX_REPLAY_EVENTS = 20_000;

const STEP_UP_ACTIONS: ReadonlySet<string> = new Set(['auth.step-up', 'auth.logout']);

export interface Hold {
  readonly principal: string;
  readonly kind: ResponseKind;
  readonly alertId: string;
  /** Epoch ms the hold began: a step-up must be newer than this. */
  readonly since: number;
}

/** Applies and reverses automatic responses with their audit entries (src/operations/monitoring/respond.ts). */
export interface Responder {
  applied(hold: Hold, alert: Alert): Promise<void>;
}

export type StreamEvent =
  | { readonly type: 'request'; readonly principal: string; readonly at: string; readonly auditId: string; readonly action: string; readonly decision: string; readonly purpose: string | null; readonly datasets: readonly string[]; readonly rows: number; readonly score: number; readonly reasons: readonly string[] }
  | { readonly type: Exclude<AlertChange['type'], 'alert.notify'>; readonly principal: string; readonly alert: Alert };

export interface MonitorOptions {
  readonly config: MonitoringConfig;
  readonly orgOf: (principal: string) => string | null;
  readonly now?: () => Date;
  /** Resolves a contact's `secretEnv` (default: process.env). */
  readonly secretOf?: (name: string) => string | undefined;
  readonly fetch?: typeof fetch;
  /** The node's secret watermark key (32 bytes; the node keeps it in its state directory). Default: a fresh one. */
  readonly watermarkKey?: Buffer;
  /** The privacy-unit column of a dataset (distinct units released). */
  readonly unitColumnOf?: (dataset: string) => string | null;
}

export interface Observed {
  readonly event: MonitorEvent;
  readonly score: number;
  readonly reasons: readonly string[];
  readonly detections: readonly Detection[];
}

export class Monitor {
  readonly alerts: AlertBook;
  readonly webhooks: WebhookSender;
  readonly activity = new LiveActivity();
  readonly incidents = new IncidentBook();
  /** Each principal's device posture at its latest request, verified off the request path. */
  readonly posture = new PostureWatch();
  /** Release registry, watermarks and canaries for leak tracing (leaks.ts). */
  readonly leaks: LeakLedger;
  readonly principalBaselines = new Baselines();
  readonly orgBaselines = new Baselines();
  readonly #holds = new Map<string, Hold>();
  readonly #subscribers = new Set<(e: StreamEvent) => void>();
  readonly #costs = new Set<(seconds: number) => void>();
  readonly #now: () => Date;
  readonly #orgOf: (principal: string) => string | null;
  readonly #secretOf: (name: string) => string | undefined;
  #config: MonitoringConfig;
  #rules: Rule[];
  #zones: ZoneMap;
  #responder: Responder | null = null;
  /** Counters the metrics read (requests by outcome × channel, alerts by rule). */
  readonly requests = new Map<string, number>();
  readonly alertsRaised = new Map<string, number>();

  constructor(o: MonitorOptions) {
    this.#config = o.config;
    this.#orgOf = o.orgOf;
    this.#now = o.now ?? (() => new Date());
    this.#secretOf = o.secretOf ?? ((n) => process.env[n]);
    this.#rules = buildRules(o.config);
    this.#zones = new ZoneMap(o.config.zones);
    this.alerts = new AlertBook(o.config);
    const unitColumnOf = o.unitColumnOf ?? (() => null);
    this.leaks = new LeakLedger(o.watermarkKey ?? randomBytes(32), o.config.leakTracing, {
      unitColumnOf, released: (p, d, values, at) => { this.activity.releasedUnits(p, d, values, at); },
    });
    this.webhooks = new WebhookSender({ now: () => this.#now().getTime(), ...(o.fetch ? { fetch: o.fetch } : {}) });
    this.alerts.on((c) => { this.#onAlert(c); this.#changed(); });
    this.incidents.onChange(() => { this.#changed(); });
  }

  get config(): MonitoringConfig { return this.#config; }
  zoneOf(source: string): string | null { return this.#zones.zoneOf(source)?.name ?? null; }

  /** A new configuration (workspace reload): rules restart their windows; baselines and alerts stay. */
  reconfigure(config: MonitoringConfig): void {
    this.#config = config;
    this.#rules = buildRules(config);
    this.#zones = new ZoneMap(config.zones);
    this.alerts.reconfigure(config);
    this.leaks.reconfigure(config.leakTracing);
  }

  setResponder(r: Responder): void { this.#responder = r; }

  readonly #changes = new Set<() => void>();

  /** Called after any change to holds, alerts or incidents (persistence). */
  onChange(listener: () => void): () => void {
    this.#changes.add(listener);
    return () => { this.#changes.delete(listener); };
  }

  #changed(): void { for (const c of this.#changes) { try { c(); } catch { /* persistence retries at the next change */ } } }

  /** Holds, alerts and incidents, for persistence. */
  snapshot(): MonitorSnapshot {
    return { version: 1, holds: this.holds(), alerts: this.alerts.list(), incidents: this.incidents.list() };
  }

  readonly #replay: MonitorEvent[] = [];
  #detectionDirty = false;

  /** True when baselines or rule windows changed since the last `detectionState()`. */
  get detectionDirty(): boolean { return this.#detectionDirty; }

  /**
   * What detection has learnt, for the node's state: the baselines as they are, and the
   * events still inside some rule's window. Windows are not serialised rule by rule: they are
   * rebuilt at start by replaying those events through fresh rules (one mechanism for every
   * rule, exact because each rule's state is a function of the events it saw).
   */
  detectionState(): DetectionState {
    this.#detectionDirty = false;
    const longest = Math.max(0, ...Object.values(this.#config.rules).filter((r) => r.enabled).map((r) => r.windowMinutes));
    const from = this.#now().getTime() - longest * 60_000;
    let drop = 0;
    while (drop < this.#replay.length && this.#replay[drop]!.at < from) drop++;
    if (drop > 0) this.#replay.splice(0, drop);
    return { version: 1, principals: this.principalBaselines.toState(), orgs: this.orgBaselines.toState(), events: [...this.#replay] };
  }

  /** Restores detection at start-up (before the first request): baselines, then the rules' windows by replay. Replayed detections were raised before the restart and are not raised again. */
  restoreDetection(s: DetectionState): void {
    this.principalBaselines.restore(s.principals);
    this.orgBaselines.restore(s.orgs);
    const ctx = { baseline: undefined, zones: this.#zones };
    for (const e of s.events.slice(-MAX_REPLAY_EVENTS)) {
      for (const r of this.#rules) r.observe(e, { ...ctx, baseline: this.principalBaselines.get(e.principal) });
      this.#replay.push(e);
    }
  }

  /** Restores a snapshot at start-up (before the first request). */
  restore(s: MonitorSnapshot): void {
    for (const h of s.holds) this.#holds.set(h.principal, h);
    this.alerts.restore(s.alerts);
    this.incidents.restore(s.incidents);
  }

  subscribe(listener: (e: StreamEvent) => void): () => void {
    this.#subscribers.add(listener);
    return () => { this.#subscribers.delete(listener); };
  }

  #publish(e: StreamEvent): void {
    for (const s of this.#subscribers) { try { s(e); } catch { /* a slow or broken subscriber never breaks monitoring */ } }
  }

  /** Inline, per recorded entry. Returns what was seen (tests, the drill), or null for entries without a principal. */
  observe(record: AuditRecord, auditId: string, facts?: RequestFacts): Observed | null {
    if (this.#costs.size === 0) return this.#observe(record, auditId, facts);
    const t0 = performance.now();
    try { return this.#observe(record, auditId, facts); } finally {
      const s = (performance.now() - t0) / 1000;
      for (const c of this.#costs) { try { c(s); } catch { /* metrics never break monitoring */ } }
    }
  }

  /** Receives the inline cost of each observation, in seconds (the metrics histogram). */
  onCost(listener: (seconds: number) => void): () => void {
    this.#costs.add(listener);
    return () => { this.#costs.delete(listener); };
  }

  #observe(record: AuditRecord, auditId: string, facts: RequestFacts | undefined): Observed | null {
    if (record.rowsReturned !== null && record.rowsReturned > 0) this.leaks.bindAudit(record, auditId);
    const e = toEvent(record, auditId, this.#orgOf, facts);
    if (e === null) return null;
    const key = `${e.decision}\u0000${e.channel}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const pb = this.principalBaselines.get(e.principal);
    const ob = e.org !== null ? this.orgBaselines.get(e.org) : undefined;
    const data = readsData(e);
    const { hour, clock } = localClock(e.at, this.#config.utcOffsetMinutes);
    let score = 0;
    let reasons: readonly string[] = [];
    if (data && e.decision === 'allow') {
      const s = scoreRequest({ rows: e.rows, columns: e.columns, datasets: e.datasets, source: e.source, fingerprint: e.fingerprint, hour, clock }, pb, ob);
      score = s.score;
      reasons = s.reasons;
    }
    const detections: Detection[] = [];
    const ctx = { baseline: pb, zones: this.#zones };
    for (const r of this.#rules) {
      const d = r.observe(e, ctx);
      if (d) detections.push(d);
    }
    const anomaly = this.#config.rules.anomaly;
    if (anomaly.enabled && score >= this.#config.anomalyThreshold) {
      detections.push({ rule: 'anomaly', principal: e.principal, dataset: e.datasets[0] ?? null, summary: `${e.principal}: anomaly score ${score} (${reasons.join('; ')})`, reasons, auditIds: [auditId] });
    }
    if (data && e.decision === 'allow') {
      const b = { rows: e.rows, hour, columns: e.columns, datasets: e.datasets, source: e.source, fingerprint: e.fingerprint };
      this.principalBaselines.of(e.principal).add(b);
      if (e.org !== null) this.orgBaselines.of(e.org).add(b);
    }
    this.#replay.push(e);
    // Trimmed in batches, so the request path does not shift the array on every event.
    if (this.#replay.length > MAX_REPLAY_EVENTS * 1.25) this.#replay.splice(0, this.#replay.length - MAX_REPLAY_EVENTS);
    this.#detectionDirty = true;
    this.activity.record(e, this.#zones.zoneOf(e.source)?.name ?? null, score, reasons);
    if (this.#subscribers.size > 0) {
      this.#publish({ type: 'request', principal: e.principal, at: new Date(e.at).toISOString(), auditId, action: e.action, decision: e.decision, purpose: e.purpose, datasets: e.datasets, rows: e.rows, score, reasons });
    }
    for (const d of detections) this.#raise(d, e.org);
    return { event: e, score, reasons, detections };
  }

  #raise(d: Detection, org: string | null): void {
    this.alertsRaised.set(d.rule, (this.alertsRaised.get(d.rule) ?? 0) + 1);
    const alert = this.alerts.raise(d, org, this.#now());
    const respond = this.#config.rules[d.rule].respond;
    if (respond === null || alert.occurrences > 1 || this.#holds.get(d.principal)?.kind === 'suspend-sessions') return;
    const hold: Hold = { principal: d.principal, kind: respond, alertId: alert.id, since: this.#now().getTime() };
    this.#holds.set(d.principal, hold);
    this.#changed();
    this.alerts.recordResponse(alert, respond, this.#now());
    const responder = this.#responder;
    // Applied and audited after the request that triggered it; the hold is in force already.
    if (responder) queueMicrotask(() => { void responder.applied(hold, alert).catch(() => undefined); });
  }

  #onAlert(c: AlertChange): void {
    if (c.type === 'alert.notify') {
      const secret = c.contact.secretEnv ? this.#secretOf(c.contact.secretEnv) : undefined;
      if (c.contact.webhook && secret) this.webhooks.enqueue(c.contact.webhook, secret, c.escalation ? 'alert.escalated' : 'alert.opened', { contact: c.contact.name, escalation: c.escalation, alert: c.alert });
      return;
    }
    this.#publish({ type: c.type, principal: c.alert.principal, alert: c.alert });
  }

  /** Escalation and webhook delivery, driven by the node's timer or a test's clock. */
  async tick(): Promise<void> {
    this.alerts.tick(this.#now());
    await this.webhooks.pump();
  }

  holds(): Hold[] { return [...this.#holds.values()]; }
  holdOf(principal: string): Hold | null { return this.#holds.get(principal) ?? null; }

  /**
   * Refuses a principal under a hold (called after authentication, before anything runs).
   * `mfaAt` is the credential's last MFA event in epoch seconds; `action` the operation asked for.
   */
  checkAccess(principal: string, mfaAt: number | null, action: string): void {
    const h = this.#holds.get(principal);
    if (!h) return;
    // Under a step-up hold the principal must still be able to step up (and to sign out).
    if (h.kind === 'require-step-up' && STEP_UP_ACTIONS.has(action)) return;
    if (h.kind === 'suspend-sessions') {
      throw new GatehouseError('POLICY_DENIED', 'your access is suspended pending a security review', { hint: 'contact the data owner\'s security team; an administrator can lift the suspension', reasons: [`suspended by monitoring alert ${h.alertId}`] });
    }
    if (mfaAt === null || mfaAt * 1000 < h.since) {
      throw new GatehouseError('MFA_REQUIRED', 'a security check requires you to confirm your identity with multi-factor authentication again', { hint: 'step up with a TOTP code (gatehouse mfa step-up), then retry', reasons: [`step-up required by monitoring alert ${h.alertId}`] });
    }
    // Stepped up after the hold began: the hold has done its job.
    this.#holds.delete(principal);
    this.#changed();
  }

  /** Lifts a principal's hold and marks its automatic responses reversed (an administrator's act, audited by the caller). */
  lift(principal: string, by: string): { lifted: Hold | null; alerts: Alert[] } {
    const h = this.#holds.get(principal) ?? null;
    this.#holds.delete(principal);
    this.#changed();
    return { lifted: h, alerts: this.alerts.reverseResponses(principal, by, this.#now()) };
  }
}
