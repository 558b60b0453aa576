// The one `next` rule that the server and the pages' script share (src/util/next-path.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localPath, NEXT_MAX_LENGTH } from '../src/util/next-path.js';

const TAKEN = [
  '/',
  '/account',
  '/account?tab=1#sessions',
  '/oauth/authorize?client_id=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=a%20b%2F%2Fc',
  '/a/b/../c',
  '/caf%C3%A9',
  '/authorize-later',
  `/${'x'.repeat(NEXT_MAX_LENGTH - 1)}`,
];

const REFUSED: [string, unknown][] = [
  ['not a string', 42],
  ['empty', ''],
  ['relative', 'account'],
  ['absolute URL', 'https://evil.example/'],
  ['absolute URL, another scheme', 'javascript:alert(1)'],
  ['scheme-relative', '//evil.example/x'],
  ['backslash', '/\\evil.example'],
  ['backslash twice', '\\\\evil.example'],
  ['tab that browsers drop', '/\t/evil.example'],
  ['line break', '/\n/evil.example'],
  ['carriage return', '/\r/evil.example'],
  ['NUL', '/\0'],
  ['space', '/ /evil.example'],
  ['non-ASCII', '/\uff0f\uff0fevil.example'],
  ['encoded slash', '/%2F/evil.example'],
  ['encoded slashes', '/%2f%2fevil.example'],
  ['encoded backslash', '/%5Cevil.example'],
  ['encoded twice', '/%252F/evil.example'],
  ['encoded three times', '/%25252F/evil.example'],
  ['encoded four times', '/%2525252Fx'],
  ['encoded tab', '/%09/evil.example'],
  ['encoded line break', '/x%0Ay'],
  ['broken escape', '/%E0%A4%A'],
  ['dot segment to //', '/.//evil.example'],
  ['dot-dot segment to //', '/..//evil.example'],
  ['encoded dots to //', '/%2e%2e//evil.example'],
  ['too long', `/${'x'.repeat(NEXT_MAX_LENGTH)}`],
  ['the API: starting a provider link', '/auth/providers/corp/start?link=1'],
  ['the API, by another case', '/AUTH/providers/corp/start?link=1'],
  ['the API, by a dot segment', '/x/../auth/logout'],
  ['the API, encoded', '/%61uth/providers/corp/start?link=1'],
  ['the API itself', '/auth'],
];

describe('next: a path on this server', () => {
  for (const next of TAKEN) {
    it(`takes ${JSON.stringify(next.slice(0, 60))}`, () => {
      assert.equal(localPath(next), next);
    });
  }
  for (const [why, next] of REFUSED) {
    it(`refuses ${why}`, () => {
      assert.equal(localPath(next), undefined);
    });
  }
});
