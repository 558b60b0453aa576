// Strict base64url: alphabet [A-Za-z0-9_-] only, no padding, canonical trailing bits.
// Buffer.from(s, 'base64url') alone silently skips junk characters, which would let many
// different strings decode to the same bytes.

const VALUE = new Int8Array(128).fill(-1);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

const B64URL = /^[A-Za-z0-9_-]*$/;

/** True when `s` is canonical unpadded base64url (the empty string included). */
export function isStrictBase64url(s: string): boolean {
  const rem = s.length & 3;
  if (rem === 1) return false;
  if (!B64URL.test(s)) return false;
  if (rem === 0) return true;
  const last = VALUE[s.charCodeAt(s.length - 1)]!;
  // 2 chars carry 8 bits (4 spare), 3 chars carry 16 bits (2 spare): spare bits must be 0.
  return (last & (rem === 2 ? 0x0f : 0x03)) === 0;
}

/** Decodes canonical base64url, or returns undefined. */
export function decodeStrict(s: string): Buffer | undefined {
  return isStrictBase64url(s) ? Buffer.from(s, 'base64url') : undefined;
}
