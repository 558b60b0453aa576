// Writes the README's settings table from SETTINGS (npm run docs:settings); `--check` only compares.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { acceptedValues, defaultText, SETTINGS } from '../src/settings.js';
import { isMain, writeOrCheck } from './generated.js';

export const README = path.resolve(import.meta.dirname, '../../../README.md');
const BEGIN = '<!-- settings:begin (npm run docs:settings) -->';
const END = '<!-- settings:end -->';

/** The Markdown table of every setting, one row each. */
export function settingsTable(): string {
  const rows = SETTINGS.map(
    (s) => `| ${s.description} | \`${s.env}\` | ${defaultText(s)} | ${acceptedValues(s)} |`,
  );
  return [
    '| setting | environment variable | default | accepted |',
    '| --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/** `readme` with the text between the settings markers replaced by the generated table. */
export function withSettingsTable(readme: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`README.md: the markers ${BEGIN} … ${END} are missing`);
  return `${readme.slice(0, begin + BEGIN.length)}\n${settingsTable()}\n${readme.slice(end)}`;
}

if (isMain(import.meta))
  writeOrCheck(README, withSettingsTable(readFileSync(README, 'utf8')), 'npm run docs:settings');
