// Sealing (AES-256-GCM) of what the stores keep encrypted, the HMAC every derived value uses, and random values.
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { refreshSuccessor } from '../src/domain/secrets.js';
import { hmac, randomId, randomToken, seal, unseal } from '../src/util/crypto.js';

describe('seal and unseal', () => {
  const key = randomBytes(32);

  it('open what they sealed, under the same key and context only', () => {
    const sealed = seal(Buffer.from('a private key'), key, 'row-1');
    assert.equal(unseal(sealed, key, 'row-1').toString(), 'a private key');
    assert.throws(() => unseal(sealed, key, 'row-2'));
    assert.throws(() => unseal(sealed, randomBytes(32), 'row-1'));
  });

  it('refuse a cut-down authentication tag, which GCM alone would take', () => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 4 });
    const body = Buffer.concat([cipher.update(Buffer.from('forged')), cipher.final()]);
    const short = ['v1', iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
    assert.throws(() => unseal(short, key), /unknown encryption format/);
    const full = seal(Buffer.from('x'), key).split('.');
    full[2] = Buffer.from(full[2]!, 'base64url').subarray(0, 8).toString('base64url');
    assert.throws(() => unseal(full.join('.'), key), /unknown encryption format/);
  });
});

describe('MACs and random values', () => {
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

  it('HMAC each part followed by a NUL, as every CSRF token and derived refresh token already out there was made', () => {
    // Known answers (computed apart from this code): a change here would break every outstanding
    // CSRF token and every retry within the grace window at the next deploy.
    assert.equal(hmac(key, 'csrf', 'session-1'), 'K-X_fomXiBpjVZy3F5arLlr623oasb-RrIr4BMLCTik');
    assert.deepEqual(refreshSuccessor(key, 'parent-id', 'parent-secret'), {
      id: 'BAqymddH70kamuHnIyrWnn',
      secret: '5gPwE0mHNmOM-uRcZAwBXR_U57n0UcMN432_kzVn9PY',
    });
    assert.notEqual(hmac(Buffer.alloc(32, 1), 'csrf', 'session-1'), hmac(key, 'csrf', 'session-1'));
  });

  it('hand out random ids and tokens once each, across refills of their pool', () => {
    const seen = new Set<string>();
    // 16 + 32 bytes a turn: well past the 4 KiB pool many times over.
    for (let i = 0; i < 2000; i++) {
      for (const value of [randomId(), randomToken(32)]) {
        assert.ok(!seen.has(value), 'never handed out twice');
        seen.add(value);
      }
    }
    assert.equal(Buffer.from(randomId(), 'base64url').length, 16);
    assert.equal(Buffer.from(randomToken(32), 'base64url').length, 32);
    const zero16 = Buffer.alloc(16).toString('base64url');
    assert.ok(!seen.has(zero16), 'no zeroed (already handed out) bytes come back');
    const big = randomToken(1000);
    assert.equal(Buffer.from(big, 'base64url').length, 1000);
    assert.notEqual(big, randomToken(1000));
  });
});
