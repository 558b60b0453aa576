import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** base64url of `bytes` random bytes from the CSPRNG. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** An id for rows that are named in URLs: 128 random bits. */
export function randomId(): string {
  return randomBytes(16).toString('base64url');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

export function hmac(key: Buffer, ...parts: string[]): string {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part).update('\u0000');
  return mac.digest('base64url');
}

/** Constant-time string comparison; different lengths compare unequal without early exit on content. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

const ID_SECRET = /^([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{16,128})$/;

/** Splits an opaque `id.secret` token; undefined when it is not shaped like one. */
export function splitIdSecret(token: unknown): { id: string; secret: string } | undefined {
  if (typeof token !== 'string' || token.length > 200) return undefined;
  const m = ID_SECRET.exec(token);
  if (!m) return undefined;
  return { id: m[1]!, secret: m[2]! };
}
