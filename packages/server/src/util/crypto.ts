import * as nodeCrypto from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
} from 'node:crypto';

/** One-shot hashing (Node 20.12 and later): a session read hashes its token without a Hash object. */
const oneShot: typeof nodeCrypto.hash | undefined = nodeCrypto.hash;

const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

/**
 * base64url of `bytes` random bytes from the CSPRNG, drawn from a pool filled 4 KiB at a time: a
 * refresh needs a few small draws, and each call into OpenSSL costs more than the bytes. Every
 * byte is handed out once; the pool lives in this process only, as the bytes it hands out do.
 */
export function randomToken(bytes = 32): string {
  if (bytes > 256) return randomBytes(bytes).toString('base64url');
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const text = pool.toString('base64url', poolOffset, poolOffset + bytes);
  pool.fill(0, poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return text;
}

/** An id for rows that are named in URLs: 128 random bits. */
export function randomId(): string {
  return randomToken(16);
}

export function sha256(text: string): string {
  return oneShot !== undefined
    ? oneShot('sha256', text, 'base64url')
    : createHash('sha256').update(text).digest('base64url');
}

/** The key objects of the HMAC keys (a few, for the process's life): made once, not per MAC. */
const hmacKeys = new WeakMap<Buffer, KeyObject>();

/** HMAC-SHA-256 over `parts`, each followed by a NUL, base64url. */
export function hmac(key: Buffer, ...parts: string[]): string {
  let keyObject = hmacKeys.get(key);
  if (keyObject === undefined) {
    keyObject = createSecretKey(key);
    hmacKeys.set(key, keyObject);
  }
  return createHmac('sha256', keyObject)
    .update(`${parts.join('\u0000')}\u0000`)
    .digest('base64url');
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

/**
 * AES-256-GCM under `key`, as `v1.iv.tag.body` (base64url parts). `context` is authenticated
 * but not stored: a sealed value opens only with the same context (a row's id, say).
 */
export function seal(plain: Buffer, key: Buffer, context = ''): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (context) cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return [
    'v1',
    iv.toString('base64url'),
    cipher.getAuthTag().toString('base64url'),
    body.toString('base64url'),
  ].join('.');
}

/** What `seal` sealed, with the same key and context; throws when either differs or it was changed. */
export function unseal(sealed: string, key: Buffer, context = ''): Buffer {
  const [version, iv, tag, body, ...rest] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || body === undefined || rest.length > 0)
    throw new Error('unknown encryption format');
  const authTag = Buffer.from(tag, 'base64url');
  // The full 16-byte tag only: GCM would also take a cut-down one, which is far easier to forge.
  if (authTag.length !== 16) throw new Error('unknown encryption format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
  if (context) decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(authTag);
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]);
}
