import { TesseraError } from '../errors.js';

const USERNAME = /^[\p{L}\p{N}._-]{3,64}$/u;

/** NFKC, then lower case: the unique key. `Ａlice` and `alice` are one user. */
export function normalizeUsername(input: unknown): string {
  if (typeof input !== 'string') throw new TesseraError('invalid_request', 'username must be a string.');
  const name = input.normalize('NFKC').toLowerCase().normalize('NFKC');
  if (!USERNAME.test(name)) {
    throw new TesseraError(
      'invalid_request',
      'username must be 3 to 64 letters, digits, dots, dashes or underscores.',
    );
  }
  return name;
}
