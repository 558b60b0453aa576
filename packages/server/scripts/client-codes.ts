// Writes the client's copy of the server's error codes (npm run codes:client); `--check` only compares.
// The client has no dependencies, so it gets the list as a generated file instead of an import.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES } from '../src/errors.js';

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

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === import.meta.filename;
if (isMain) {
  const next = clientCodesModule();
  let current = '';
  try {
    current = readFileSync(CLIENT_CODES_FILE, 'utf8');
  } catch {
    // not written yet
  }
  if (process.argv.includes('--check')) {
    if (next !== current) {
      process.stderr.write('packages/client/src/server-codes.ts is out of date; run npm run codes:client\n');
      process.exit(1);
    }
  } else if (next !== current) writeFileSync(CLIENT_CODES_FILE, next);
}
