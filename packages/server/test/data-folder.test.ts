// The data folder holds password hashes, token hashes, encrypted keys, the audit trail and the
// generated secret: only its owner may read it, however it was created and whatever umask ran.
// On the embedded store one serving process owns it, and a second server there refuses to start.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { loadOrCreateSecret } from '../src/domain/secrets.js';
import { closeStores } from '../src/store/open.js';
import { DataFolderInUseError } from '../src/store/server-lock.js';
import { openSqliteStores } from '../src/store/sqlite.js';
import { createTessera, type Tessera } from '../src/tessera.js';
import { freePort, PASSWORD, runTessera, SECRET, TESSERA_COMMAND } from './helpers.js';

const root = mkdtempSync(path.join(tmpdir(), 'tessera-perms-'));
after(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

/** Opens the SQLite file and the generated secret in `dataDir`, writes a row, and returns them open. */
async function open(dataDir: string) {
  const stores = openSqliteStores(path.join(dataDir, 'tessera.sqlite'));
  loadOrCreateSecret(undefined, dataDir);
  const now = Date.now();
  await stores.users.createUser({
    id: randomUUID(),
    username: `u${randomUUID()}`,
    passwordHash: 'x',
    roles: [],
    disabled: false,
    createdAt: now,
    passwordChangedAt: now,
    email: null,
    emailVerified: false,
  });
  return {
    files: ['tessera.sqlite', 'tessera.sqlite-wal', 'tessera.sqlite-shm', 'secret'],
    close: () => closeStores(stores),
  };
}

function assertPrivate(dataDir: string, files: string[]) {
  assert.equal(octal(mode(dataDir)), '0700', 'the data folder is owner-only');
  for (const f of files) {
    const file = path.join(dataDir, f);
    assert.ok(existsSync(file), `${f} exists`);
    assert.equal(octal(mode(file)), '0600', `${f} is owner-only`);
  }
}

describe('the generated secret', () => {
  it('is read back as written, and an empty or cut-short file is refused, not used', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-secret-'));
    try {
      const first = loadOrCreateSecret(undefined, dir);
      assert.equal(first.generated, true);
      assert.deepEqual(loadOrCreateSecret(undefined, dir), { secret: first.secret, generated: false });
      for (const broken of ['', '\n', first.secret.slice(0, 10)]) {
        writeFileSync(path.join(dir, 'secret'), broken, { mode: 0o600 });
        assert.throws(() => loadOrCreateSecret(undefined, dir), /holds no usable secret/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('data folder permissions', () => {
  it('creates the folder 0700 and every file in it 0600, WAL files and the secret too', async () => {
    const previous = process.umask(0o022);
    try {
      const dataDir = path.join(root, 'fresh');
      const opened = await open(dataDir);
      try {
        assertPrivate(dataDir, opened.files);
      } finally {
        await opened.close();
      }
    } finally {
      process.umask(previous);
    }
  });

  it('tightens a folder and files left readable by others when it starts', async () => {
    const dataDir = path.join(root, 'loose');
    // An earlier version, or a crash, left everything world-readable, WAL files included.
    const first = await open(dataDir);
    try {
      chmodSync(dataDir, 0o755);
      for (const f of first.files) chmodSync(path.join(dataDir, f), 0o644);
      const again = await open(dataDir);
      try {
        assertPrivate(dataDir, again.files);
      } finally {
        await again.close();
      }
    } finally {
      await first.close();
    }
  });
});

describe('one server per data folder (embedded store)', () => {
  const IN_USE = /another Tessera server is running on the data folder .*PostgreSQL and Redis/;

  /** A config on `dataDir` with the embedded SQLite default and a port of its own. */
  async function configOn(dataDir: string) {
    const port = await freePort();
    return loadConfig({}, { port, issuer: `http://127.0.0.1:${port}`, dataDir, secret: SECRET });
  }

  /** A server listening on `dataDir`, with the stores the config names (SQLite in the folder). */
  async function serve(dataDir: string): Promise<{ tessera: Tessera; url: string }> {
    const tessera = await createTessera(await configOn(dataDir), { logger: false });
    try {
      return { tessera, url: await tessera.listen() };
    } catch (err) {
      await tessera.close();
      throw err;
    }
  }

  it('refuses a second server on the folder while the first serves, and starts one after it closed', async () => {
    const dataDir = path.join(root, 'two-servers');
    const first = await serve(dataDir);
    try {
      assert.equal(octal(mode(path.join(dataDir, 'server.lock'))), '0600', 'the lock file is owner-only');
      const second = await createTessera(await configOn(dataDir), { logger: false });
      await assert.rejects(second.listen(), (err: unknown) => {
        assert.ok(err instanceof DataFolderInUseError);
        assert.match(err.message, IN_USE);
        assert.ok(err.message.includes(dataDir), 'the message names the folder');
        return true;
      });
      assert.equal(second.app.fastify.server.listening, false, 'the second never listened');
      await second.close();
      assert.equal((await fetch(`${first.url}/readyz`)).status, 200, 'the first keeps serving');
    } finally {
      await first.tessera.close();
    }
    const next = await serve(dataDir);
    assert.equal(
      (await fetch(`${next.url}/readyz`)).status,
      200,
      'a new server starts once the first closed',
    );
    await next.tessera.close();
  });

  it('`tessera serve` on a folder in use exits 1 with one line saying so', async () => {
    const dataDir = path.join(root, 'serve-in-use');
    const running = await serve(dataDir);
    try {
      const port = await freePort();
      const res = runTessera(['serve'], {
        TESSERA_DATA_DIR: dataDir,
        TESSERA_PORT: String(port),
        TESSERA_ISSUER: `http://127.0.0.1:${port}`,
        TESSERA_SECRET: SECRET,
        TESSERA_LOG_LEVEL: 'silent',
      });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, new RegExp(`^error: ${IN_USE.source}[^\\n]*\\n$`), 'one line, no stack trace');
      assert.equal((await fetch(`${running.url}/readyz`)).status, 200);
    } finally {
      await running.tessera.close();
    }
  });

  it('the tessera commands (no HTTP) still open the folder while a server runs on it', async () => {
    const dataDir = path.join(root, 'cli-beside-server');
    const running = await serve(dataDir);
    try {
      const core = await createTessera(await configOn(dataDir), { http: false });
      try {
        await core.auth.register('beside', PASSWORD);
        assert.equal(core.keys.list().length, 2);
      } finally {
        await core.close();
      }
      const res = runTessera(['users', 'add', 'viacli'], {
        TESSERA_DATA_DIR: dataDir,
        TESSERA_SECRET: SECRET,
        TESSERA_PASSWORD: PASSWORD,
        TESSERA_LOG_LEVEL: 'silent',
      });
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /created user viacli/);
      const users = await running.tessera.stores.users.listUsers(10, 0);
      assert.deepEqual(users.map((u) => u.username).sort(), ['beside', 'viacli'], 'the server sees both');
      assert.equal((await fetch(`${running.url}/readyz`)).status, 200);
    } finally {
      await running.tessera.close();
    }
  });

  it('a lock left by a process that died (SIGKILL) does not block the next server', async () => {
    const dataDir = path.join(root, 'killed');
    const port = await freePort();
    // The child is `tessera serve` itself: it takes the folder the way every server does.
    const child = spawn(process.execPath, [...TESSERA_COMMAND, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        TESSERA_DATA_DIR: dataDir,
        TESSERA_PORT: String(port),
        TESSERA_ISSUER: `http://127.0.0.1:${port}`,
        TESSERA_SECRET: SECRET,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_, signal) => resolve(signal)),
    );
    try {
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      await new Promise<void>((resolve, reject) => {
        let stdout = '';
        child.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('tessera listening')) resolve();
        });
        child.once('exit', (code) =>
          reject(new Error(`the child exited (${code}) before listening: ${stderr}`)),
        );
      });
      const refused = await serve(dataDir).then(
        async (s) => {
          await s.tessera.close();
          return undefined;
        },
        (err: unknown) => err,
      );
      assert.ok(refused instanceof DataFolderInUseError, 'the running child holds the folder');
    } finally {
      child.kill('SIGKILL');
    }
    assert.equal(await exited, 'SIGKILL');
    const next = await serve(dataDir);
    assert.equal((await fetch(`${next.url}/readyz`)).status, 200, 'nothing stale to clean up');
    await next.tessera.close();
  });
});
