import { readFileSync } from 'node:fs';
import argon2 from 'argon2';
import { TesseraError } from '../errors.js';

/** OWASP's argon2id floor: 19 MiB, 2 passes, 1 lane. argon2 hashes on libuv's pool, off the event loop. */
export const PASSWORD_PARAMS = {
  type: argon2.argon2id,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

export const PASSWORD_MIN = 8;
/** Long passphrases are welcome; the bound only stops hashing megabytes. Nothing is ever truncated. */
export const PASSWORD_MAX = 256;

let common: Set<string> | undefined;
function commonPasswords(): Set<string> {
  if (!common) {
    const file = new URL('../../resources/common-passwords.txt', import.meta.url);
    common = new Set(
      readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim().toLowerCase())
        .filter((l) => l && !l.startsWith('#')),
    );
  }
  return common;
}

/** The one form of a password that is both checked and hashed: full-width and compatibility characters fold. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/**
 * Throws `weak_password` with a message that says what to change; never echoes the password.
 * The rules apply to the normalised form, the string that is hashed.
 */
export function checkPasswordPolicy(raw: string, username?: string): void {
  const password = normalizePassword(raw);
  const length = [...password].length;
  if (length < PASSWORD_MIN) {
    throw new TesseraError('weak_password', `Password must be at least ${PASSWORD_MIN} characters.`);
  }
  if (length > PASSWORD_MAX) {
    throw new TesseraError('weak_password', `Password must be at most ${PASSWORD_MAX} characters.`);
  }
  const lower = password.toLowerCase();
  if (commonPasswords().has(lower)) {
    throw new TesseraError('weak_password', 'This password is too common; choose another.');
  }
  if (username && lower === username.toLowerCase()) {
    throw new TesseraError('weak_password', 'Password may not be the username.');
  }
}

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(normalizePassword(password), PASSWORD_PARAMS);
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, normalizePassword(password));
  } catch {
    return false;
  }
}

/** True when a stored hash was made with weaker or other parameters than today's. */
export function needsRehash(hash: string): boolean {
  return argon2.needsRehash(hash, PASSWORD_PARAMS);
}

let dummy: Promise<string> | undefined;
/** A hash of nothing anyone knows, verified against for unknown users so both paths cost the same. */
export function dummyHash(): Promise<string> {
  dummy ??= argon2.hash(`dummy-${Math.random()}`, PASSWORD_PARAMS);
  return dummy;
}
