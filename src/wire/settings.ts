/**
 * Session settings a wire client may set: an allowlist of harmless ones (each value
 * validated) and the purpose (`gatehouse.purpose`). Everything else — SET ROLE, SET
 * SESSION AUTHORIZATION, default_transaction_read_only, any engine knob — is refused
 * (SQLSTATE 42501) and audited by the caller. Settings only shape this session's output;
 * none reaches an engine.
 */
import { GatehouseError } from '../errors.ts';
import { SERVER_VERSION } from '../catalog/functions.ts';
import { LAST_RESULT_SETTINGS } from './protections.ts';

const PURPOSE = /^[a-z][a-z0-9_.-]{0,63}$/;

/** PostgreSQL's spelling of each GUC_REPORT parameter (sent as ParameterStatus when it changes). */
export const REPORTED: Record<string, string> = {
  client_encoding: 'client_encoding', datestyle: 'DateStyle', timezone: 'TimeZone', application_name: 'application_name',
  intervalstyle: 'IntervalStyle', standard_conforming_strings: 'standard_conforming_strings',
};

export interface SettingChange { readonly name: string; readonly value: string; readonly report: boolean }

function bad(name: string, value: string, allowed: string): GatehouseError {
  return new GatehouseError('REQUEST_INVALID', `invalid value for parameter "${name}": "${value.slice(0, 64)}"`, { hint: `allowed: ${allowed}` });
}

function timeoutMs(v: string): number | null {
  const m = /^\s*(\d+)\s*(ms|s|min|h)?\s*$/i.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'ms').toLowerCase();
  return n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'min' ? 60_000 : 3_600_000);
}

export class SessionSettings {
  readonly #values = new Map<string, string>();
  readonly #results = new Map<string, string>();
  readonly #defaults: Map<string, string>;
  readonly #maxTimeoutMs: number;

