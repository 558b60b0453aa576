// Runs the whole test suite with Node's own runner.
// Suites that need PostgreSQL, Redis or Chromium are told through environment
// variables whether those are reachable, and say so when they skip.
// The packages are built first (npm run build, incremental): the server serves the built browser
// files and the install test packs dist/. The tests themselves run the TypeScript sources through
// tsx, and every process they start resolves @tessera/* to sources too (the @tessera/source
// export condition, passed down in NODE_OPTIONS).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

function findTests(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) findTests(full, out);
    else if (name.endsWith('.test.ts')) out.push(path.relative(root, full));
  }
  return out;
}

function reachable(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const built = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);

const filter = process.argv.slice(2);
let files = [
  ...findTests(path.join(root, 'packages')),
  ...findTests(path.join(root, 'examples')),
  ...findTests(path.join(root, 'bench')),
  ...findTests(path.join(root, 'test')),
].sort();
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));

const env = {
  ...process.env,
  NODE_ENV: 'test',
  NODE_OPTIONS: [process.env.NODE_OPTIONS, '--conditions=@tessera/source'].filter(Boolean).join(' '),
};
const notes = [];
const pgUrl = process.env.TESSERA_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const pgUp = await reachable(new URL(pgUrl).hostname, Number(new URL(pgUrl).port || 5432));
const redisUp = await reachable(new URL(redisUrl).hostname, Number(new URL(redisUrl).port || 6379));
if (pgUp) env.TESSERA_TEST_DATABASE_URL = pgUrl;
else {
  delete env.TESSERA_TEST_DATABASE_URL;
  notes.push(`PostgreSQL suites SKIPPED: nothing listens at ${new URL(pgUrl).host}`);
}
if (redisUp) env.TESSERA_TEST_REDIS_URL = redisUrl;
else {
  delete env.TESSERA_TEST_REDIS_URL;
  notes.push(`Redis suites SKIPPED: nothing listens at ${new URL(redisUrl).host}`);
}
const chromium = process.env.TESSERA_CHROMIUM ?? '/usr/bin/chromium';
if (existsSync(chromium)) env.TESSERA_CHROMIUM = chromium;
else {
  delete env.TESSERA_CHROMIUM;
  notes.push(`Browser suites SKIPPED: no Chromium at ${chromium} (apt-get install -y chromium)`);
}

const clusterTools = ['redis-server', 'redis-cli'].filter((c) => spawnSync(c, ['--version']).status !== 0);
if (clusterTools.length > 0) {
  notes.push(
    `Redis Cluster suites SKIPPED: no ${clusterTools.join(' or ')} on the PATH (apt-get install -y redis-server)`,
  );
}

for (const n of notes) console.log(`!! ${n}`);
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { cwd: root, env, stdio: 'inherit' },
);
for (const n of notes) console.log(`!! ${n}`);
process.exit(result.status ?? 1);
