import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

// The data folder holds password and token hashes, encrypted keys, the audit trail and the
// generated secret: owner only, whatever the umask, and tightened again on every start.

function tighten(target: string, mode: number): void {
  if ((statSync(target).mode & 0o077) !== 0) chmodSync(target, mode);
}

/** Creates `dir` (and missing parents) 0700, or makes an existing one 0700 if others can enter it. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  tighten(dir, 0o700);
}

/** Makes `file` 0600, creating it empty first when `create` is set and it is missing. */
export function privateFile(file: string, create = false): void {
  if (create && !existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  if (existsSync(file)) tighten(file, 0o600);
}
