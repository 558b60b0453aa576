/**
 * The one rule for `next`, the place to go after signing in: a path on this server. The server
 * (provider sign-in, the sign-in page) and the pages' script in the browser both import it, so
 * what one accepts the other does too. No imports: it is bundled into the browser script as is.
 */

/** The longest `next` taken (an OAuth authorization request that continues after sign-in fits). */
export const NEXT_MAX_LENGTH = 2048;

const BASE = 'http://next.invalid';

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * `next` when it is a path on this server, else undefined. Refused: anything but a string of
 * printable ASCII (no spaces, control characters or other scripts: browsers drop tabs and line
 * breaks, so `/\t/host` would be `//host`) that starts with one `/`; `//host` and `/\host`
 * (browsers read both as another site); a path that says `//` or `/\` at its start, or holds a
 * control character, once percent-decoded, up to three times (a proxy or a later page may decode
 * it); anything the URL parser does not keep on this origin with a path starting with a single `/`;
 * and the API under `/auth/` (a page sends the browser to `next` without a click, which would make
 * a link from another site a same-origin request there, such as starting a provider link).
 */
export function localPath(next: unknown): string | undefined {
  if (typeof next !== 'string' || next.length > NEXT_MAX_LENGTH) return undefined;
  if (!/^\/[\x21-\x7e]*$/.test(next)) return undefined;
  let path = next.split(/[?#]/, 1)[0] ?? '';
  for (let round = 0; ; round++) {
    if (/^\/[/\\]/.test(path) || hasControl(path)) return undefined;
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return undefined;
    }
    if (decoded === path) break;
    if (round === 3) return undefined;
    path = decoded;
  }
  let url: URL;
  try {
    url = new URL(next, BASE);
  } catch {
    return undefined;
  }
  if (url.origin !== BASE || url.pathname.startsWith('//')) return undefined;
  const API = /^\/auth(\/|$)/i;
  if (API.test(url.pathname) || API.test(new URL(path, BASE).pathname)) return undefined;
  return next;
}
