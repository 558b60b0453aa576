// The data folder holds password hashes, token hashes, encrypted keys, the audit trail and the
// generated secret: only its owner may read it, however it was created and whatever umask ran.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { loadOrCreateSecret } from '../src/domain/secrets.js';
import { closeStores } from '../src/store/open.js';
import { openSqliteStores } from '../src/store/sqlite.js';

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
