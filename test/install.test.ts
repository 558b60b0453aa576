// The packages as a user gets them: `npm pack` the three workspaces (built by scripts/test.mjs
// before the suites run), `npm install` the tarballs into an empty folder outside the repository,
// and use them there with plain `node`: no workspace links, no TypeScript loader. The tessera
// command serves, a plain .mjs verifies its tokens with @tessera/verify, another signs in with
// @tessera/client, and tsc checks a Fastify app's `request.auth` against the shipped types.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort, PASSWORD, uniqueName } from '../packages/server/test/helpers.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const fixtures = path.join(import.meta.dirname, 'install');
const require = createRequire(import.meta.url);
const PACKAGES = ['verify', 'client', 'server'] as const;

/** The environment of a user's shell: no source condition or loader, no npm script context. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_ENV' || k.toLowerCase().startsWith('npm_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

async function node(cwd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd, env: userEnv(env), timeout: 60_000 });
  return stdout;
}

interface Packed {
  name: string;
  filename: string;
  size: number;
  entryCount: number;
  files: { path: string }[];
}

/**
 * better-sqlite3 fetches its native binary from outside the npm registry at install time, which
 * is not reachable here; its install script takes a local prebuild instead, made from the
 * workspace's own build of the same version. Everything else comes from the tarballs and npm.
 */
async function localSqlitePrebuild(dir: string): Promise<void> {
  const pkgDir = path.dirname(require.resolve('better-sqlite3/package.json'));
  const { version } = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const binary = 'build/Release/better_sqlite3.node';
  assert.ok(existsSync(path.join(pkgDir, binary)), `no ${binary} in the workspace's better-sqlite3`);
  const abi = `node-v${process.versions.modules}-${process.platform}-${process.arch}`;
  await run('tar', ['czf', path.join(dir, `better-sqlite3-v${version}-${abi}.tar.gz`), binary], {
    cwd: pkgDir,
  });
}

let work: string;
let project: string;
let packed: Packed[];
let server: ChildProcess | undefined;
let serverLog = '';
let issuer: string;
let dataDir: string;

