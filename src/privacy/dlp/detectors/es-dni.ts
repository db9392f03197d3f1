/**
 * Spanish national identity numbers: DNI (eight digits and a control letter) and NIE
 * (foreigners: X, Y or Z, seven digits, control letter). The letter is
 * "TRWAGMYFPDXBNJZSQVHLCKE"[n mod 23], with the NIE prefix read as 0, 1 or 2
 * (Real Decreto 1553/2005, art. 11; Ministerio del Interior, "Cálculo del dígito de control
 * del NIF/NIE").
 *
 * An optional dash or space before the letter is accepted; the letter may be lower-case.
 * A random eight-digit-plus-letter token passes with probability 1/23. Missed: the
 * K/L/M-prefixed NIFs and company CIFs (different check rules).
 */
import type { Detector } from '../types.ts';

const LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';
const DNI = /(?<![\w-])([XYZxyz]?)[ -]?(\d{7,8})[ -]?([A-Za-z])(?![\w-])/g;

export function validDni(prefix: string, digits: string, letter: string): boolean {
  const p = prefix.toUpperCase();
  let number: string;
  if (p === '') {
    if (digits.length !== 8) return false;
    number = digits;
  } else {
    if (digits.length !== 7) return false;
    number = String('XYZ'.indexOf(p)) + digits;
  }
  return LETTERS[Number(number) % 23] === letter.toUpperCase();
}

function matches(text: string): boolean {
  DNI.lastIndex = 0;
  for (let m = DNI.exec(text); m !== null; m = DNI.exec(text)) {
    if (validDni(m[1]!, m[2]!, m[3]!)) return true;
  }
  return false;
}

export const esDni: Detector = {
  id: 'es_dni',
  classification: 'regulated',
  requires: { digits: 7, letters: 1 },
  matches,
};
