import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { ipv6 } from './ipv6.ts';

test('IPv6 addresses are found full, compressed, with an IPv4 tail, a zone, or in brackets', () => {
  for (const s of ['2001:0db8:85a3:0000:0000:8a2e:0370:7334', '2001:db8::1', 'fe80::1%eth0', '::ffff:192.0.2.128', 'https://[2001:db8::42]:443/', 'from 2001:DB8:0:0:8:800:200C:417A.']) {
    assert.ok(finds(ipv6, s), s);
  }
});

test('times, MAC addresses, ratios, loopback and malformed addresses are not reported', () => {
  for (const s of ['12:30:45', '00:1a:2b:3c:4d:5e', '1:2:3', '::', '::1', '2001:db8:::1', '2001:db8::g1', '1:2:3:4:5:6:7:8:9', 'std::vector', 'a:b']) {
    assert.ok(!finds(ipv6, s), s);
  }
});
