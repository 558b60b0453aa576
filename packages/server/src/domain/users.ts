import { TesseraError } from '../errors.js';

// Digits 0 to 9 only: others (Arabic-Indic ١, say) are drawn like Latin letters.
const USERNAME = /^[\p{L}0-9._-]{3,64}$/u;

/** NFKC, then lower case: the unique key. `Ａlice` and `alice` are one user. */
export function normalizeUsername(input: unknown): string {
  if (typeof input !== 'string') throw new TesseraError('invalid_request', 'username must be a string.');
  const name = input.normalize('NFKC').toLowerCase().normalize('NFKC');
  if (!USERNAME.test(name)) {
    throw new TesseraError(
      'invalid_request',
      'username must be 3 to 64 letters, digits 0-9, dots, dashes or underscores.',
    );
  }
  return name;
}

/**
 * Scripts a name's letters may come from together (Unicode TS #39, "highly restrictive"): one
 * script, or Latin with the scripts written beside it in Japanese, Chinese and Korean.
 */
const SCRIPTS = [
  'Latin',
  'Cyrillic',
  'Greek',
  'Armenian',
  'Georgian',
  'Hebrew',
  'Arabic',
  'Devanagari',
  'Thai',
  'Han',
  'Hiragana',
  'Katakana',
  'Bopomofo',
  'Hangul',
] as const;
type Script = (typeof SCRIPTS)[number] | 'Other';
const SCRIPT_TESTS = SCRIPTS.map((s) => [s, new RegExp(`^\\p{Script=${s}}$`, 'u')] as const);
const ALLOWED_MIXES: readonly (readonly Script[])[] = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Bopomofo'],
  ['Latin', 'Han', 'Hangul'],
];

function scriptOf(letter: string): Script {
  for (const [script, test] of SCRIPT_TESTS) if (test.test(letter)) return script;
  return 'Other';
}

/** Lower-case Cyrillic, Greek and Armenian letters drawn like a Latin one (from the TS #39 confusables data). */
const LATIN_LOOKALIKES = new Set('авсԁеёһіїјкӏмпорԛгѕтцѵԝхуүз' + 'αβεηικνορτυχγω' + 'հսցօոզ');

/**
 * Refuses a normalised name that could pass for another: letters from scripts not written
 * together (Latin `paypal` beside a Cyrillic `раураl`), or a Cyrillic, Greek or Armenian name drawn
 * entirely in Latin look-alikes. What is left can't be read as a Latin name, so it can't pass for
 * an existing one.
 */
export function checkUsernameScripts(name: string): void {
  const scripts = new Set<Script>();
  for (const c of name) if (/\p{L}/u.test(c)) scripts.add(scriptOf(c));
  const list = [...scripts];
  const ok = list.length <= 1 || ALLOWED_MIXES.some((mix) => list.every((s) => mix.includes(s)));
  if (!ok) {
    throw new TesseraError(
      'invalid_request',
      'username must not mix letters of different scripts (for example Latin and Cyrillic).',
    );
  }
  const letters = [...name].filter((c) => /\p{L}/u.test(c));
  if (letters.length > 0 && letters.every((c) => LATIN_LOOKALIKES.has(c))) {
    throw new TesseraError('invalid_request', 'username must not be written only in Latin look-alikes.');
  }
}

const EMAIL =
  /^[^\s@<>()[\]\\,;:"]{1,64}@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+[\p{L}\p{N}]{2,63}$/u;

/**
 * NFKC, trimmed, lower case: the form addresses are stored and compared in, so `Ann@Example.COM`
 * and `ann@example.com` are one address. Refuses what is not one address.
 */
export function normalizeEmail(input: unknown): string {
  if (typeof input !== 'string') throw new TesseraError('invalid_request', 'email must be a string.');
  const email = input.normalize('NFKC').trim().toLowerCase();
  if (email.length > 254 || !EMAIL.test(email)) {
    throw new TesseraError('invalid_request', 'email must be one email address, like name@example.com.');
  }
  return email;
}
