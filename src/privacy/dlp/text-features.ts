/**
 * One pass over a cell's UTF-16 code units counting the characters detectors gate on.
 * The scanner reuses one `TextFeatures` object per scan to avoid allocating per cell.
 */
import type { TextFeatures } from './types.ts';

export function emptyFeatures(): TextFeatures {
  return { length: 0, digits: 0, letters: 0, upper: 0, at: 0, dots: 0, colons: 0, plus: 0 };
}

/** Fills `into` with the counts for `text` and returns it. */
export function textFeatures(text: string, into: TextFeatures = emptyFeatures()): TextFeatures {
  let digits = 0, letters = 0, upper = 0, at = 0, dots = 0, colons = 0, plus = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c >= 65 && c <= 90) { upper++; letters++; }
    else if (c >= 97 && c <= 122) letters++;
    else if (c === 46) dots++;
    else if (c === 58) colons++;
    else if (c === 64) at++;
    else if (c === 43) plus++;
  }
  into.length = n;
  into.digits = digits;
  into.letters = letters;
  into.upper = upper;
  into.at = at;
  into.dots = dots;
  into.colons = colons;
  into.plus = plus;
  return into;
}

/** True when every count in `features` is at least the one `requires` names. */
export function meetsRequirements(features: TextFeatures, requires: Readonly<Partial<TextFeatures>>): boolean {
  for (const key of Object.keys(requires) as (keyof TextFeatures)[]) {
    if (features[key] < requires[key]!) return false;
  }
  return true;
}
