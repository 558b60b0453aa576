// Sealing (AES-256-GCM) of what the stores keep encrypted: signing keys, queued mails.
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { seal, unseal } from '../src/util/crypto.js';

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
