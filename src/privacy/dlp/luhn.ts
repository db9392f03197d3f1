/**
 * The Luhn (mod 10) check digit algorithm, ISO/IEC 7812-1 Annex B; used by payment card
 * numbers and Canadian Social Insurance Numbers. Catches every single-digit error and
 * most adjacent transpositions; a random digit string passes with probability 1/10.
 */

/** True when the ASCII digit string `digits` (check digit last) passes the Luhn check. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}
