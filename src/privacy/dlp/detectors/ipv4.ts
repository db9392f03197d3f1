/**
 * IPv4 addresses in dotted-decimal form (RFC 791; the "dotted-quad" of RFC 3986 §3.2.2:
 * four decimal octets 0–255, no leading zeros). Host addresses only: 0.0.0.0/8
 * ("this network"), 127.0.0.0/8 (loopback) and 224.0.0.0 and above (multicast, reserved,
 * netmasks such as 255.255.255.0) are not reported.
 *
 * Version strings are the main false-positive risk. Not matched: three or five parts
 * (`1.2.3`, `1.2.3.4.5`), a prefix letter or dash (`v1.2.3.4`, `release-1.2.3.4`), a
 * pre-release suffix (`1.2.3.4-rc1`), leading zeros (`01.02.03.04`). A bare four-part
 * version such as `1.2.3.4` *is* a syntactically valid public address and is reported —
 * the accepted cost of catching real addresses. Addresses with a port (`:8080`) or
 * prefix length (`/24`) are matched. Missed: non-dotted forms (`0xC0A80001`, `3232235521`).
 */
import type { Detector } from '../types.ts';

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`(?<![\\w.-])${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}(?![\\w-]|\\.\\d)`, 'g');

function matches(text: string): boolean {
  IPV4.lastIndex = 0;
  for (let m = IPV4.exec(text); m !== null; m = IPV4.exec(text)) {
    const first = Number(m[1]);
    if (first !== 0 && first !== 127 && first < 224) return true;
  }
  return false;
}

export const ipv4: Detector = {
  id: 'ipv4',
  classification: 'confidential',
  requires: { dots: 3, digits: 4 },
  matches,
};
