// The one error-code list: the server's ERROR_CODES, which the client's copy is generated from.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { describeError, errorFrom, SERVER_ERROR_CODES } from '../../client/src/index.js';
import { CLIENT_CODES_FILE, clientCodesModule } from '../scripts/client-codes.js';
import { ERROR_CODES, statusOf } from '../src/errors.js';

describe('error codes', () => {
  it('the client file is the one ERROR_CODES generates (npm run codes:client)', () => {
    assert.equal(readFileSync(CLIENT_CODES_FILE, 'utf8'), clientCodesModule());
    assert.deepEqual([...SERVER_ERROR_CODES], [...ERROR_CODES]);
  });

  it('every server code reaches the client as itself, with a message for people', async () => {
    const fallback = describeError(undefined);
    for (const code of ERROR_CODES) {
      const status = statusOf(code);
      const res = new Response(JSON.stringify({ error: code, message: 'from the server' }), { status });
      const err = await errorFrom(res);
      assert.equal(err.code, code);
      assert.equal(err.status, status);
      const text = describeError(err);
      assert.ok(text.length > 0 && text !== fallback, `${code} has its own message`);
    }
  });

  it('a code the server does not have arrives as http_error', async () => {
    const err = await errorFrom(new Response(JSON.stringify({ error: 'something_new' }), { status: 418 }));
    assert.equal(err.code, 'http_error');
  });
});
