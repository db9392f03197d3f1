/** Every pattern detector, in the order the scanner runs them and redaction names them. */
import type { Detector } from '../types.ts';
import { caSin } from './ca-sin.ts';
import { email } from './email.ts';
import { esDni } from './es-dni.ts';
import { iban } from './iban.ts';
import { ipv4 } from './ipv4.ts';
import { ipv6 } from './ipv6.ts';
import { paymentCard } from './payment-card.ts';
import { phone } from './phone.ts';
import { ukNhsNumber } from './uk-nhs-number.ts';
import { usSsn } from './us-ssn.ts';

export const DETECTORS: readonly Detector[] = [
  paymentCard, usSsn, ukNhsNumber, caSin, esDni, iban, email, phone, ipv4, ipv6,
];

export const DETECTORS_BY_ID: ReadonlyMap<string, Detector> = new Map(DETECTORS.map((d) => [d.id, d]));
