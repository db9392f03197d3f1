/**
 * RFC 8785 JSON Canonicalization Scheme (JCS) for the values audit entries hold.
 *
 * RFC 8785 §3.2 defines the serialisation in terms of ECMAScript's JSON.stringify for
 * primitives (§3.2.2.2 strings, §3.2.2.3 numbers) and requires object members sorted by
 * their UTF-16 code units (§3.2.3), which is exactly JavaScript's default string order.
 * Non-finite numbers, undefined, functions, symbols and bigints are rejected rather than
 * silently dropped: an entry must hash the same in every verifier.
 */
import { InputInvalid } from './errors.ts';

export function canonicalize(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new InputInvalid('canonical JSON cannot encode a non-finite number');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += canonicalize(value[i]);
        }
        return out + ']';
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const v = obj[key];
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += JSON.stringify(key) + ':' + canonicalize(v);
      }
      return out + '}';
    }
    default:
      throw new InputInvalid(`canonical JSON cannot encode a ${typeof value}`);
  }
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

// ---- Fast path for the one object shape the log appends ------------------------------

const str = JSON.stringify as (s: string) => string;

function strOrNull(v: string | null): string {
  if (v === null) return 'null';
  if (typeof v !== 'string') throw new InputInvalid(`canonical JSON cannot encode a ${typeof v} here`);
  return str(v);
}

function strArray(a: readonly string[]): string {
  let out = '[';
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    // A hole or a non-string is rejected, as canonicalize() rejects undefined.
    if (typeof v !== 'string') throw new InputInvalid(`canonical JSON cannot encode a ${typeof v} here`);
    if (i > 0) out += ',';
    out += str(v);
  }
  return out + ']';
}

/** The fields of a stored audit entry (log.ts StoredAuditEntry), as canonicalAuditEntry reads them. */
export interface CanonicalAuditEntryFields {
  readonly time: string;
  readonly principal: string | null;
  readonly source: string;
  readonly channel: string;
  readonly action: string;
  readonly purpose: string | null;
  readonly datasets: readonly string[];
  readonly columns: readonly string[];
  readonly decision: string;
  readonly reasons: readonly string[];
  readonly policyVersion: string | null;
  readonly obligations: readonly string[];
  readonly sqlFingerprint: string | null;
  readonly rowsReturned: number | null;
  readonly resultDigest: string | null;
  readonly errorCode: string | null;
  readonly subjects: readonly string[];
  readonly pseudonymEpoch: string;
}

function plainStringArray(a: readonly string[]): boolean {
  // A plain, dense array of strings, with no toJSON anywhere on its prototype chain:
  // JSON.stringify then writes exactly what canonicalize() writes.
  if (!Array.isArray(a) || Object.getPrototypeOf(a) !== Array.prototype || 'toJSON' in a) return false;
  for (let i = 0; i < a.length; i++) if (typeof a[i] !== 'string') return false;
  return true;
}

function strOrNullOk(v: string | null): boolean { return v === null || typeof v === 'string'; }

/**
 * canonicalize(entry) for an audit entry, without sorting keys at run time.
 *
 * Fast path: when every field has the type the log validated (strings, null, a finite
 * number, plain dense arrays of strings) and nothing defines toJSON, the members are put
 * into a fresh object in RFC 8785 §3.2.3 order (UTF-16 code-unit order of the names,
 * fixed below) and serialised by JSON.stringify, which then emits exactly the RFC 8785
 * form: no whitespace, members in insertion order, strings and numbers as ECMAScript
 * serialises them (§3.2.2.2, §3.2.2.3), which is what canonicalize() does too. Anything
 * else takes the explicit path below, which rejects unexpected types. Byte-for-byte equal
 * to canonicalize() (canonical.test.ts).
 */
export function canonicalAuditEntry(e: CanonicalAuditEntryFields): string {
  const rows = e.rowsReturned;
  if ((rows === null || (typeof rows === 'number' && Number.isFinite(rows)))
    && typeof e.action === 'string' && typeof e.channel === 'string' && typeof e.decision === 'string'
    && typeof e.pseudonymEpoch === 'string' && typeof e.source === 'string' && typeof e.time === 'string'
    && strOrNullOk(e.errorCode) && strOrNullOk(e.policyVersion) && strOrNullOk(e.principal) && strOrNullOk(e.purpose)
    && strOrNullOk(e.resultDigest) && strOrNullOk(e.sqlFingerprint)
    && plainStringArray(e.columns) && plainStringArray(e.datasets) && plainStringArray(e.obligations)
    && plainStringArray(e.reasons) && plainStringArray(e.subjects)) {
    const sorted = {
      action: e.action, channel: e.channel, columns: e.columns, datasets: e.datasets, decision: e.decision,
      errorCode: e.errorCode, obligations: e.obligations, policyVersion: e.policyVersion, principal: e.principal,
      pseudonymEpoch: e.pseudonymEpoch, purpose: e.purpose, reasons: e.reasons, resultDigest: e.resultDigest,
      rowsReturned: rows, source: e.source, sqlFingerprint: e.sqlFingerprint, subjects: e.subjects, time: e.time,
    };
    if (!('toJSON' in sorted)) return JSON.stringify(sorted);
  }
  return canonicalAuditEntryExplicit(e);
}

/** The same, member by member (the fallback; also what the fast path is tested against). */
export function canonicalAuditEntryExplicit(e: CanonicalAuditEntryFields): string {
  const rows = e.rowsReturned;
  let rowsJson: string;
  if (rows === null) rowsJson = 'null';
  else if (typeof rows === 'number' && Number.isFinite(rows)) rowsJson = JSON.stringify(rows);
  else throw new InputInvalid('canonical JSON cannot encode rowsReturned');
  if (typeof e.action !== 'string' || typeof e.channel !== 'string' || typeof e.decision !== 'string'
    || typeof e.pseudonymEpoch !== 'string' || typeof e.source !== 'string' || typeof e.time !== 'string') {
    throw new InputInvalid('canonical JSON: audit entry field of an unexpected type');
  }
  return '{"action":' + str(e.action)
    + ',"channel":' + str(e.channel)
    + ',"columns":' + strArray(e.columns)
    + ',"datasets":' + strArray(e.datasets)
    + ',"decision":' + str(e.decision)
    + ',"errorCode":' + strOrNull(e.errorCode)
    + ',"obligations":' + strArray(e.obligations)
    + ',"policyVersion":' + strOrNull(e.policyVersion)
    + ',"principal":' + strOrNull(e.principal)
    + ',"pseudonymEpoch":' + str(e.pseudonymEpoch)
    + ',"purpose":' + strOrNull(e.purpose)
    + ',"reasons":' + strArray(e.reasons)
    + ',"resultDigest":' + strOrNull(e.resultDigest)
    + ',"rowsReturned":' + rowsJson
    + ',"source":' + str(e.source)
    + ',"sqlFingerprint":' + strOrNull(e.sqlFingerprint)
    + ',"subjects":' + strArray(e.subjects)
    + ',"time":' + str(e.time)
    + '}';
}
