import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { type CpuProfile, profileMarkdown, summariseProfile } from './cpuprofile.js';

const root = mkdtempSync(path.join(tmpdir(), 'cpuprofile-test-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
const url = pathToFileURL(path.join(root, 'a.ts')).href;

// root → outer → inner → outer (recursion), and root → (idle); one sample per millisecond.
const profile: CpuProfile = {
  nodes: [
    {
      id: 1,
      callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 },
      children: [2, 5],
    },
    { id: 2, callFrame: { functionName: 'outer', url, lineNumber: 0, columnNumber: 10 }, children: [3] },
    { id: 3, callFrame: { functionName: 'inner', url, lineNumber: 0, columnNumber: 30 }, children: [4] },
    { id: 4, callFrame: { functionName: 'outer', url, lineNumber: 0, columnNumber: 10 }, children: [] },
    { id: 5, callFrame: { functionName: '(idle)', url: '', lineNumber: -1, columnNumber: -1 } },
  ],
  startTime: 0,
  endTime: 5000,
  samples: [4, 3, 2, 5, 4],
  timeDeltas: [0, 1000, 1000, 1000, 1000],
};

const byName = (s: ReturnType<typeof summariseProfile>, name: string) =>
  s.functions.find((f) => f.name === name);

test('self time goes to the sampled function, inclusive time to each function on its stack once', () => {
  const s = summariseProfile(profile, { root });
  assert.equal(s.samples, 5);
  assert.equal(s.windowMs, 5);
  assert.equal(s.busyMs, 4);
  assert.deepEqual(byName(s, 'outer'), { name: 'outer', location: 'a.ts:1', selfMs: 3, totalMs: 4 });
  assert.deepEqual(byName(s, 'inner'), { name: 'inner', location: 'a.ts:1', selfMs: 1, totalMs: 3 });
  assert.equal(byName(s, '(root)')?.totalMs, 5);
});

test('a window keeps only the samples taken inside it', () => {
  const s = summariseProfile(profile, { root, window: [1500, 3500] });
  assert.equal(s.samples, 2);
  assert.equal(byName(s, 'outer')?.selfMs, 1);
  assert.equal(byName(s, '(idle)')?.selfMs, 1);
  assert.equal(byName(s, 'inner'), undefined);
});

test('positions in tsx-compiled files map to source lines through the cached source map', () => {
  const cache = path.join(root, 'tsx-cache');
  mkdirSync(cache);
  // Generated line 1: column 0 from source line 1, column 10 from line 5, column 30 from line 12.
  const map = { version: 3, sources: [path.join(root, 'a.ts')], names: [], mappings: 'AAAA,UAIA,oBAOA' };
  writeFileSync(path.join(cache, '1-abc'), JSON.stringify({ code: '', map }));
  writeFileSync(path.join(cache, 'not-json'), 'x');
  const s = summariseProfile(profile, { root, tsxCacheDir: cache });
  assert.equal(byName(s, 'outer')?.location, 'a.ts:5');
  assert.equal(byName(s, 'inner')?.location, 'a.ts:12');
  const md = profileMarkdown('t', [], s, 2);
  assert.match(md, /\| 1 \| `outer` \| a\.ts:5 \| 3 \| 60\.0% \| 4 \| 80\.0% \|/);
});
