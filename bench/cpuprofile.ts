// Summarises a V8 .cpuprofile (what `node --cpu-prof` writes) into the functions with the most
// self time and the most inclusive time. Positions in TypeScript files run through tsx are mapped
// back to source lines with the source maps in tsx's cache folder, when one is given.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  location: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  samples: number;
  windowMs: number;
  /** Sampled time outside `(idle)`, ms. */
  busyMs: number;
  functions: FunctionTime[];
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Per generated line, the segments [generated column, source line] of a version-3 source map. */
function decodeMappings(mappings: string): [number, number][][] {
  const lines: [number, number][][] = [];
  let sourceLine = 0;
  for (const lineText of mappings.split(';')) {
    const segments: [number, number][] = [];
    let column = 0;
    for (const segment of lineText.split(',')) {
      if (!segment) continue;
      const fields: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of segment) {
        const digit = BASE64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      column += fields[0] ?? 0;
      if (fields.length >= 4) {
        sourceLine += fields[2]!;
        segments.push([column, sourceLine]);
      }
    }
    lines.push(segments);
  }
  return lines;
}

/** Source maps tsx cached while it compiled, by absolute source path. */
function tsxSourceMaps(cacheDir: string): Map<string, [number, number][][]> {
  const maps = new Map<string, [number, number][][]>();
  if (!existsSync(cacheDir)) return maps;
  for (const name of readdirSync(cacheDir)) {
    try {
      const entry = JSON.parse(readFileSync(path.join(cacheDir, name), 'utf8')) as { map?: unknown };
      const map = (typeof entry.map === 'string' ? JSON.parse(entry.map) : entry.map) as
        | { sources?: string[]; mappings?: string }
        | undefined;
      const source = map?.sources?.[0];
      if (source && typeof map.mappings === 'string' && map.sources!.length === 1) {
        maps.set(source.startsWith('file:') ? fileURLToPath(source) : source, decodeMappings(map.mappings));
      }
    } catch {
      // Not a transform result (tsx keeps other files there too).
    }
  }
  return maps;
}

/** The source line (1-based) a generated position maps to. */
function sourceLineOf(lines: [number, number][][], line: number, column: number): number | undefined {
  const segments = lines[line];
  if (!segments || segments.length === 0) return undefined;
  let found: number | undefined;
  for (const [col, src] of segments) {
    if (col > column) break;
    found = src;
  }
  return (found ?? segments[0]![1]) + 1;
}

function locationOf(frame: CallFrame, root: string, maps: Map<string, [number, number][][]>): string {
  if (!frame.url) return '';
  let file = frame.url;
  let line: number | undefined = frame.lineNumber + 1;
  if (file.startsWith('file:')) {
    const absolute = fileURLToPath(file);
    const map = maps.get(absolute);
    if (map) line = sourceLineOf(map, frame.lineNumber, frame.columnNumber) ?? line;
    file = path.relative(root, absolute);
  }
  return line > 0 ? `${file}:${line}` : file;
}

/**
 * Self and inclusive time per function (by name and location). `window` ([start, end] in the
 * profile's microsecond clock, which is the monotonic clock of process.hrtime) keeps only the
 * samples taken inside it. A recursive function's inclusive time counts each sample once.
 */
export function summariseProfile(
  profile: CpuProfile,
  options: { root: string; tsxCacheDir?: string; window?: [number, number] },
): ProfileSummary {
  const maps = options.tsxCacheDir ? tsxSourceMaps(options.tsxCacheDir) : new Map();
  const parent = new Map<number, number>();
  const keyOf = new Map<number, string>();
  const functions = new Map<string, FunctionTime>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
    const name = node.callFrame.functionName || '(anonymous)';
    const location = locationOf(node.callFrame, options.root, maps);
    const key = `${name}\u0000${location}`;
    keyOf.set(node.id, key);
    if (!functions.has(key)) functions.set(key, { name, location, selfMs: 0, totalMs: 0 });
  }
  const deltas = profile.timeDeltas;
  const sorted = [...deltas].sort((a, b) => a - b);
  const typical = sorted[Math.floor(sorted.length / 2)] ?? 0;
  let at = profile.startTime;
  let samples = 0;
  let windowUs = 0;
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += deltas[i] ?? 0;
    if (options.window && (at < options.window[0] || at > options.window[1])) continue;
    // A sample stands for the time until the next one.
    const weight = deltas[i + 1] ?? typical;
    samples++;
    windowUs += weight;
    let id: number | undefined = profile.samples[i]!;
    const leaf = functions.get(keyOf.get(id)!)!;
    leaf.selfMs += weight / 1000;
    if (leaf.name !== '(idle)') busyUs += weight;
    const seen = new Set<string>();
    while (id !== undefined) {
      const key = keyOf.get(id)!;
      if (!seen.has(key)) {
        seen.add(key);
        functions.get(key)!.totalMs += weight / 1000;
      }
      id = parent.get(id);
    }
  }
  return {
    samples,
    windowMs: windowUs / 1000,
    busyMs: busyUs / 1000,
    functions: [...functions.values()].filter((f) => f.totalMs > 0),
  };
}

/** The summary as Markdown: the top `top` functions by self time, then by inclusive time. */
export function profileMarkdown(title: string, notes: string[], summary: ProfileSummary, top = 25): string {
  const pct = (ms: number) => `${((100 * ms) / summary.windowMs).toFixed(1)}%`;
  const table = (rows: FunctionTime[]) => [
    '| # | function | location | self ms | self | total ms | total |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (f, i) =>
        `| ${i + 1} | \`${f.name}\` | ${f.location || '—'} | ${f.selfMs.toFixed(0)} | ${pct(f.selfMs)} | ${f.totalMs.toFixed(0)} | ${pct(f.totalMs)} |`,
    ),
  ];
  const bySelf = [...summary.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  const byTotal = [...summary.functions]
    .filter((f) => f.name !== '(root)')
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, top);
  return [
    `# ${title}`,
    '',
    ...notes,
    '',
    `${summary.samples} samples over ${(summary.windowMs / 1000).toFixed(1)} s of the server's main thread; busy (not \`(idle)\`) ${pct(summary.busyMs)}. Percentages are of the whole window.`,
    '',
    `## Top ${top} by self time`,
    '',
    ...table(bySelf),
    '',
    `## Top ${top} by inclusive time`,
    '',
    ...table(byTotal),
    '',
  ].join('\n');
}
