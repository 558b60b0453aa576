// Writes the client's copy of the server's error codes (npm run codes:client); `--check` only compares.
// The client has no dependencies, so it gets the list as a generated file instead of an import.
import path from 'node:path';
import { ERROR_CODES } from '../src/errors.js';
import { isMain, writeOrCheck } from './generated.js';

export const CLIENT_CODES_FILE = path.resolve(import.meta.dirname, '../../client/src/server-codes.ts');

/** The TypeScript module the client imports its server codes from. */
export function clientCodesModule(): string {
  return [
    '// Generated from the account server’s ERROR_CODES by `npm run codes:client`; do not edit.',
    '',
    '/** Every error code the account server can send, as `{"error": "<code>", "message": "…"}`. */',
    'export const SERVER_ERROR_CODES = [',
    ...ERROR_CODES.map((code) => `  '${code}',`),
    '] as const;',
    '',
    'export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];',
    '',
  ].join('\n');
}

if (isMain(import.meta)) writeOrCheck(CLIENT_CODES_FILE, clientCodesModule(), 'npm run codes:client');
