/**
 * NHS numbers (England, Wales, Isle of Man) and the Scottish CHI and Northern Irish H&C
 * numbers that share their format: ten digits, check digit by modulus 11 (NHS Data
 * Dictionary, "NHS Number"): weights 10…2 on the first nine digits, check = 11 − (sum mod 11),
 * 11 → 0, 10 → the number is invalid.
 *
 * Found when written 3-3-4 with spaces or dashes anywhere in a cell, bare ten digits only
 * as the whole cell. The issuing ranges (which differ between England, Scotland and
 * Northern Ireland and have changed over time) are not checked, so recall does not depend
 * on them. A random ten-digit
 * string passes the check with probability ≈ 1/11, so a North American phone number
 * written 3-3-4 (same shape) is reported as an NHS number about 9 % of the time — an
 * accepted false positive, both are personal data.
 */
import type { Detector } from '../types.ts';

const FORMATTED = /(?<![\w-])(\d{3})([ -])(\d{3})\2(\d{4})(?![\w-])/g;
const WHOLE = /^\s*(\d{10})\s*$/;

export function validNhsNumber(digits: string): boolean {
  if (!/^\d{10}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += (digits.charCodeAt(i) - 48) * (10 - i);
  let check = 11 - (sum % 11);
  if (check === 11) check = 0;
  return check !== 10 && check === digits.charCodeAt(9) - 48;
}

function matches(text: string): boolean {
  const whole = WHOLE.exec(text);
  if (whole !== null) return validNhsNumber(whole[1]!);
  FORMATTED.lastIndex = 0;
  for (let m = FORMATTED.exec(text); m !== null; m = FORMATTED.exec(text)) {
    if (validNhsNumber(m[1]! + m[3]! + m[4]!)) return true;
  }
  return false;
}

export const ukNhsNumber: Detector = {
  id: 'uk_nhs_number',
  classification: 'regulated',
  requires: { digits: 10 },
  matches,
};
