/**
 * The monitoring operations as one object for the façade (src/pipeline/gatehouse.ts adds a
 * single method), so the faces — HTTP routes, the CLI, the drill — reach them through the
 * one path without the façade growing a method per operation.
 */
import type { Runtime } from '../../kernel/runtime.ts';
import type { RequestMeta } from '../../kernel/types.ts';
import type { AlertState } from '../../monitoring/alerts.ts';
import type { Monitor } from '../../monitoring/monitor.ts';
import { activity, activityStream, inScope, type ActivityAnswer, type ActivityScope } from './activity.ts';
import { changeAlert, deadLetters, liftHold, listAlerts } from './alerts.ts';
import { budgetUse, monitorOf } from './attach.ts';
import { checkSlaDeadlines, listIncidents, workIncident } from './incidents.ts';
import { traceExtract } from './trace.ts';

export type { ActivityAnswer, ActivityScope } from './activity.ts';

export interface MonitoringFacade {
  /** The node's monitor (metrics, the live stream, tests); attaching it starts watching. */
  readonly monitor: Monitor;
  activity(meta: RequestMeta, options?: { minutes?: number }): Promise<ActivityAnswer>;
  activityStream(meta: RequestMeta): Promise<ActivityScope>;
  inScope(scope: ActivityScope): (principal: string) => boolean;
  listAlerts(meta: RequestMeta, filter?: { state?: AlertState }): ReturnType<typeof listAlerts>;
  changeAlert(meta: RequestMeta, id: string, change: 'acknowledge' | 'resolve' | 'confirm', note?: string | null): ReturnType<typeof changeAlert>;
  liftHold(meta: RequestMeta, principal: string): ReturnType<typeof liftHold>;
  deadLetters(meta: RequestMeta): ReturnType<typeof deadLetters>;
  /** The largest share of a privacy budget spent per dataset, over the subjects monitoring has seen (metrics). */
  budgetUse(): Promise<{ dataset: string; ratio: number }[]>;
  listIncidents(meta: RequestMeta): ReturnType<typeof listIncidents>;
  workIncident(meta: RequestMeta, id: string, step: 'respond' | 'remediate', note?: string | null): ReturnType<typeof workIncident>;
  /** Missed SLA deadlines → findings now (the node's timer calls this every second; tests and the drill call it directly). */
  checkSlaDeadlines(now?: Date): Promise<number>;
  trace(meta: RequestMeta, extract: string): ReturnType<typeof traceExtract>;
  /** Stage timings of every request (authenticate, operation, audit): the latency histograms. */
  onTiming(observer: (stage: string, seconds: number) => void): () => void;
}

export function facade(rt: Runtime): MonitoringFacade {
  return {
    monitor: monitorOf(rt),
    activity: (meta, options) => activity(rt, meta, options),
    activityStream: (meta) => activityStream(rt, meta),
    inScope,
    listAlerts: (meta, filter) => listAlerts(rt, meta, filter),
    changeAlert: (meta, id, change, note) => changeAlert(rt, meta, id, change, note ?? null),
    liftHold: (meta, principal) => liftHold(rt, meta, principal),
    deadLetters: (meta) => deadLetters(rt, meta),
    budgetUse: () => budgetUse(rt),
    listIncidents: (meta) => listIncidents(rt, meta),
    workIncident: (meta, id, step, note) => workIncident(rt, meta, id, step, note ?? null),
    checkSlaDeadlines: (now) => checkSlaDeadlines(rt, now),
    trace: (meta, extract) => traceExtract(rt, meta, extract),
    onTiming: (observer) => rt.onTiming(observer),
  };
}
