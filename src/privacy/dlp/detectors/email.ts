/**
 * E-mail addresses: the common `local@domain.tld` form of RFC 5322 §3.4.1 addr-spec
 * (dot-atom local part, hostname labels per RFC 1035 §2.3.1, alphabetic TLD).
 *
 * Precision over recall: quoted local parts, IP-literal domains (`user@[192.0.2.1]`),
 * internationalised addresses and dotless domains (`root@localhost`) are not matched;
 * the TLD must be letters, so `pkg@1.2.3` and `a@b.c1` are not addresses. Known false
 * positives: retina asset names (`logo@2x.png`) and e-mail-shaped identifiers.
 */
import type { Detector } from '../types.ts';

// Local part ≤ 64 chars of atext (RFC 5322) minus rarely-seen symbols; each domain label
// starts and ends alphanumeric (≤ 63 chars); the lookarounds stop matches inside longer tokens.
const EMAIL = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9_%+-](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/;

export const email: Detector = {
  id: 'email',
  classification: 'confidential',
  requires: { at: 1, dots: 1, letters: 3, length: 6 },
  matches: (text) => EMAIL.test(text),
};
