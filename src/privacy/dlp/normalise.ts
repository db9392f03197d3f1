/**
 * How a catalog value and a result cell are brought to one form before fingerprinting,
 * chosen by the column's tag. The same function runs on both sides, so `"Jane.Doe@Example.com "`
 * in a result matches `jane.doe@example.com` in the catalog, and `(212) 555-0173` matches
 * `+1 212 555 0173`.
 */

/** `email`: trim + lower-case. `phone`: digits only, a leading NANP `1` dropped from 11 digits.
 *  `digits`: digits only (SSNs, national IDs, card numbers). `text`: trim + lower-case. */
export const NORMALISER_KINDS = ['email', 'phone', 'digits', 'text'] as const;
export type NormaliserKind = (typeof NORMALISER_KINDS)[number];

const DIGIT_TAGS = /(?:^|\.)(?:ssn|sin|nhs(?:_number)?|national_id|passport|tax_id|card|card_number|pan|account_number|iban)$/;

/** The normaliser for a column tag such as `pii.email`, `pii.phone`, `pii.ssn`, `pii.name`. */
export function normaliserForTag(tag: string): NormaliserKind {
  const t = tag.toLowerCase();
  if (/(?:^|\.)e-?mail$/.test(t)) return 'email';
  if (/(?:^|\.)(?:phone|mobile|telephone|fax)$/.test(t)) return 'phone';
  if (DIGIT_TAGS.test(t)) return t.endsWith('iban') ? 'text' : 'digits';
  return 'text';
}

function digitsOnly(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 48 && c <= 57) out += value[i];
  }
  return out;
}

export function normalise(kind: NormaliserKind, value: string): string {
  switch (kind) {
    case 'email':
    case 'text':
      return value.trim().toLowerCase();
    case 'digits':
      return digitsOnly(value);
    case 'phone': {
      const d = digitsOnly(value);
      return d.length === 11 && d.charCodeAt(0) === 49 ? d.slice(1) : d;
    }
  }
}

/**
 * Tags whose values are not identifying on their own (many people share a birth date or a
 * postcode), so indexing them would flag every result that contains an ordinary date or
 * place. They are still protected by masks and the classification-level policy.
 */
export const LOW_CARDINALITY_TAGS: ReadonlySet<string> = new Set([
  'pii.dob', 'pii.date_of_birth', 'pii.birth_date', 'pii.location', 'pii.zip', 'pii.postcode',
  'pii.age', 'pii.sex', 'pii.gender', 'pii.city', 'pii.country',
]);

/** Whether values of a column with this tag belong in the SensitiveValueIndex by default. */
export function isIndexableTag(tag: string): boolean {
  return tag.startsWith('pii.') && !LOW_CARDINALITY_TAGS.has(tag);
}
