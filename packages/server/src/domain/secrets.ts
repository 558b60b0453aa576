import { hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hmac } from '../util/crypto.js';
import { privateDir, privateFile } from '../util/private-files.js';

/** Sub-keys derived from the one server secret, each for one purpose. */
export interface Secrets {
  /** Encrypts signing keys at rest. */
  keyEncryption: Buffer;
  /** Derives a refresh token's successor from its parent, so a retry gets the same one. */
  refreshDerivation: Buffer;
  /** Binds CSRF tokens to sessions. */
  csrf: Buffer;
  /** Keys the stored hashes of mailed links and codes (a six-digit code's hash is no dictionary). */
  emailTokens: Buffer;
  /** Encrypts the mails waiting in the store's queue: their links carry one-time tokens. */
  mailQueue: Buffer;
}

/**
 * A refresh token's successor, derived from the parent (first-party and OAuth alike): a retry
 * within the grace window is answered with the same successor, and no secret is stored.
 */
export function refreshSuccessor(
  key: Buffer,
  parentId: string,
  parentSecret: string,
): { id: string; secret: string } {
  return {
    id: hmac(key, 'refresh-id', parentId, parentSecret).slice(0, 22),
    secret: hmac(key, 'refresh-secret', parentId, parentSecret),
  };
}

export function deriveSecrets(secret: string): Secrets {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', secret, 'tessera', info, 32));
  return {
    keyEncryption: derive('key-encryption'),
    refreshDerivation: derive('refresh-derivation'),
    csrf: derive('csrf'),
    emailTokens: derive('email-tokens'),
    mailQueue: derive('mail-queue'),
  };
}

/**
 * The configured secret, or one generated into `dataDir/secret` on first start (readable by the
 * owner only). Every instance of a cluster must be given the same TESSERA_SECRET instead.
 */
export function loadOrCreateSecret(
  configured: string | undefined,
  dataDir: string,
): { secret: string; generated: boolean } {
  if (configured) return { secret: configured, generated: false };
  const file = path.join(dataDir, 'secret');
  privateDir(dataDir);
  if (existsSync(file)) {
    privateFile(file);
    const secret = readFileSync(file, 'utf8').trim();
    // An empty or cut-short file (a crash while it was written) would make every derived key
    // public knowledge: refuse it rather than run on it.
    if (secret.length < 32)
      throw new Error(
        `${file} holds no usable secret (under 32 characters): restore it from a backup, or delete it to start anew (every session, key and mailed link then ends)`,
      );
    return { secret, generated: false };
  }
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { secret, generated: true };
}
