// The repository's Markdown stays inside the repository: every relative link and image names a
// file (and heading) that exists, nothing points above the repository root, to an absolute path
// or a file: URL. The docs also name only settings and variables the code reads.
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { SETTINGS } from '../packages/server/src/settings.js';

const root = path.resolve(import.meta.dirname, '..');
/** Folders that hold no Markdown of the repository's own: installed, built, runtime data. */
const SKIPPED = new Set(['node_modules', 'dist', 'data', '.git']);
/**
 * Written by the OpenAPI build, not by hand: while it has not been generated yet, links to it are
 * not reported missing. Once it exists, its links and headings are checked like any other file.
 */
const GENERATED = 'docs/http-api.md';
const WEB = /^(https?|mailto):/i;

interface Link {
  target: string;
  line: number;
}

/** Every Markdown file under `dir`, paths relative to `base`. */
function markdownFiles(dir: string, base: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIPPED.has(name)) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) markdownFiles(full, base, out);
    else if (name.endsWith('.md')) out.push(path.relative(base, full));
  }
  return out.sort();
}

/** The text with fenced code blocks blanked out, line numbers kept. */
function withoutFences(markdown: string): string {
  let fence: string | undefined;
  return markdown
    .split('\n')
    .map((line) => {
      const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
      if (fence === undefined) {
        if (marker === undefined) return line;
        fence = marker;
        return '';
      }
      if (
        marker !== undefined &&
        marker[0] === fence[0] &&
        marker.length >= fence.length &&
        line.trim() === marker
      )
        fence = undefined;
      return '';
    })
    .join('\n');
}

/** The text with fenced code blocks and inline code blanked out, line numbers kept. */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/(`+)[^`\n]*?\1/g, (code) => ' '.repeat(code.length));
}

/** Inline links and images, reference definitions, autolinks and HTML href/src attributes. */
function extractLinks(markdown: string): Link[] {
  const links: Link[] = [];
  withoutCode(markdown)
    .split('\n')
    .forEach((text, i) => {
      const line = i + 1;
      for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+["'(][^)]*)?\)/g))
        links.push({ target: m[1]!.replace(/^<|>$/g, ''), line });
      const definition = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(text);
      if (definition) links.push({ target: definition[1]!.replace(/^<|>$/g, ''), line });
      for (const m of text.matchAll(/<([a-z][a-z0-9+.-]*:[^>\s]+)>/gi)) links.push({ target: m[1]!, line });
      for (const m of text.matchAll(/\b(?:href|src)\s*=\s*["']([^"']+)["']/gi))
        links.push({ target: m[1]!, line });
    });
  return links;
}

/** The anchors a Markdown file offers: its headings as GitHub names them, and HTML ids. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const text of withoutFences(markdown).replace(/`+/g, '').split('\n')) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (heading) {
      const base = heading[1]!
        .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
        .replace(/[*]/g, '')
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-');
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of text.matchAll(/\b(?:id|name)\s*=\s*["']([^"']+)["']/g)) anchors.add(m[1]!);
  }
  return anchors;
}

/** What is wrong with a link from `file` (relative to `base`), or undefined when it is fine. */
function linkProblem(base: string, file: string, target: string): string | undefined {
  if (/^file:/i.test(target)) return 'a file: URL points outside the repository';
  if (WEB.test(target)) return undefined;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return `unsupported scheme in ${target}`;
  if (target.startsWith('/') || target.startsWith('\\'))
    return 'an absolute path; link relative to the file instead';
  const [pathPart = '', anchor = ''] = target.split('#', 2);
  const relPath = decodeURIComponent(pathPart.split('?')[0]!);
  const resolved = relPath === '' ? path.join(base, file) : path.resolve(base, path.dirname(file), relPath);
  const inRepo = path.relative(base, resolved);
  if (inRepo.startsWith('..') || path.isAbsolute(inRepo)) return 'points outside the repository';
  const repoPath = inRepo.split(path.sep).join('/');
  if (!existsSync(resolved)) return repoPath === GENERATED ? undefined : `${repoPath} does not exist`;
  if (anchor === '' || !resolved.endsWith('.md') || statSync(resolved).isDirectory()) return undefined;
  return anchorsOf(readFileSync(resolved, 'utf8')).has(anchor.toLowerCase())
    ? undefined
    : `${repoPath} has no heading #${anchor}`;
}

/** Every broken link in the Markdown under `base`, as `file:line target: problem`. */
function brokenLinks(base: string): string[] {
  const problems: string[] = [];
  for (const file of markdownFiles(base, base)) {
    for (const { target, line } of extractLinks(readFileSync(path.join(base, file), 'utf8'))) {
      const problem = linkProblem(base, file, target);
      if (problem) problems.push(`${file}:${line} ${target}: ${problem}`);
    }
  }
  return problems;
}

describe('the link check', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tessera-links-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'docs'));
  writeFileSync(
    path.join(dir, 'docs', 'guide.md'),
    '# Guide\n\n## Key rotation: by hand\n\n## Key rotation: by hand\n',
  );
  const problemOf = (target: string, from = 'README.md') => linkProblem(dir, from, target);

  test('finds inline links, images, definitions, autolinks and HTML links, outside code only', () => {
    const found = extractLinks(
      [
        'See [the guide](docs/guide.md#guide "title") and ![shot](docs/a.png).',
        '[ref]: <../shared/API.md>',
        '<file:///etc/passwd> and <a href="docs/x.md">x</a>',
        '`[not a link](nowhere.md)`',
        '```md',
        '[also not](nowhere.md)',
        '```',
      ].join('\n'),
    );
    assert.deepEqual(found, [
      { target: 'docs/guide.md#guide', line: 1 },
      { target: 'docs/a.png', line: 1 },
      { target: '../shared/API.md', line: 2 },
      { target: 'file:///etc/passwd', line: 3 },
      { target: 'docs/x.md', line: 3 },
    ]);
  });

  test('refuses links that leave the repository', () => {
    assert.equal(problemOf('../shared/API.md'), 'points outside the repository');
    assert.equal(problemOf('../../shared/SECURITY.md', 'docs/guide.md'), 'points outside the repository');
    assert.equal(problemOf('file:///work/shared/API.md'), 'a file: URL points outside the repository');
    assert.match(problemOf('/work/shared/API.md') ?? '', /absolute path/);
  });

  test('refuses missing files and headings, accepts existing ones and web addresses', () => {
    assert.equal(problemOf('docs/missing.md'), 'docs/missing.md does not exist');
    assert.equal(problemOf('SECURITY.md'), 'SECURITY.md does not exist');
    assert.equal(problemOf('docs/guide.md#nope'), 'docs/guide.md has no heading #nope');
    assert.equal(problemOf('docs/guide.md'), undefined);
    assert.equal(problemOf('docs/guide.md#key-rotation-by-hand'), undefined);
    assert.equal(problemOf('docs/guide.md#key-rotation-by-hand-1'), undefined);
    assert.equal(problemOf('#guide', 'docs/guide.md'), undefined);
    assert.equal(problemOf('guide.md#guide', 'docs/guide.md'), undefined);
    assert.equal(problemOf('https://www.rfc-editor.org/rfc/rfc9700'), undefined);
  });

  test('lets only the generated HTTP reference be missing, and only while it is', () => {
    assert.equal(problemOf('docs/http-api.md'), undefined);
    assert.equal(problemOf('http-api.md', 'docs/guide.md'), undefined);
    assert.equal(problemOf('docs/http-api-v2.md'), 'docs/http-api-v2.md does not exist');
    writeFileSync(path.join(dir, 'docs', 'http-api.md'), '# HTTP reference\n');
    assert.equal(problemOf('docs/http-api.md#http-reference'), undefined);
    assert.equal(
      problemOf('docs/http-api.md#post-authlogin'),
      'docs/http-api.md has no heading #post-authlogin',
    );
  });

  test('reports every broken link of a tree with file and line', () => {
    writeFileSync(path.join(dir, 'README.md'), 'ok [g](docs/guide.md)\n\n[bad](../shared/API.md)\n');
    assert.deepEqual(brokenLinks(dir), ['README.md:3 ../shared/API.md: points outside the repository']);
  });
});

