/**
 * Payment card numbers (PANs): 13–19 digits, an issuer identification number (IIN)
 * prefix of a major scheme with a length that scheme issues, and a valid Luhn check digit
 * (ISO/IEC 7812-1). IIN ranges as published by the schemes (summarised in Wikipedia,
 * "Payment card number", §Issuer identification number):
 * Visa 4 (13, 16, 19); Mastercard 51–55 and 2221–2720 (16); American Express 34, 37 (15);
 * Discover 6011, 644–649, 65 (16–19); Diners Club 300–305, 3095, 36, 38–39 (14–19);
 * JCB 3528–3589 (16–19); UnionPay 62 (16–19); Maestro 5018, 5020, 5038, 5893, 6304, 6759,
 * 6761–6763 (13–19); Mir 2200–2204 (16–19).
 *
 * Digits may be contiguous or grouped (first group of 4, groups of 3–6, one separator
 * kind: space or dash), which covers 4-4-4-4, 4-6-5 (Amex) and 4-6-4 (Diners). The IIN and
 * Luhn checks together leave roughly 1 in 10 × (share of prefixes that are IINs) of
 * random digit runs; decimals (`0.4111111111111111`) and longer digit runs are never
 * candidates. Missed: numbers split by other separators or across cells, and card numbers
 * stored as numeric cells (numbers are only checked against the catalog-value index).
 */
import { luhnValid } from '../luhn.ts';
import type { Detector } from '../types.ts';

const CANDIDATE = /(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)/g;

function inRange(digits: string, width: number, lo: number, hi: number): boolean {
  const p = Number(digits.slice(0, width));
  return p >= lo && p <= hi;
}

/** True when `digits` (13–19 ASCII digits) has a scheme IIN, a length the scheme issues, and a valid Luhn digit. */
export function validCardNumber(digits: string): boolean {
  const n = digits.length;
  if (n < 13 || n > 19 || !luhnValid(digits)) return false;
  const d1 = digits.charCodeAt(0) - 48;
  if (d1 === 4) return n === 13 || n === 16 || n === 19;
  if (inRange(digits, 2, 51, 55) || inRange(digits, 4, 2221, 2720)) return n === 16;
  if (inRange(digits, 2, 34, 34) || inRange(digits, 2, 37, 37)) return n === 15;
  const long = n >= 16;
  if (inRange(digits, 4, 6011, 6011) || inRange(digits, 3, 644, 649) || inRange(digits, 2, 65, 65)) return long;
  if (inRange(digits, 3, 300, 305) || inRange(digits, 4, 3095, 3095) || inRange(digits, 2, 36, 36) || inRange(digits, 2, 38, 39)) return n >= 14;
  if (inRange(digits, 4, 3528, 3589)) return long;
  if (inRange(digits, 2, 62, 62)) return long;
  if (inRange(digits, 4, 2200, 2204)) return long;
  const four = Number(digits.slice(0, 4));
  return four === 5018 || four === 5020 || four === 5038 || four === 5893 || four === 6304 || four === 6759 || (four >= 6761 && four <= 6763);
}

/** Separators, if any, must be one kind and split the number into plausible groups. */
function plausibleGrouping(candidate: string): boolean {
  const sep = candidate.includes(' ') ? ' ' : candidate.includes('-') ? '-' : '';
  if (sep === '') return true;
  const groups = candidate.split(sep);
  if (groups[0]!.length !== 4) return false;
  return groups.every((g) => g.length >= 3 && g.length <= 6 && /^\d+$/.test(g));
}

function matches(text: string): boolean {
  CANDIDATE.lastIndex = 0;
  for (let m = CANDIDATE.exec(text); m !== null; m = CANDIDATE.exec(text)) {
    const candidate = m[0];
    if (!plausibleGrouping(candidate)) continue;
    if (validCardNumber(candidate.replace(/[ -]/g, ''))) return true;
  }
  return false;
}

export const paymentCard: Detector = {
  id: 'payment_card',
  classification: 'regulated',
  requires: { digits: 13 },
  matches,
};
