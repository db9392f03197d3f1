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
