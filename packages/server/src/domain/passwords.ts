import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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

/**
 * Hashes at once: at most one per core, and never the whole of libuv's pool (UV_THREADPOOL_SIZE,
 * 4 unless set), which also signs and verifies tokens. In a storm of logins the hashes wait here,
 * in order, while token work still finds a free thread; more hashes than cores would not finish
 * sooner anyway.
 */
export const HASHING_SLOTS = Math.max(
  1,
  Math.min(availableParallelism(), (Number(process.env.UV_THREADPOOL_SIZE) || 4) - 2),
);
let hashing = 0;
const waiting: (() => void)[] = [];

async function inSlot<T>(work: () => Promise<T>): Promise<T> {
  if (hashing >= HASHING_SLOTS) await new Promise<void>((resolve) => waiting.push(resolve));
  else hashing++;
  try {
    return await work();
  } finally {
    // The slot passes straight to the next in line, or is given back.
    const next = waiting.shift();
    if (next) next();
    else hashing--;
  }
}

/** Hashes waiting for a slot (for /metrics). */
export function hashesWaiting(): number {
  return waiting.length;
}

export function hashPassword(password: string): Promise<string> {
  return inSlot(() => argon2.hash(normalizePassword(password), PASSWORD_PARAMS));
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await inSlot(() => argon2.verify(hash, normalizePassword(password)));
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
  dummy ??= inSlot(() => argon2.hash(`dummy-${Math.random()}`, PASSWORD_PARAMS));
  return dummy;
}