describe("the repository's Markdown", () => {
  test('every link stays inside the repository and names what exists', () => {
    assert.deepEqual(brokenLinks(root), []);
  });

  test('the docs folder holds the guides the README links to', () => {
    for (const doc of ['README.md', 'getting-started.md', 'security.md', 'operations.md', 'api-servers.md']) {
      assert.ok(existsSync(path.join(root, 'docs', doc)), `docs/${doc}`);
    }
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    for (const link of ['docs/http-api.md', 'docs/security.md', 'docs/operations.md', 'CHANGELOG.md'])
      assert.ok(readme.includes(`](${link})`), `README links ${link}`);
  });

  test('every TESSERA_ variable the docs name is a setting or is read by the code', () => {
    const settings = new Set(SETTINGS.map((s) => s.env));
    const sources: string[] = [];
    const collect = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const full = path.join(dir, name);
        if (SKIPPED.has(name) || name === 'test') continue;
        if (statSync(full).isDirectory()) collect(full);
        else if (/\.(ts|mjs)$/.test(name)) sources.push(readFileSync(full, 'utf8'));
      }
    };
    for (const dir of ['packages', 'examples', 'scripts']) collect(path.join(root, dir));
    const code = sources.join('\n');
    const unknown: string[] = [];
    for (const file of ['README.md', 'CHANGELOG.md', ...markdownFiles(path.join(root, 'docs'), root)]) {
      for (const [name] of readFileSync(path.join(root, file), 'utf8').matchAll(
        /TESSERA_[A-Z0-9][A-Z0-9_]*/g,
      )) {
        if (!settings.has(name) && !code.includes(`'${name}'`) && !code.includes(`.${name}`))
          unknown.push(`${file}: ${name}`);
      }
    }
    assert.deepEqual(unknown, []);
  });

  test("a setting's key in the config file is its variable's name in camel case, as the operations guide says", () => {
    for (const s of SETTINGS) {
      const camel = s.env
        .replace(/^TESSERA_/, '')
        .toLowerCase()
        .replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
      assert.equal(s.key, camel, s.env);
    }
  });
});
