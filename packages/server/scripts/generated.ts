// What every generator script does at the end: write the file, or with `--check` only compare.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** True when `meta` is the script node was started with (not imported by a test). */
export function isMain(meta: ImportMeta): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === meta.filename;
}

/** Writes `next` to `file` if it differs; with `--check`, exits 1 instead, naming `command`. */
export function writeOrCheck(file: string, next: string, command: string): void {
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    // not written yet
  }
  if (next === current) return;
  if (process.argv.includes('--check')) {
    process.stderr.write(`${path.relative(process.cwd(), file)} is out of date; run ${command}\n`);
    process.exit(1);
  }
  writeFileSync(file, next);
}
