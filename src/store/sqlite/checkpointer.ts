import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/**
 * Commits between two checkpoints the worker is asked for. A step's commit writes a handful
 * of WAL pages, so this is about SQLite's own threshold of 1,000 pages: asked more often
 * (every 64 commits), the checkpoints' syncs cost 5–10 % of the decisions per second.
 */
const COMMITS_PER_CHECKPOINT = 256;
/** The worker starts after this many commits: a short-lived process (a CLI command) never needs it. */
const COMMITS_BEFORE_START = 64;
/**
 * SQLite's own checkpoint threshold while the worker runs, in pages: far enough that the
 * worker's checkpoints always come first, close enough to bound the WAL if it falls behind.
 */
const BACKSTOP_PAGES = 10_000;
/** SQLite's default threshold, restored when the worker cannot do its job. */
const DEFAULT_PAGES = 1_000;

/**
 * The worker, as CommonJS source (a file of its own would not exist when the store runs
 * from TypeScript source under a test runner): its own connection to the database, which
 * checkpoints the WAL when asked and closes when told. A PASSIVE checkpoint never waits for
 * or blocks the writer; one that finds another checkpoint running is skipped — the next
 * request tries again.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 0');
const done = new Int32Array(workerData.done);
parentPort.on('message', (message) => {
  if (message === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    if (error.code !== 'SQLITE_BUSY' && error.code !== 'SQLITE_LOCKED') throw error;
  }
  Atomics.store(done, 0, 1);
});
`;

/**
 * Moves the bulk of WAL checkpointing off the thread that decides. SQLite checkpoints inside
 * the commit that crosses its threshold: that commit copies about a thousand pages into the
 * database file and syncs it, and the decision waiting on it takes milliseconds instead of
 * tens of microseconds — the store's 99th percentile. Here a worker thread with its own
 * connection copies the pages while the store goes on committing; at its next commit the
 * store itself checkpoints the few frames written meanwhile. Only a checkpoint that reaches
 * the end of the WAL lets the next commit start it over from the beginning, and only the
 * writer can reach the end while it is writing.
 *
 * If the worker fails, SQLite's own checkpointing takes over again: the WAL stays bounded
 * either way, and no data depends on who checkpoints.
 */
export class Checkpointer {
  readonly #db: Database.Database;
  readonly #path: string;
  #worker: Worker | undefined;
  /** Settles when the worker has exited, however it ended. */
  #exited: Promise<void> = Promise.resolve();
  /** Set to 1 by the worker when the checkpoint it was asked for is done. */
  readonly #done = new Int32Array(new SharedArrayBuffer(4));
  /** A checkpoint was asked for and the store has not yet finished it. */
  #asked = false;
  #commits = 0;
  /** Failed, or closing: no worker is (re)started, nothing is asked. */
  #stopped = false;

  constructor(db: Database.Database, path: string) {
    this.#db = db;
    // Absolute, as the worker resolves it on its own.
    this.#path = resolve(path);
  }

  /** Counts a commit; starts the worker, asks it for a checkpoint or finishes one. */
  committed(): void {
    if (this.#stopped) return;
    this.#commits++;
    if (this.#worker === undefined) {
      if (this.#commits >= COMMITS_BEFORE_START) this.#start();
    } else if (this.#asked) {
      if (Atomics.load(this.#done, 0) === 1) this.#finish();
    } else if (this.#commits % COMMITS_PER_CHECKPOINT === 0) {
      this.#asked = true;
      this.#worker.postMessage('checkpoint');
    }
  }

  /** Checkpoints what was written since the worker began: a few frames, to the end. */
  #finish(): void {
    Atomics.store(this.#done, 0, 0);
    this.#asked = false;
    try {
      this.#db.pragma('wal_checkpoint(PASSIVE)');
    } catch (error) {
      // Another process checkpointing now: the next round finishes instead.
      if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
    }
  }

  #start(): void {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        path: this.#path,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        done: this.#done.buffer,
      },
    });
    // A store nobody closed must not keep the process alive.
    worker.unref();
    this.#exited = new Promise((done) => worker.once('exit', () => done()));
    worker.on('error', () => this.#fallBack());
    this.#worker = worker;
    this.#db.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
  }

  #fallBack(): void {
    this.#stopped = true;
    this.#worker = undefined;
    if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${DEFAULT_PAGES}`);
  }

  /** Stops the worker once it has closed its connection. */
  async close(): Promise<void> {
    // Commits may still come while the worker exits: none of them may start another.
    this.#stopped = true;
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = undefined;
    // Held by the event loop until it has exited: unreferenced, a process with nothing else
    // to do would end while `close` still awaited it.
    worker.ref();
    worker.postMessage('close');
    await this.#exited;
  }
}
