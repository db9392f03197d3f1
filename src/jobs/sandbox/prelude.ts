/**
 * The JavaScript evaluated inside each fresh QuickJS context before the job's module. It
 * turns the three host functions the worker installs (`__gh_next`, `__gh_log`,
 * `__gh_progress`: strings in, strings out) into the job's API, then deletes them from the
 * global object so the job can reach them only through the closures built here.
 *
 * Why strings: a row crosses the bridge as JSON text and is parsed by the guest's own
 * `JSON.parse`, captured here before any job code runs. The guest therefore only ever holds
 * objects of its own heap; there is no host object to walk `constructor` chains from, and a
 * row key `__proto__` becomes an own data property (ECMA-262 JSON.parse uses
 * CreateDataProperty), not a prototype change.
 *
 * Clock and randomness are removed unless granted: `Math.random`, `Date.now`, `Date()` and
 * `new Date()` throw, and `Date.prototype.constructor` points at the guarded constructor so
 * the original cannot be recovered by a prototype walk. `new Date(ms)` (no clock involved)
 * still works.
 */
export const PRELUDE = String.raw`
(function (grants) {
  'use strict';
  const next = globalThis.__gh_next, log = globalThis.__gh_log, progress = globalThis.__gh_progress;
  delete globalThis.__gh_next; delete globalThis.__gh_log; delete globalThis.__gh_progress;
  const parse = JSON.parse, stringify = JSON.stringify, isArray = Array.isArray;
  const freeze = Object.freeze, defineProperty = Object.defineProperty, construct = Reflect.construct;
  const String_ = String;

  if (!grants.randomness) {
    defineProperty(Math, 'random', { value: function random() { throw new TypeError('randomness is not granted to this job'); }, writable: false, configurable: false });
  }
  if (!grants.clock) {
    const RealDate = Date;
    const noClock = function () { throw new TypeError('the clock is not granted to this job'); };
    const GuardedDate = function Date(...args) {
      if (new.target === undefined || args.length === 0) noClock();
      return construct(RealDate, args, new.target);
    };
    GuardedDate.prototype = RealDate.prototype;
    GuardedDate.UTC = RealDate.UTC;
    GuardedDate.parse = RealDate.parse;
    GuardedDate.now = noClock;
    defineProperty(RealDate.prototype, 'constructor', { value: GuardedDate, writable: false, configurable: false });
    defineProperty(globalThis, 'Date', { value: GuardedDate, writable: false, configurable: false });
    freeze(GuardedDate);
  }

  const toText = (args) => args.map((a) => typeof a === 'string' ? a : (() => { try { return stringify(a); } catch { return String_(a); } })()).join(' ');
  const job = freeze({
    log: (...args) => { log(toText(args)); },
    progress: (fraction) => { progress(String_(+fraction)); },
  });
  globalThis.console = freeze({ log: job.log, info: job.log, warn: job.log, error: job.log });

  function input(name) {
    function* rows() {
      for (;;) {
        const text = next(name);
        if (text === '') return;
        const batch = parse(text);
        for (let i = 0; i < batch.length; i++) yield batch[i];
      }
    }
    return freeze({
      name,
      [Symbol.iterator]: rows,
      rows,
      toArray() { const out = []; for (const r of rows()) out.push(r); return out; },
    });
  }

  return freeze({
    job,
    inputs(namesText) { const names = parse(namesText), o = {}; for (let i = 0; i < names.length; i++) o[names[i]] = input(names[i]); return freeze(o); },
    params(text) { return parse(text); },
    finish(value, maxLength) {
      const text = stringify(value);
      if (typeof text !== 'string') throw new TypeError('the job returned nothing that JSON can represent');
      if (text.length > maxLength) return null;
      return text;
    },
  });
})
`;
