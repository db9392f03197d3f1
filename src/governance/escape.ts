/**
 * Escaping for the markup Gatehouse writes by hand (the flow-map SVG, the HTML report).
 * Every string that reaches markup comes from users (dataset, organisation and principal
 * names, finding titles, reasons), so every one goes through `escapeXml`, text and
 * attribute alike. Characters XML 1.0 forbids (C0 controls other than tab/LF/CR, lone
 * surrogates, U+FFFE/U+FFFF) are replaced by U+FFFD so the output stays well-formed.
 */

const SPECIAL: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

// Not allowed in XML 1.0 documents: C0 controls except \t \n \r, U+FFFE, U+FFFF, unpaired surrogates.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text or attribute value, safe inside XML, SVG and HTML (quoted attributes). */
export function escapeXml(value: string): string {
  return value.replace(FORBIDDEN, '\uFFFD').replace(/[&<>"']/g, (c) => SPECIAL[c]!);
}

/** Shortens to at most `max` characters (code points, never splitting a surrogate pair), with an ellipsis. */
export function truncate(value: string, max: number): string {
  if (value.length <= max) return value;
  const chars = Array.from(value.slice(0, 2 * max + 2)); // bounded work on huge strings
  return chars.length <= max ? chars.join('') : chars.slice(0, Math.max(1, max - 1)).join('') + '…';
}
