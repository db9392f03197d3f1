/**
 * Canadian Social Insurance Numbers: nine digits with a Luhn check digit (Employment and
 * Social Development Canada, "Social Insurance Number – Code of Practice", and CRA's
 * published validation). The first digit is the region of registration, 1–7 or 9
 * (temporary residents); 0 is reserved for fictitious numbers and 8 for business numbers,
 * so both are ignored.
 *
 * Written 3-3-3 with spaces or dashes anywhere in a cell; bare nine digits only as the
 * whole cell. About 1 in 10 random nine-digit strings with an allowed first digit pass, so a
 * bare nine-digit cell is a weak signal (it is also reported by us_ssn when in range).
 */
import { luhnValid } from '../luhn.ts';
import type { Detector } from '../types.ts';

const FORMATTED = /(?<![\w-])(\d{3})([ -])(\d{3})\2(\d{3})(?![\w-])/g;
const WHOLE = /^\s*(\d{9})\s*$/;

export function validSin(digits: string): boolean {
  if (!/^[1-79]\d{8}$/.test(digits)) return false;
  return luhnValid(digits);
}

function matches(text: string): boolean {
  const whole = WHOLE.exec(text);
  if (whole !== null) return validSin(whole[1]!);
  FORMATTED.lastIndex = 0;
  for (let m = FORMATTED.exec(text); m !== null; m = FORMATTED.exec(text)) {
    if (validSin(m[1]! + m[3]! + m[4]!)) return true;
  }
  return false;
}

export const caSin: Detector = {
  id: 'ca_sin',
  classification: 'regulated',
  requires: { digits: 9 },
  matches,
};
