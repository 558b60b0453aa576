import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Copies the write-ahead log back into the database file from a worker thread with its own
 * connection, every `intervalMs`. A checkpoint is the one step of WAL mode that waits for the
 * disk (fsync); done on the request thread, it stalls every request behind it. The request
 * thread keeps SQLite's own automatic checkpoint at a high mark as a fallback, so the log stays
 * bounded if this thread ever stops.
 */
export class SqliteCheckpointer {
  private readonly worker: Worker;

  constructor(file: string, intervalMs = 250) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      const Database = require(workerData.driver);
      const db = new Database(workerData.file, { fileMustExist: true });
      db.pragma('busy_timeout = 1000');
      const checkpoint = () => {
        try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy or gone: the next tick retries */ }
      };
      const timer = setInterval(checkpoint, workerData.intervalMs);
      parentPort.once('message', () => {
        clearInterval(timer);
        checkpoint();
        db.close();
        parentPort.close();
      });
      `,
      { eval: true, workerData: { driver, file, intervalMs } },
    );
    this.worker.unref();
  }

  /** Runs a last checkpoint and ends the thread. */
  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.ref();
    this.worker.postMessage('close');
    await exited;
  }
}
