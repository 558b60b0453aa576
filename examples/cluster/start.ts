// Starts a local Tessera cluster: two account servers (4000, 4010) on one PostgreSQL database and
// one Redis, and two example API servers (4001, 4011) that verify tokens locally and follow the
// revocation feed. Ctrl-C (or SIGTERM) stops all four. See README.md in this folder.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

const ROOT = path.resolve(import.meta.dirname, '../..');
const env = process.env;
const DATABASE_URL = env['TESSERA_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/tessera_cluster';
const REDIS_URL = env['TESSERA_REDIS_URL'] ?? 'redis://127.0.0.1:6379/1';
const HOST = env['TESSERA_HOST'] ?? '127.0.0.1';
const ACCOUNT_PORTS = [Number(env['ACCOUNT_PORT_A'] ?? 4000), Number(env['ACCOUNT_PORT_B'] ?? 4010)];
const API_PORTS = [Number(env['API_PORT_A'] ?? 4001), Number(env['API_PORT_B'] ?? 4011)];
// Every instance signs with this issuer; the API servers fetch its JWKS and follow its feed.
// Without a front (nginx.conf) it is instance A; with the front, set it to the front's URL.
const ISSUER = (env['TESSERA_ISSUER'] ?? `http://127.0.0.1:${ACCOUNT_PORTS[0]}`).replace(/\/+$/, '');
const DATA_DIR = path.resolve(env['TESSERA_DATA_DIR'] ?? path.join(ROOT, 'data/cluster'));

function log(line: string): void {
  process.stdout.write(`[cluster] ${line}\n`);
}

/** The shared secret: TESSERA_SECRET, else the one generated on the first run (kept, because it encrypts the stored keys). */
function sharedSecret(): string {
  if (env['TESSERA_SECRET']) return env['TESSERA_SECRET'];
  const file = path.join(DATA_DIR, 'cluster-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(DATA_DIR, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  log(`generated TESSERA_SECRET into ${path.relative(ROOT, file)} (every instance must use the same one)`);
  return secret;
}

/** Creates the database named in TESSERA_DATABASE_URL when it is missing (the tables come from the servers). */
async function ensureDatabase(): Promise<void> {
  const url = new URL(DATABASE_URL);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) return;
  const admin = new URL(DATABASE_URL);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.href, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${url.host}: ${(err as Error).message}`);
  }
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE ${name}`);
      log(`created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

const children: { name: string; child: ChildProcess }[] = [];
let stopping = false;

function start(name: string, script: string, args: string[], extraEnv: Record<string, string>): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--conditions=@tessera/source', '--import', 'tsx', script, ...args],
    {
      cwd: ROOT,
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const prefix = (chunk: Buffer) =>
    chunk
      .toString()
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => `[${name}] ${l}\n`)
      .join('');
  child.stdout?.on('data', (c: Buffer) => process.stdout.write(prefix(c)));
  child.stderr?.on('data', (c: Buffer) => process.stderr.write(prefix(c)));
  child.once('exit', (code, signal) => {
    if (!stopping) {
      log(`${name} exited (${signal ?? code}); stopping the rest`);
      void stop(1);
    }
  });
  children.push({ name, child });
  return child;
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || stopping) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const { child } of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const exits = children.map(
    ({ child }) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      }),
  );
  await Promise.all(exits);
  log('stopped');
  process.exit(code);
}

process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

try {
  const secret = sharedSecret();
  await ensureDatabase();
  const common = {
    TESSERA_SECRET: secret,
    TESSERA_ISSUER: ISSUER,
    TESSERA_DATABASE_URL: DATABASE_URL,
    TESSERA_REDIS_URL: REDIS_URL,
    TESSERA_HOST: HOST,
    TESSERA_DATA_DIR: DATA_DIR,
  };
  const main = path.join(ROOT, 'packages/server/src/cli/main.ts');
  // A first, so migrations and the first key ring are made once; B joins the same store.
  for (const [i, port] of ACCOUNT_PORTS.entries()) {
    const name = `account-${'AB'[i]}:${port}`;
    start(name, main, ['serve'], { ...common, TESSERA_PORT: String(port) });
    await waitReady(`http://${HOST}:${port}/readyz`, 30_000);
    log(`${name} ready`);
  }
  for (const [i, port] of API_PORTS.entries()) {
    const name = `api-${'AB'[i]}:${port}`;
    start(name, path.join(ROOT, 'examples/api/server.ts'), [], {
      TESSERA_ISSUER: ISSUER,
      TESSERA_AUDIENCE: env['TESSERA_AUDIENCE'] ?? 'tessera',
      PORT: String(port),
      HOST,
      PUBLIC_URL: `http://${HOST}:${port}`,
      TESSERA_REVOCATION_FEED: '1',
      TESSERA_REVOCATION_MAX_STALENESS: env['TESSERA_REVOCATION_MAX_STALENESS'] ?? '60',
    });
    await waitReady(`http://${HOST}:${port}/healthz`, 30_000);
    log(`${name} ready`);
  }
  log(`issuer ${ISSUER}; account servers ${ACCOUNT_PORTS.join(', ')}; API servers ${API_PORTS.join(', ')}`);
  log('Ctrl-C stops all four.');
} catch (err) {
  log(`could not start: ${(err as Error).message}`);
  await stop(1);
}
