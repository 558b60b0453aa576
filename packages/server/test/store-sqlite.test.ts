import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../src/store/sqlite.js';
import { runStoreContract } from './store-contract.js';

runStoreContract('sqlite (memory)', async () => new SqliteStore(':memory:'));
runStoreContract(
  'sqlite (file, WAL)',
  async () => new SqliteStore(path.join(mkdtempSync(path.join(tmpdir(), 'tessera-')), 'db.sqlite')),
);
