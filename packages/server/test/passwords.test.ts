import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HASHING_SLOTS, hashesWaiting, hashPassword, verifyPassword } from '../src/domain/passwords.js';
import { addressKey } from '../src/domain/throttle.js';

describe('password hashing slots', () => {
  it('hashes at most HASHING_SLOTS at once; the rest wait and all finish', async () => {
    assert.ok(HASHING_SLOTS >= 1);
    // libuv's pool keeps two threads for token signing and verification.
    assert.ok(HASHING_SLOTS <= Math.max(1, (Number(process.env.UV_THREADPOOL_SIZE) || 4) - 2));
    const extra = 3;
    const passwords = Array.from({ length: HASHING_SLOTS + extra }, (_, i) => `slot test passphrase ${i}`);
    const finished: number[] = [];
    const hashes = passwords.map((p, i) =>
      hashPassword(p).then((h) => {
        finished.push(i);
        return h;
      }),
    );
    assert.equal(hashesWaiting(), extra);
    const done = await Promise.all(hashes);
    assert.equal(hashesWaiting(), 0);
    assert.equal(finished.length, passwords.length);
    for (const [i, h] of done.entries()) {
      assert.equal(await verifyPassword(h, passwords[i]!), true);
      assert.equal(await verifyPassword(h, `${passwords[i]}!`), false);
    }
  });

  it('a failed hash gives its slot back', async () => {
    const bad = await verifyPassword('not an argon2 hash', 'whatever passphrase');
    assert.equal(bad, false);
    assert.equal(hashesWaiting(), 0);
    const h = await hashPassword('still works afterwards');
    assert.equal(await verifyPassword(h, 'still works afterwards'), true);
  });
});

describe('the client a per-address limit counts', () => {
  it('is an IPv4 address itself, and an IPv6 address by its /64', () => {
    assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
    assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7', 'IPv4-mapped');
    for (const ip of ['2001:db8:0:1::1', '2001:0db8:0000:0001:ffff:ffff:ffff:ffff', '2001:db8:0:1:0:0:0:2'])
      assert.equal(addressKey(ip), '2001:db8:0:1::/64', ip);
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('64:ff9b::192.0.2.7'), '64:ff9b:0:0::/64', 'an embedded IPv4 tail');
    assert.notEqual(addressKey('2001:db8:0:1::1'), addressKey('2001:db8:0:2::1'));
  });
});
