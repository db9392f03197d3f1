/**
 * US Social Security Numbers, AAA-GG-SSSS. Validity per the Social Security
 * Administration (Program Operations Manual System RM 10201.070 and the 2011 "SSN
 * Randomization" notice): area 001–899 except 666, group 01–99, serial 0001–9999; areas
 * 900–999 are never issued (ITINs and advertising numbers live there).
 *
 * Found anywhere in a cell when written 3-2-4 with dashes or spaces (`078-05-1120`,
 * `123 45 6789`); bare nine digits only when the digits are the whole cell or follow an
 * "SSN"/"social security" label in the same cell. There is no checksum: about 89 % of
 * random nine-digit strings are valid SSNs, so bare nine-digit identifiers elsewhere in
 * text are deliberately not matched (recall loss: an unlabelled SSN inside free text
 * without separators is missed). Dates (`1999-12-31`, `12-31-1999`) do not have the
 * 3-2-4 shape and never match.
 */
import type { Detector } from '../types.ts';

const FORMATTED = /(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w-])/g;
const WHOLE = /^\s*(\d{3})(\d{2})(\d{4})\s*$/;
const LABELLED = /(?:\bssn|social security(?: number| no\.?)?)\W{0,3}(\d{3})(\d{2})(\d{4})(?!\d)/gi;

export function validSsn(area: string, group: string, serial: string): boolean {
  if (area === '000' || area === '666' || area.charCodeAt(0) === 57) return false;
  return group !== '00' && serial !== '0000';
}

function anyValid(re: RegExp, text: string, a: number, g: number, s: number): boolean {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (validSsn(m[a]!, m[g]!, m[s]!)) return true;
  }
  return false;
}

function matches(text: string): boolean {
  const whole = WHOLE.exec(text);
  if (whole !== null) return validSsn(whole[1]!, whole[2]!, whole[3]!);
  return anyValid(FORMATTED, text, 1, 3, 4) || anyValid(LABELLED, text, 1, 2, 3);
}

export const usSsn: Detector = {
  id: 'us_ssn',
  classification: 'regulated',
  requires: { digits: 9 },
  matches,
};
