/**
 * Statistical disclosure control for non-DP aggregate results: primary small-cell
 * suppression counted in distinct privacy units, secondary suppression against recovery
 * by subtraction in one- and two-way tables, optional rounding, and the attacker used to
 * check it. Pure functions over tables; the query pipeline calls `protectAggregate`.
 * Rules, thresholds and limits: docs/disclosure-control.md.
 */
export type {
  Cell, MarginKnowledge, Measure, MeasureKind, OneWayRef, OneWayTable, PublishedCell, PublishedOneWay, PublishedTwoWay,
  Rounding, SdcOptions, SdcResult, Suppression, Total, TwoWayRef, TwoWayTable,
} from './types.ts';
export { SdcError, SdcInputInvalid, SdcUnprotectable } from './errors.ts';
export { DEFAULT_THRESHOLD } from './suppress.ts';
export { roundCount, roundMidpoint6, roundNearest5 } from './rounding.ts';
export { protectOneWay, protectTwoWay } from './tables.ts';
export { recoverable, recoverableOneWay, recoverableTwoWay, type Recovery } from './recover.ts';
export { protectAggregate, type AggregateResult, type AggregateSdcResult, type TableShape } from './aggregate.ts';
