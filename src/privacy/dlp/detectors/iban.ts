/**
 * International Bank Account Numbers, ISO 13616-1:2020: a country code, two check digits
 * and a country-specific BBAN, validated by ISO/IEC 7064 MOD 97-10 (the number with its
 * first four characters moved to the end and letters read as 10–35 is ≡ 1 mod 97) and
 * by the exact length the SWIFT IBAN Registry fixes for the country (registry as of 2025,
 * including the 2023–2024 additions DJ, FK, HN, MN, NI, OM, RU, SO, YE).
 *
 * Electronic form (`GB82WEST12345698765432`) and print form in groups separated by single
 * spaces are found anywhere in a cell. Country code and BBAN letters must be upper case
 * (the registry's form); lower-case IBANs are missed. MOD 97-10 catches all single
 * substitutions and transpositions; with the length check a random string passes with
 * probability ≈ 1/97 only if it already has the exact registered shape.
 */
import type { Detector } from '../types.ts';

/** Total IBAN length per country, SWIFT IBAN Registry. */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

// Country code and check digits, then at least 11 more characters with optional single spaces.
const CANDIDATE = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}/g;

/** ISO 7064 MOD 97-10 over an upper-case, space-free IBAN. */
export function ibanChecksumValid(iban: string): boolean {
  let r = 0;
  const n = iban.length;
  for (let k = 0; k < n; k++) {
    const c = iban.charCodeAt((k + 4) % n);
    if (c >= 48 && c <= 57) r = (r * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) r = (r * 100 + (c - 55)) % 97;
    else return false;
  }
  return r === 1;
}

export function validIban(iban: string): boolean {
  const length = IBAN_LENGTHS[iban.slice(0, 2)];
  return length !== undefined && iban.length === length && ibanChecksumValid(iban);
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isIbanChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90);
}

function matches(text: string): boolean {
  CANDIDATE.lastIndex = 0;
  for (let m = CANDIDATE.exec(text); m !== null; m = CANDIDATE.exec(text)) {
    const start = m.index;
    const length = IBAN_LENGTHS[m[0].slice(0, 2)];
    // Take exactly `length` characters, skipping single spaces between groups; the next
    // character must not continue the token, so "… 7654 32 PAID" stops before "PAID".
    let compact = '';
    let i = start;
    if (length !== undefined) {
      for (; i < text.length && compact.length < length; i++) {
        const c = text.charCodeAt(i);
        if (isIbanChar(c)) compact += text[i];
        else if (c !== 32 || !isIbanChar(text.charCodeAt(i + 1))) break;
      }
    }
    const bounded = i >= text.length || !isAlnum(text.charCodeAt(i));
    if (length !== undefined && compact.length === length && bounded && ibanChecksumValid(compact)) return true;
    CANDIDATE.lastIndex = start + 1;
  }
  return false;
}

export const iban: Detector = {
  id: 'iban',
  classification: 'regulated',
  requires: { length: 15, upper: 2, digits: 2 },
  matches,
};
