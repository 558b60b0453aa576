// Processes under test: the Tessera server through its CLI, and the bench's own small apps
// (bench/apps/*.ts), each in a process of its own; plus what the report says about the machine.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';

export { freePort } from '../../packages/server/test/helpers.js';

import { freePort } from '../../packages/server/test/helpers.js';
import type { Run } from './stats.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

/** Resolves once something accepts connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks per second. */
const CLOCK_TICKS = 100;

/**
 * The CPU time (user + system, every thread) process `pid` has used so far, in µs, from
 * /proc/<pid>/stat (10 ms ticks); undefined where there is no such file.
 */
export function cpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state, ppid, … utime and stime are the 12th and 13th fields.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** `run`, with the CPU time the process `pid` used during it per request (Run.serverCpuMicros). */
export async function withServerCpu(pid: number | undefined, run: () => Promise<Run>): Promise<Run> {
  const before = cpuMicros(pid);
  const r = await run();
  const after = cpuMicros(pid);
  if (before !== undefined && after !== undefined && r.requests > 0)
    r.serverCpuMicros = (after - before) / r.requests;
  return r;
}

export interface Proc {
  base: string;
  port: number;
  child: ChildProcess;
  /** The data folder of a Tessera server (its SQLite file lives there). */
  dataDir: string;
  stop(): Promise<void>;
}

async function waitUntil(
  child: ChildProcess,
  up: () => Promise<boolean>,
  what: string,
  stderr: () => string,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: ${stderr()}`);
    if (await up()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not come up within 30 s: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function launch(
  args: string[],
  env: Record<string, string>,
  dataDir: string,
  what: string,
  port: number,
  root = ROOT,
) {
  const child = spawn(process.execPath, ['--conditions=@tessera/source', '--import', 'tsx', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
    process.stderr.write(chunk);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { child, stop, stderr: () => stderr, base: `http://127.0.0.1:${port}`, what };
}

/** The process once `probe` answers 200; stopped if it never does. */
async function up(p: ReturnType<typeof launch>, probe: string, port: number, dataDir: string): Promise<Proc> {
  try {
    await waitUntil(
      p.child,
      () =>
        fetch(`${p.base}${probe}`).then(
          (r) => r.ok,
          () => false,
        ),
      p.what,
      p.stderr,
    );
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { base: p.base, port, child: p.child, dataDir, stop: p.stop };
}

/**
 * `tessera serve` in its own process, configured through the environment only; up once /healthz
 * answers. `root` is the checkout it runs from (another one for an A/B, see bench/ab.ts).
 */
export async function startTessera(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  root = ROOT,
): Promise<Proc> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-bench-'));
  const base = `http://127.0.0.1:${port}`;
  const p = launch(
    [...nodeArgs, 'packages/server/src/cli/main.ts', 'serve'],
    {
      TESSERA_ISSUER: base,
      ...env,
      TESSERA_PORT: String(port),
      TESSERA_HOST: '127.0.0.1',
      TESSERA_DATA_DIR: dataDir,
    },
    dataDir,
    `the server (${root})`,
    port,
    root,
  );
  return up(p, '/healthz', port, dataDir);
}

/** A bench app (bench/apps/NAME.ts) in its own process, given PORT; up once `probe` answers 200. */
export async function startApp(name: string, env: Record<string, string>, probe = '/healthz'): Promise<Proc> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), `tessera-bench-${path.basename(name)}-`));
  const p = launch(
    [name.includes('/') ? `${name}.ts` : `bench/apps/${name}.ts`],
    { ...env, PORT: String(port), DATA_DIR: dataDir },
    dataDir,
    name,
    port,
  );
  return up(p, probe, port, dataDir);
}

/** Resident set size of a process, bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  date: string;
  loadAverage: number[];
}

export function machine(): Machine {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    date: new Date().toISOString(),
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

/** The installed version of a package, from its package.json. */
export function versionOf(pkg: string): string {
  try {
    return (
      JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return 'not installed';
  }
}
