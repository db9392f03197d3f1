/**
 * Prometheus metrics (prom-client, on its own registry so nothing global leaks between
 * nodes in one process). Labels never carry a principal, a value or a secret: outcome,
 * channel, action, stage, rule, dataset — bounded sets an operator can alert on.
 *
 *   gatehouse_requests_total{outcome,channel}          one per audit entry
 *   gatehouse_request_duration_seconds{stage}          http (whole request), authenticate, operation
 *                                                      (authenticate → plan → execute → release),
 *                                                      audit (the durable write), monitor (inline cost)
 *   gatehouse_alerts_total{rule}                       detections raised
 *   gatehouse_alerts{state}                            alerts by state now
 *   gatehouse_webhook_deliveries{state}                delivered, pending, dead-letter
 *   gatehouse_dp_budget_used_ratio{dataset}            the largest spent/cap of any subject
 *   gatehouse_audit_log_entries                        entries in the transparency log
 *   gatehouse_audit_log_bytes                          its size on disk
 *   gatehouse_audit_checkpoint_lag_entries             entries not yet covered by a signed checkpoint
 *   gatehouse_audit_checkpoint_age_seconds             since the checkpoint last advanced (as seen by this process)
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditRecord } from '../audit/types.ts';
import type { Monitor } from './monitor.ts';

export interface AuditLogFacts {
  stats(): { size: number; checkpointSize: number };
  diskUsage?(): number;
}

export interface MetricsSources {
  readonly monitor: Monitor;
  readonly budgetUse: () => Promise<readonly { dataset: string; ratio: number }[]>;
  readonly auditLog?: AuditLogFacts | null;
  readonly now?: () => number;
}

const BUCKETS = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class GatehouseMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'outcome' | 'channel'>;
  readonly duration: Histogram<'stage'>;
  #checkpoint = { size: -1, since: 0 };

  constructor(s: MetricsSources) {
    const now = s.now ?? Date.now;
    collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' });
    this.requests = new Counter({ name: 'gatehouse_requests_total', help: 'Requests recorded in the audit log, by outcome and channel', labelNames: ['outcome', 'channel'], registers: [this.registry] });
    this.duration = new Histogram({ name: 'gatehouse_request_duration_seconds', help: 'Latency by stage: http (whole request), authenticate, operation (everything before the audit write), audit (durable write), monitor (inline monitoring)', labelNames: ['stage'], buckets: BUCKETS, registers: [this.registry] });
    const m = s.monitor;
    new Gauge({
      name: 'gatehouse_alerts_total', help: 'Detections raised since start, by rule', labelNames: ['rule'], registers: [this.registry],
      collect() { this.reset(); for (const [rule, n] of m.alertsRaised) this.set({ rule }, n); },
    });
    new Gauge({
      name: 'gatehouse_alerts', help: 'Alerts by state', labelNames: ['state'], registers: [this.registry],
      collect() { for (const [state, n] of Object.entries(m.alerts.counts())) this.set({ state }, n); },
    });
    new Gauge({
      name: 'gatehouse_webhook_deliveries', help: 'Alert webhooks: delivered, pending (retrying) and dead-lettered', labelNames: ['state'], registers: [this.registry],
      collect() {
        this.set({ state: 'delivered' }, m.webhooks.delivered);
        this.set({ state: 'pending' }, m.webhooks.pending.length);
        this.set({ state: 'dead-letter' }, m.webhooks.deadLetters.length);
      },
    });
    new Gauge({
      name: 'gatehouse_dp_budget_used_ratio', help: 'Largest share of a differential-privacy budget spent by any subject, per dataset', labelNames: ['dataset'], registers: [this.registry],
      async collect() { this.reset(); for (const u of await s.budgetUse().catch(() => [])) this.set({ dataset: u.dataset }, u.ratio); },
    });
    const log = s.auditLog ?? null;
    if (log) {
      new Gauge({ name: 'gatehouse_audit_log_entries', help: 'Entries in the transparency log', registers: [this.registry], collect() { this.set(log.stats().size); } });
      if (log.diskUsage) new Gauge({ name: 'gatehouse_audit_log_bytes', help: 'Size of the transparency log on disk', registers: [this.registry], collect() { this.set(log.diskUsage!()); } });
      new Gauge({ name: 'gatehouse_audit_checkpoint_lag_entries', help: 'Entries not yet covered by a signed checkpoint', registers: [this.registry], collect() { const st = log.stats(); this.set(Math.max(0, st.size - st.checkpointSize)); } });
      const cp = this.#checkpoint;
      new Gauge({
        name: 'gatehouse_audit_checkpoint_age_seconds', help: 'Seconds since the signed checkpoint last advanced, as observed by this process', registers: [this.registry],
        collect() {
          const st = log.stats();
          if (st.checkpointSize !== cp.size) { cp.size = st.checkpointSize; cp.since = now(); }
          this.set(st.size === st.checkpointSize ? 0 : (now() - cp.since) / 1000);
        },
      });
    }
    m.onCost((seconds) => { this.duration.observe({ stage: 'monitor' }, seconds); });
  }

  /** Counts one recorded entry (Runtime.onRecorded). */
  recorded(entry: AuditRecord): void {
    this.requests.inc({ outcome: entry.decision, channel: entry.channel });
  }

  text(): Promise<string> { return this.registry.metrics(); }
  get contentType(): string { return this.registry.contentType; }
}