  constructor(user: string, maxTimeoutMs: number) {
    this.#maxTimeoutMs = maxTimeoutMs;
    this.#defaults = new Map([
      ['server_version', SERVER_VERSION], ['server_version_num', '150000'], ['server_encoding', 'UTF8'], ['client_encoding', 'UTF8'],
      ['datestyle', 'ISO, MDY'], ['intervalstyle', 'postgres'], ['timezone', 'UTC'], ['integer_datetimes', 'on'],
      ['standard_conforming_strings', 'on'], ['application_name', ''], ['search_path', 'public'], ['is_superuser', 'off'],
      ['session_authorization', user], ['statement_timeout', String(maxTimeoutMs)], ['extra_float_digits', '1'],
      ['transaction_isolation', 'read committed'], ['default_transaction_isolation', 'read committed'], ['transaction_read_only', 'on'],
      ['default_transaction_read_only', 'on'], ['max_identifier_length', '63'], ['bytea_output', 'hex'], ['lc_messages', 'C'],
      ['lock_timeout', '0'], ['idle_in_transaction_session_timeout', '0'], ['gatehouse.purpose', ''],
      ...LAST_RESULT_SETTINGS.map((n) => [n, n === 'gatehouse.last_truncated' ? 'off' : n === 'gatehouse.last_rows_suppressed' ? '0' : ''] as [string, string]),
    ]);
  }

  get purpose(): string | null { return this.get('gatehouse.purpose') || null; }
  /** The statement timeout this session asked for (never above the workspace's). */
  get timeoutMs(): number { return Number(this.get('statement_timeout')); }

  get(name: string): string { return this.#results.get(name) ?? this.#values.get(name) ?? this.#defaults.get(name) ?? ''; }

  /** SHOW: a known parameter's value, or null. */
  show(name: string): string | null {
    if (name === 'transaction isolation level') return this.get('transaction_isolation');
    if (name === 'time zone') return this.get('timezone');
    return this.#values.has(name) || this.#defaults.has(name) ? this.get(name) : null;
  }

  all(): [string, string][] { return [...this.#defaults.keys()].sort().map((k) => [k, this.get(k)]); }

  /**
   * Validates and applies one SET (value null = RESET/DEFAULT). Throws GatehouseError:
   * POLICY_DENIED for a setting outside the allowlist, REQUEST_INVALID for a bad value.
   */
  set(rawName: string, value: string | null): SettingChange {
    const name = rawName === 'time zone' ? 'timezone' : rawName;
    const allowed = ALLOWED[name];
    if (!allowed) {
      throw new GatehouseError('POLICY_DENIED', `setting "${rawName.slice(0, 64)}" is not allowed on a governed connection`, {
        hint: `harmless session settings (${Object.keys(ALLOWED).join(', ')}) may be set; nothing else`,
      });
    }
    if (value === null) {
      this.#values.delete(name);
    } else {
      this.#values.set(name, allowed(value, this.#maxTimeoutMs, name));
    }
    return { name: REPORTED[name] ?? name, value: this.get(name), report: name in REPORTED };
  }

  /**
   * What the last released result's protections did (./protections.ts): read-only, so SET
   * refuses these names like any other setting outside the allowlist.
   */
  recordResult(values: readonly (readonly [string, string])[]): void {
    for (const [n, v] of values) this.#results.set(n, v);
  }

  resetAll(): SettingChange[] {
    const changed = [...this.#values.keys()];
    this.#values.clear();
    return changed.map((n) => ({ name: REPORTED[n] ?? n, value: this.get(n), report: n in REPORTED }));
  }
}

type Check = (value: string, maxTimeoutMs: number, name: string) => string;

const oneOf = (options: readonly string[], canonical?: (v: string) => string): Check => (v, _m, name) => {
  const norm = v.trim().toLowerCase();
  if (!options.includes(norm)) throw bad(name, v, options.join(', '));
  return canonical ? canonical(norm) : norm;
};

const ALLOWED: Record<string, Check> = {
  'gatehouse.purpose': (v, _m, name) => {
    if (!PURPOSE.test(v)) throw bad(name, v, 'lower-case letters, digits, _ . - (at most 64 characters), e.g. research');
    return v;
  },
  client_encoding: oneOf(['utf8', 'utf-8', 'unicode'], () => 'UTF8'),
  datestyle: (v, _m, name) => {
    const parts = v.split(',').map((p) => p.trim().toLowerCase());
    if (!parts.includes('iso') || !parts.every((p) => ['iso', 'mdy', 'dmy', 'ymd'].includes(p))) throw bad(name, v, 'ISO (dates are always written ISO, YYYY-MM-DD)');
    return 'ISO, MDY';
  },
  intervalstyle: oneOf(['postgres']),
  extra_float_digits: (v, _m, name) => {
    if (!/^-?\d+$/.test(v.trim()) || Number(v) < -15 || Number(v) > 3) throw bad(name, v, 'an integer from -15 to 3');
    return String(Number(v));
  },
  application_name: (v, _m, name) => {
    if (v.length > 63 || /[^\x20-\x7e]/.test(v)) throw bad(name, v, 'at most 63 printable ASCII characters');
    return v;
  },
  search_path: (v, _m, name) => {
    const parts = v.split(',').map((p) => p.trim().replace(/^"(.*)"$/, '$1').toLowerCase()).filter((p) => p !== '');
    if (!parts.every((p) => ['public', 'pg_catalog', '$user', 'information_schema'].includes(p))) throw bad(name, v, 'public (datasets live in schema public), pg_catalog, "$user"');
    return parts.join(', ');
  },
  timezone: (v, _m, name) => {
    const z = v.trim();
    if (/^(utc|gmt|z|etc\/utc|universal|zulu|utc0|\+00|\+00:00|0)$/i.test(z)) return 'UTC';
    try { new Intl.DateTimeFormat('en', { timeZone: z }); } catch { throw bad(name, v, 'a time zone name such as UTC or Europe/Berlin'); }
    return z;
  },
  statement_timeout: (v, max, name) => {
    const ms = timeoutMs(v);
    if (ms === null) throw bad(name, v, `milliseconds (or with a unit: s, min), at most ${max} ms`);
    if (ms > max) throw new GatehouseError('POLICY_DENIED', `statement_timeout may not exceed the workspace's ${max} ms`, { hint: `set a value of at most ${max} ms` });
    return String(ms === 0 ? max : ms);
  },
  lock_timeout: (v, _m, name) => { if (timeoutMs(v) === null) throw bad(name, v, 'milliseconds'); return String(timeoutMs(v)); },
  idle_in_transaction_session_timeout: (v, _m, name) => { if (timeoutMs(v) === null) throw bad(name, v, 'milliseconds'); return String(timeoutMs(v)); },
  standard_conforming_strings: oneOf(['on', 'true']),
  bytea_output: oneOf(['hex']),
  transaction_isolation: oneOf(['read committed', 'repeatable read', 'serializable']),
  default_transaction_isolation: oneOf(['read committed', 'repeatable read', 'serializable']),
  lc_messages: oneOf(['c', 'en_us.utf-8', 'en_us.utf8', 'c.utf-8', 'c.utf8', '']),
};

/**
 * Start-up `options` (e.g. `-c gatehouse.purpose=research --search_path=public`) → pairs.
 * Throws REQUEST_INVALID for anything but -c / -- settings.
 */
export function parseStartupOptions(options: string): [string, string][] {
  const words: string[] = [];
  let cur = '';
  let escaped = false;
  for (const ch of options) {
    if (escaped) { cur += ch; escaped = false; } else if (ch === '\\') escaped = true;
    else if (/\s/.test(ch)) { if (cur) words.push(cur); cur = ''; } else cur += ch;
  }
  if (cur) words.push(cur);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    if (w === '-c') { w = words[++i] ?? ''; } else if (w.startsWith('-c')) { w = w.slice(2); } else if (w.startsWith('--')) { w = w.slice(2); } else {
      throw new GatehouseError('REQUEST_INVALID', `unsupported start-up option "${w.slice(0, 32)}"`, { hint: "pass settings as options='-c name=value', e.g. -c gatehouse.purpose=research" });
    }
    const eq = w.indexOf('=');
    if (eq <= 0) throw new GatehouseError('REQUEST_INVALID', `start-up option "${w.slice(0, 32)}" needs name=value`, { hint: "e.g. options='-c gatehouse.purpose=research'" });
    out.push([w.slice(0, eq).toLowerCase().replaceAll('-', '_'), w.slice(eq + 1)]);
  }
  return out;
}
