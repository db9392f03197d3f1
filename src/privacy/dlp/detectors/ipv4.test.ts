import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finds } from '../testing.ts';
import { ipv4 } from './ipv4.ts';

test('host addresses are found alone, with a port or prefix length, and in log lines', () => {
  for (const s of ['192.168.1.20', '203.0.113.7:8080', '10.0.0.0/8', 'GET / from 198.51.100.42 200', '8.8.8.8', 'seen from 203.0.113.7.']) {
    assert.ok(finds(ipv4, s), s);
  }
});

test('version strings and other dotted numbers are not addresses', () => {
  for (const s of ['1.2.3', '1.2.3.4.5', 'v1.2.3.4', 'release-1.2.3.4', '1.2.3.4-rc1', '1.2.3.4b', '01.02.03.04', '256.1.1.1', '3.14159', '2024.01.15']) {
    assert.ok(!finds(ipv4, s), s);
  }
});

test('non-host addresses are not reported: this-network 0/8, loopback, multicast, netmasks', () => {
  for (const s of ['0.0.0.0', '0.9.1.2', '127.0.0.1', '224.0.0.251', '255.255.255.0']) {
    assert.ok(!finds(ipv4, s), s);
  }
});

test('a bare four-part version number is a documented false positive', () => {
  assert.ok(finds(ipv4, '1.2.3.4'));
});
