// Vectors: RFC 4231 §4.2, §4.3 and §4.7 (HMAC-SHA-256).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { hmacSha256, hmacSha256Pads } from './hmac.ts';

const mac = (key: Buffer, data: Buffer) => hmacSha256(hmacSha256Pads(key), data).toString('hex');

test('RFC 4231 test cases 1, 2 and 6 (a key longer than the block) give the published MACs', () => {
  assert.equal(mac(Buffer.alloc(20, 0x0b), Buffer.from('Hi There')), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
  assert.equal(mac(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  assert.equal(mac(Buffer.alloc(131, 0xaa), Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First')), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
});

test('the precomputed-pad MAC equals node:crypto createHmac for random keys and messages', () => {
  for (let i = 0; i < 200; i++) {
    const key = randomBytes(32);
    const data = randomBytes(i);
    assert.equal(mac(key, data), createHmac('sha256', key).update(data).digest('hex'));
  }
});
