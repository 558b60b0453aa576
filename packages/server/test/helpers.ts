import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Config, ConfigError, loadConfig } from '../src/config.js';
import type { App } from '../src/http/app.js';
import { openStores } from '../src/store/open.js';
import type { Stores } from '../src/store/ports.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { createTessera, type Tessera } from '../src/tessera.js';

export const SECRET = 'test-secret-that-is-long-enough-0123456789';

/** node's arguments for the `tessera` command from source, as `npm run tessera` runs it. */
export const TESSERA_COMMAND = [
  '--conditions=@tessera/source',
  '--import',
  'tsx',
  path.resolve(import.meta.dirname, '../src/cli/main.ts'),
];

/** Runs `tessera <args>` to its end with only PATH and `env` in its environment. */
export function runTessera(args: string[], env: Record<string, string>, input?: string) {
  const res = spawnSync(process.execPath, [...TESSERA_COMMAND, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    input,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestServer {
  app: App;
  tessera: Tessera;
  url: string;
  origin: string;
  config: Config;
  clock: { now: number };
  close(): Promise<void>;
}

/**
 * An account server on a free loopback port, with a clock tests can move. Its stores: `stores`,
 * else what a databaseUrl in `overrides` names, else SQLite in memory; closed with the server.
 */
export async function startTestServer(
  overrides: Partial<Config> = {},
  options: { stores?: Stores; realClock?: boolean; rawSerializer?: boolean } = {},
): Promise<TestServer> {
  const port = overrides.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig(
    {},
    {
      port,
      issuer: url,
      dataDir: mkdtempSync(path.join(tmpdir(), 'tessera-')),
      secret: SECRET,
      registerPerIpPerHour: 100_000,
      ...overrides,
    },
  );
  const clock = { now: Date.now() };
  const tessera = await createTessera(config, {
    stores: options.stores ?? (config.databaseUrl ? await openStores(config) : openSqliteStores(':memory:')),
    logger: false,
    now: options.realClock ? undefined : () => clock.now,
    heartbeatMs: 200,
    rawSerializer: options.rawSerializer,
  });
  await tessera.listen();
  return { app: tessera.app, tessera, url, origin: url, config, clock, close: () => tessera.close() };
}

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
  cookies: Record<string, { value: string; attributes: string[] }>;
}

/** fetch with a JSON body; returns status, parsed body, headers and the Set-Cookie lines parsed. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: {
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    /** `manual`: a redirect is the answer. */
    redirect?: RequestRedirect;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, body, redirect: options.redirect });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  const cookies: Answer['cookies'] = {};
  for (const line of res.headers.getSetCookie()) {
    const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    cookies[pair.slice(0, eq)] = { value: pair.slice(eq + 1), attributes };
  }
  return { status: res.status, body: parsed, headers: res.headers, cookies };
}

let counter = 0;
/**
 * Whether fetch can send `value` as a header at all (it refuses control characters and
 * non-Latin-1 text before anything reaches the server), so a test can skip those up front and
 * treat every later fetch error as the failure it is.
 */
export function sendableHeader(value: string): boolean {
  try {
    new Headers({ 'x-probe': value });
    return true;
  } catch {
    return false;
  }
}

/** The problems loadConfig reports for `env`, or [] when it accepts it. */
export function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

export function uniqueName(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${process.pid}x${counter}`;
}

export const PASSWORD = 'correct horse battery staple';

export async function registerAndLogin(
  base: string,
  body: { mode: 'session' | 'token'; delivery: 'header' | 'cookie' },
  headers: Record<string, string> = {},
): Promise<{ username: string; login: Answer }> {
  const username = uniqueName();
  const reg = await call(base, 'POST', '/auth/register', { body: { username, password: PASSWORD } });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await call(base, 'POST', '/auth/login', {
    body: { username, password: PASSWORD, ...body },
    headers,
  });
  if (login.status !== 200) throw new Error(`login failed: ${login.status} ${JSON.stringify(login.body)}`);
  return { username, login };
}
