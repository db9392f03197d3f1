/**
 * IPv6 addresses in the text forms of RFC 4291 §2.2 (full, `::`-compressed, and with an
 * embedded IPv4 suffix) and RFC 5952, optionally with a zone (`fe80::1%eth0`, RFC 6874).
 * Candidates are maximal runs of hex digits, colons and dots; each is validated by
 * node:net's `isIPv6`, so the grammar is the platform's, not a hand-written regex.
 *
 * Not reported: `::` (unspecified) and `::1` (loopback). Times (`12:30:45`) and MAC
 * addresses (`00:1a:2b:3c:4d:5e`) are not valid IPv6 and never match; a hex-only
 * C++-style name (`dead::beef`) is valid IPv6 and would be reported. Bracketed URL hosts
 * (`[2001:db8::1]:443`) are matched.
 */
import { isIPv6 } from 'node:net';
import type { Detector } from '../types.ts';

// One maximal run (no backtracking between overlapping classes) with an optional zone.
const CANDIDATE = /(?<![0-9A-Za-z_:.%])[0-9A-Fa-f:.]{2,45}(?:%[0-9A-Za-z_.-]{1,32})?(?![0-9A-Za-z_:])/g;

function matches(text: string): boolean {
  CANDIDATE.lastIndex = 0;
  for (let m = CANDIDATE.exec(text); m !== null; m = CANDIDATE.exec(text)) {
    let candidate = m[0];
    const zone = candidate.indexOf('%');
    const address = zone === -1 ? candidate : candidate.slice(0, zone);
    if (address.indexOf(':') === address.lastIndexOf(':')) continue;
    candidate = address.endsWith('.') ? address.replace(/\.+$/, '') : address;
    if (candidate === '::' || candidate === '::1') continue;
    if (isIPv6(candidate)) return true;
  }
  return false;
}

export const ipv6: Detector = {
  id: 'ipv6',
  classification: 'confidential',
  requires: { colons: 2, length: 3 },
  matches,
};
