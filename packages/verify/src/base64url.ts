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

/** Bytes that `chars` canonical base64url characters decode to (chars % 4 must not be 1). */
export function decodedLength(chars: number): number {
  return (chars >> 2) * 3 + ((chars & 3) === 0 ? 0 : (chars & 3) - 1);
}

/**
 * Decodes `s.slice(start, end)` as canonical unpadded base64url into `out` from index 0, in one
 * pass that also validates (same acceptance as isStrictBase64url). Returns the number of bytes
 * written, or -1 when the text is not canonical base64url. `out` must hold decodedLength(end - start)
 * bytes. Hot path of the verifier: no slice of the token, no allocation, no call into C++.
 */
export function decodeStrictInto(s: string, start: number, end: number, out: Uint8Array): number {
  const len = end - start;
  const rem = len & 3;
  if (len < 0 || rem === 1) return -1;
  const full = end - rem;
  let o = 0;
  let i = start;
  for (; i < full; i += 4) {
    const a = s.charCodeAt(i);
    const b = s.charCodeAt(i + 1);
    const c = s.charCodeAt(i + 2);
    const d = s.charCodeAt(i + 3);
    if ((a | b | c | d) > 127) return -1;
    const va = VALUE[a]!;
    const vb = VALUE[b]!;
    const vc = VALUE[c]!;
    const vd = VALUE[d]!;
    if ((va | vb | vc | vd) < 0) return -1;
    const x = (va << 18) | (vb << 12) | (vc << 6) | vd;
    out[o] = x >> 16;
    out[o + 1] = (x >> 8) & 0xff;
    out[o + 2] = x & 0xff;
    o += 3;
  }
  if (rem === 0) return o;
  const a = s.charCodeAt(i);
  const b = s.charCodeAt(i + 1);
  if ((a | b) > 127) return -1;
  const va = VALUE[a]!;
  const vb = VALUE[b]!;
  if ((va | vb) < 0) return -1;
  if (rem === 2) {
    if ((vb & 0x0f) !== 0) return -1;
    out[o] = (va << 2) | (vb >> 4);
    return o + 1;
  }
  const c = s.charCodeAt(i + 2);
  if (c > 127) return -1;
  const vc = VALUE[c]!;
  if (vc < 0 || (vc & 0x03) !== 0) return -1;
  out[o] = (va << 2) | (vb >> 4);
  out[o + 1] = ((vb & 0x0f) << 4) | (vc >> 2);
  return o + 2;
}