before(async () => {
  for (const p of PACKAGES) {
    assert.ok(existsSync(path.join(root, 'packages', p, 'dist/index.js')), `packages/${p} is not built`);
  }
  work = mkdtempSync(path.join(tmpdir(), 'tessera-install-'));
  const tarballs = path.join(work, 'tarballs');
  project = path.join(work, 'project');
  dataDir = path.join(work, 'data');
  const prebuilds = path.join(work, 'prebuilds');
  for (const d of [tarballs, project, prebuilds]) mkdirSync(d);

  const { stdout } = await run(
    'npm',
    [
      'pack',
      '--json',
      '--ignore-scripts',
      '--pack-destination',
      tarballs,
      ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`]),
    ],
    { cwd: root, env: userEnv(), timeout: 120_000 },
  );
  packed = JSON.parse(stdout);

  await localSqlitePrebuild(prebuilds);
  writeFileSync(path.join(project, '.prebuild-installrc'), `local-prebuilds=${prebuilds}\n`);
  // As the README says: npm 11 runs the native modules' install scripts only when allowed.
  const allowScripts = { argon2: true, 'better-sqlite3': true };
  writeFileSync(
    path.join(project, 'package.json'),
    `${JSON.stringify({ name: 'install-check', private: true, type: 'module', allowScripts }, null, 2)}\n`,
  );
  await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...packed.map((p) => path.join(tarballs, p.filename)),
    ],
    { cwd: project, env: userEnv(), timeout: 240_000 },
  );
});

after(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((resolve) => server?.once('exit', resolve));
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

test('each tarball holds built JavaScript, .d.ts and its README: no tests, no TypeScript sources', () => {
  assert.deepEqual(packed.map((p) => p.name).sort(), [
    '@tessera/client',
    '@tessera/server',
    '@tessera/verify',
  ]);
  for (const p of packed) {
    const files = p.files.map((f) => f.path);
    console.log(`${p.filename}: ${p.size} bytes, ${p.entryCount} files`);
    assert.ok(files.includes('README.md') && files.includes('LICENSE'), p.name);
    assert.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), p.name);
    const unwanted = files.filter(
      (f) =>
        /(^|\/)test\//.test(f) || /\.test\./.test(f) || /(?<!\.d)\.ts$/.test(f) || f.endsWith('.tsbuildinfo'),
    );
    assert.deepEqual(unwanted, [], p.name);
  }
  const server = packed.find((p) => p.name === '@tessera/server')!.files.map((f) => f.path);
  for (const f of ['bin/tessera.mjs', 'resources/common-passwords.txt', 'dist/assets/app.js']) {
    assert.ok(server.includes(f), f);
  }
  const client = packed.find((p) => p.name === '@tessera/client')!.files.map((f) => f.path);
  assert.ok(client.includes('dist/browser/sdk.js') && client.includes('dist/browser/sdk.js.map'));
});

test('the install is real copies, with no TypeScript loader or bundler among the dependencies', () => {
  for (const p of PACKAGES) {
    assert.equal(lstatSync(path.join(project, 'node_modules/@tessera', p)).isSymbolicLink(), false, p);
  }
  for (const dev of ['tsx', 'esbuild', 'typescript']) {
    assert.equal(existsSync(path.join(project, 'node_modules', dev)), false, dev);
  }
  const verify = JSON.parse(
    readFileSync(path.join(project, 'node_modules/@tessera/verify/package.json'), 'utf8'),
  );
  assert.deepEqual(verify.dependencies ?? {}, {});
});

test('tessera serve from node_modules/.bin; register, log in, verify and use the SDK with plain node', async () => {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  server = spawn(path.join(project, 'node_modules/.bin/tessera'), ['serve'], {
    cwd: project,
    env: userEnv({
      TESSERA_PORT: String(port),
      TESSERA_ISSUER: issuer,
      TESSERA_DATA_DIR: dataDir,
      TESSERA_LOG_LEVEL: 'warn',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (d) => {
    serverLog += d;
  });
  server.stderr?.on('data', (d) => {
    serverLog += d;
  });
  let up = false;
  for (let i = 0; i < 300 && !up && server.exitCode === null; i++) {
    up = await fetch(`${issuer}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (!up) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(up, `tessera serve did not come up:\n${serverLog}`);

  const username = uniqueName('install');
  const json = { 'content-type': 'application/json' };
  const registered = await fetch(`${issuer}/auth/register`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  assert.equal(registered.status, 201);
  const userId: string = (await registered.json()).user.id;
  const login = await fetch(`${issuer}/auth/login`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ username, password: PASSWORD, mode: 'token' }),
  });
  assert.equal(login.status, 200);
  const { access_token, session_id } = await login.json();

  copyFileSync(path.join(fixtures, 'verify-token.mjs'), path.join(project, 'verify-token.mjs'));
  const verified = JSON.parse(
    await node(project, ['verify-token.mjs'], { ISSUER: issuer, ACCESS_TOKEN: access_token }),
  );
  assert.deepEqual(verified, {
    sub: userId,
    sid: session_id,
    tamperedCode: 'invalid_signature',
    logout: 204,
    afterLogout: 'token_revoked',
  });

  copyFileSync(path.join(fixtures, 'use-client.mjs'), path.join(project, 'use-client.mjs'));
  const used = JSON.parse(
    await node(project, ['use-client.mjs'], { ISSUER: issuer, USERNAME: username, PASSWORD }),
  );
  assert.deepEqual(used, { username, mode: 'token', sessions: 1, afterLogout: 'not_signed_in' });

  // The pages load the SDK file the installed @tessera/client ships.
  const sdk = await (await fetch(`${issuer}/assets/sdk.js`)).text();
  assert.equal(
    sdk,
    readFileSync(path.join(project, 'node_modules/@tessera/client/dist/browser/sdk.js'), 'utf8'),
  );
  assert.equal((await fetch(`${issuer}/signin`)).status, 200);

  server.kill('SIGTERM');
  const code = await new Promise((resolve) => server?.once('exit', resolve));
  assert.equal(code, 0, serverLog);

  const listed = await run(path.join(project, 'node_modules/.bin/tessera'), ['users', 'list'], {
    cwd: project,
    env: userEnv({ TESSERA_DATA_DIR: dataDir }),
    timeout: 60_000,
  });
  assert.match(listed.stdout, new RegExp(`\\b${username}\\b`));
});

test("a Fastify app's request.auth is typed by the shipped @tessera/verify/fastify", async () => {
  const fixture = path.join(root, 'packages/verify/test/types/fastify-auth.ts');
  copyFileSync(fixture, path.join(project, 'fastify-auth.ts'));
  writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [path.join(root, 'node_modules/@types')],
      },
      files: ['fastify-auth.ts'],
    }),
  );
  const tsc = require.resolve('typescript/bin/tsc');
  const out = await node(project, [tsc, '-p', 'tsconfig.json', '--listFiles']).catch((err) => {
    assert.fail(`tsc refused the fixture against the installed packages:\n${err.stdout}${err.stderr}`);
  });
  const files = out.split('\n').map((f) => path.relative(project, f));
  assert.ok(files.includes('node_modules/@tessera/verify/dist/middleware/fastify.d.ts'), out);
});
