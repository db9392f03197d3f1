/**
 * Telephone numbers: North American Numbering Plan numbers (NANPA, "NANP Numbering
 * Resources": NXX-NXX-XXXX where N is 2–9) and international numbers in ITU-T E.164
 * form (`+` country code and subscriber number, at most 15 digits).
 *
 * NANP: the area code and exchange must start with 2–9 and not be an N11 service code;
 * 555-0100…555-0199 (reserved for fiction) are ignored. A separator-formatted number
 * (`(212) 555-0173`, `212.555.0173`, `+1 212 555 0173`) is found anywhere in a cell; a bare
 * ten-digit run only when it is the whole cell, because ten-digit identifiers are common.
 * E.164: `+` then 8–15 digits (single space, dot or dash separators allowed); the
 * country code is not checked against the ITU list, so `+` followed by a long number
 * (e.g. a signed quantity "+12345678") is a known false positive; `+1` numbers must also
 * be valid NANP numbers. Numbers written in national format outside NANP (`020 7946 0958`)
 * are missed.
 */
import type { Detector } from '../types.ts';

const NANP_FORMATTED = /(?<![\w+])(?:(\+?1)[ .-]?)?(?:\(([2-9]\d\d)\) ?|([2-9]\d\d)[ .-])([2-9]\d\d)[ .-](\d{4})(?![\w-]|[.,]\d)/g;
const NANP_WHOLE = /^\s*(?:\+?1)?([2-9]\d\d)([2-9]\d\d)(\d{4})\s*$/;
const E164 = /(?<![\w+])\+([1-9](?:[ .-]?\d){7,14})(?![\w-]|[.,]\d)/g;

function isN11(code: string): boolean {
  return code.charCodeAt(1) === 49 && code.charCodeAt(2) === 49;
}

function validNanp(area: string, exchange: string, line: string): boolean {
  if (isN11(area) || isN11(exchange)) return false;
  return !(exchange === '555' && line.startsWith('01'));
}

function matches(text: string): boolean {
  const whole = NANP_WHOLE.exec(text);
  if (whole !== null && validNanp(whole[1]!, whole[2]!, whole[3]!)) return true;
  NANP_FORMATTED.lastIndex = 0;
  for (let m = NANP_FORMATTED.exec(text); m !== null; m = NANP_FORMATTED.exec(text)) {
    if (validNanp(m[2] ?? m[3]!, m[4]!, m[5]!)) return true;
  }
  E164.lastIndex = 0;
  for (let m = E164.exec(text); m !== null; m = E164.exec(text)) {
    const digits = m[1]!.replace(/\D/g, '');
    if (digits.length < 8 || digits.length > 15) continue;
    if (digits.charCodeAt(0) === 49) {
      if (digits.length === 11 && /^1[2-9]\d\d[2-9]\d\d\d{4}$/.test(digits) && validNanp(digits.slice(1, 4), digits.slice(4, 7), digits.slice(7))) return true;
      continue;
    }
    return true;
  }
  return false;
}

export const phone: Detector = {
  id: 'phone',
  classification: 'confidential',
  requires: { digits: 8 },
  matches,
};
