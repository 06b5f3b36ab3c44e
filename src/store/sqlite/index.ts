import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, sep } from 'node:path';
import Database from 'better-sqlite3';
import { messageOf, WritError } from '../../core/errors.js';
import type { LogEntry, LogHead } from '../../log/entry.js';
import { type ChainReport, ChainVerifier } from '../../log/verify.js';
import { indexedDecision, KvStore } from '../kv-store.js';
import type { Kind, KvView } from '../ledger.js';
import type { Store } from '../types.js';
import { Checkpointer } from './checkpointer.js';
import { MIGRATIONS } from './schema.js';
import { CachedState, parseStored } from './state.js';

/** Options of {@link sqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * The database file; created with its directory if missing. Default `./.writ/writ.db`. A
   * path that names a directory (`data/`, or one that exists) is a `USAGE` error.
   */
  path?: string;
  /**
   * `NORMAL` (default): durable across process crashes, may lose the last commits on power
   * loss. `FULL`: fsync on every commit — combine with group commit.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * Run the steps that arrive together in one transaction (one fsync), in arrival order,
   * each all-or-nothing as before. Default: on with `FULL`, off with `NORMAL`.
   */
  groupCommit?: boolean;
  /**
   * Open the existing store only to read it: no migration, no checkpoint, nothing written
   * (a write step fails with `STORE_FAILURE`). It works where the file, or its directory,
   * cannot be written. Where SQLite cannot make the WAL's shared-memory file (`-shm`) beside
   * it, a store with no write-ahead log is read from a private copy in memory, as it was
   * when opened; one whose `-wal` holds commits is refused, as reading the file alone would
   * miss them. A store of an older schema is refused: opened read-only, it cannot be migrated.
   */
  readonly?: boolean;
}

const STORE_OPTIONS = [
  'path',
  'synchronous',
  'groupCommit',
  'readonly',
] as const satisfies readonly (keyof SqliteStoreOptions)[];
/** Fails to compile when the options gain a key the list does not name. */
type UnlistedOption = Exclude<keyof SqliteStoreOptions, (typeof STORE_OPTIONS)[number]>;
const _everyOptionListed: [UnlistedOption] extends [never] ? true : UnlistedOption = true;

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** How long a step waits for another connection's write lock before it fails. */
const LOCK_WAIT_MS = 5_000;
/**
 * How long SQLite itself waits for a lock, blocking the thread: another process's commit
 * takes far less. Past it the store waits on timers, so that the event loop — every other
 * call in this process — runs meanwhile; SQLite's own wait would freeze it.
 */
const BLOCKING_WAIT_MS = 20;

const isBusy = (error: unknown) => (error as { code?: unknown } | null)?.code === 'SQLITE_BUSY';
/**
 * Whether SQLite failed because it could not write the file or make one beside it (a
 * read-only file, directory or mount): `SQLITE_READONLY…`, `SQLITE_CANTOPEN…`, `SQLITE_PERM`.
 */
export function cannotWrite(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^SQLITE_(READONLY|CANTOPEN|PERM)/.test(code)) return true;
  }
  return false;
}
const lockedOut = (cause?: unknown) =>
  new WritError(
    'STORE_FAILURE',
    `another connection held the SQLite store's write lock for more than ${LOCK_WAIT_MS / 1000} s`,
    undefined,
    cause === undefined ? undefined : { cause },
  );
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An error of the SQLite driver as the store's failure, naming the file: a page damaged on
 * disk ("database disk image is malformed"), a full disk, an I/O error. The store's contract
 * is that it fails with a `STORE_FAILURE` (which the engine turns into a denial, and the CLI
 * into one line and exit 2), not with a driver's error. Anything else — writ's own errors —
 * passes as it is.
 */
function driverFailure(path: string, error: unknown): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  return new WritError(
    'STORE_FAILURE',
    `the SQLite store ${path} failed: ${error.message}`,
    { path, code: error.code },
    { cause: error },
  );
}

interface Job {
  step: (view: KvView) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

class SqliteStore extends KvStore {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  readonly #path: string;
  /** Opened with `readonly: true`: every write step fails, nothing is indexed. */
  readonly #readonly: boolean;
  readonly #groupCommit: boolean;
  readonly #state: CachedState;
  /**
   * Checkpoints the WAL from a worker thread, for a store that commits step by step. Not
   * under group commit, where a checkpoint is shared by a batch, and a commit's many pages
   * make commits a poor count of the WAL's length (measured: the worker doubled the 99th
   * percentile there); nor for a database in memory.
   */
  readonly #checkpointer: Checkpointer | undefined;
  protected readonly view: KvView;
  /** Runs a body in `BEGIN IMMEDIATE`, with the cache synced before and flushed after. */
  readonly #immediate: Database.Transaction<(body: () => unknown) => unknown>;
  #queue: Job[] = [];
  #flushScheduled = false;
  /** When the group-commit queue began waiting for another connection's lock, and its next pause. */
  #lockedSince: number | undefined;
  #lockPause = 1;
  /**
   * Set while one step waits for another connection's lock; settles when it has the lock
   * or gives up. Steps that arrive meanwhile wait behind it: each retry blocks the thread
   * in SQLite's short busy wait, and many waiters retrying at once would block it always.
   */
  #lockTurn: Promise<void> | undefined;
  readonly #entryAt: Database.Statement<[number], { entry: string }>;
  readonly #allLog: Database.Statement<[], { seq: number; entry: string }>;
  readonly #logAfter: Database.Statement<[number, number], { seq: number; entry: string }>;
  readonly #decisionSeq: Database.Statement<[string], number>;
  readonly #lastIndexed: Database.Statement<[], number | null>;
  readonly #indexDecision: Database.Statement<[string, number]>;
  readonly #lastLogged: Database.Statement<[], number | null>;
  readonly #logHead: Database.Statement<[], string>;
  /** The log entry this connection last brought the decision index up to. */
  #indexedThrough = 0;

  constructor(options: SqliteStoreOptions) {
    super();
    // A misspelt option must not quietly give weaker durability, or another file, than asked
    // for: `{ pth }` would have opened ./.writ/writ.db.
    const unknown = Object.keys(options).find((key) => !STORE_OPTIONS.includes(key as never));
    if (unknown !== undefined)
      throw new WritError(
        'USAGE',
        `sqliteStore: there is no option ${unknown}; the options are ${STORE_OPTIONS.join(', ')}`,
      );
    const {
      path = '.writ/writ.db',
      synchronous = 'NORMAL',
      groupCommit,
      readonly = false,
    } = options;
    if (typeof path !== 'string' || path === '')
      throw new WritError(
        'USAGE',
        `sqliteStore: path must be a file path, not ${JSON.stringify(path)}`,
      );
    // SQLite would open `dir/` as the file `dir`: a store somewhere else than asked, which
    // the next open of `dir/` would not find.
    if (namesDirectory(path))
      throw new WritError(
        'USAGE',
        `sqliteStore: path must name the store's file, not a directory: ${JSON.stringify(path)}`,
      );
    if (synchronous !== 'NORMAL' && synchronous !== 'FULL') {
      throw new WritError(
        'USAGE',
        `sqliteStore: synchronous must be 'NORMAL' or 'FULL', not ${JSON.stringify(synchronous)}`,
      );
    }
    if (groupCommit !== undefined && typeof groupCommit !== 'boolean') {
      throw new WritError(
        'USAGE',
        `sqliteStore: groupCommit must be true or false, not ${JSON.stringify(groupCommit)}`,
      );
    }
    if (typeof readonly !== 'boolean')
      throw new WritError(
        'USAGE',
        `sqliteStore: readonly must be true or false, not ${JSON.stringify(readonly)}`,
      );
    if (readonly && path === ':memory:')
      throw new WritError('USAGE', 'sqliteStore: a database in memory cannot be opened read-only');
    const db = readonly ? openReadOnly(path) : open(path, synchronous);
    this.#db = db;
    this.#path = path;
    this.#readonly = readonly;
    // Nothing of the store may fail to be prepared with the file left open.
    try {
      this.#groupCommit = groupCommit ?? synchronous === 'FULL';
      this.#checkpointer =
        path === ':memory:' || readonly || this.#groupCommit
          ? undefined
          : new Checkpointer(db, path);
      const state = new CachedState(db);
      this.#state = state;
      // Reads outside a step fail as the store's failure, as a step does (`#transaction`).
      this.view = {
        ...state.reader,
        get: (kind, key) => this.#reading(() => state.reader.get(kind, key)),
        list: (kind) => this.#reading(() => state.reader.list(kind)),
      };
      this.#immediate = db.transaction((body: () => unknown) => {
        state.sync();
        const value = body();
        state.flush();
        return value;
      });
      this.#entryAt = db.prepare('SELECT entry FROM log WHERE seq = ?');
      // As text: a row rewritten as a BLOB would be read as a Buffer, which the verifier,
      // hashing the stored text, cannot read; its bytes are the text that must verify.
      this.#allLog = db.prepare('SELECT seq, CAST(entry AS TEXT) AS entry FROM log ORDER BY seq');
      this.#logAfter = db.prepare('SELECT seq, entry FROM log WHERE seq > ? ORDER BY seq LIMIT ?');
      this.#decisionSeq = db.prepare<[string], number>('SELECT seq FROM decision WHERE id = ?');
      this.#decisionSeq.pluck();
      this.#lastIndexed = db.prepare<[], number | null>('SELECT max(seq) FROM decision');
      this.#lastIndexed.pluck();
      this.#indexDecision = db.prepare('INSERT OR IGNORE INTO decision (id, seq) VALUES (?, ?)');
      this.#lastLogged = db.prepare<[], number | null>('SELECT max(seq) FROM log');
      this.#lastLogged.pluck();
      // As committed, not from the cache: `verifyLog` reads it beside the rows.
      this.#logHead = db.prepare<[], string>(
        "SELECT value FROM shared WHERE kind = 'log-head' AND key = 'head'",
      );
      this.#logHead.pluck();
    } catch (error) {
      db.close();
      throw openFailure(path, error);
    }
  }

  protected atomic<T>(step: (view: KvView) => T): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.#readonly)
      return Promise.reject(
        new WritError(
          'STORE_FAILURE',
          `the SQLite store ${this.#path} was opened read-only: it cannot be written`,
          { path: this.#path },
        ),
      );
    if (!this.#groupCommit)
      return this.#whenUnlocked(() => this.#transaction(() => this.#state.step(step)));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ step, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /**
   * One `BEGIN IMMEDIATE` transaction around `body`: the cache is brought up to date first,
   * the buffered writes go to SQLite last, and a failure anywhere leaves nothing behind, in
   * the database or in the cache.
   */
  #transaction<T>(body: () => T): T {
    let value: T;
    try {
      value = this.#immediate.immediate(body) as T;
    } catch (error) {
      this.#state.rolledBack();
      // A lock another connection holds is waited for by the caller (`#whenUnlocked`).
      throw isBusy(error) ? error : driverFailure(this.#path, error);
    }
    this.#state.committed();
    try {
      this.#checkpointer?.committed();
    } catch {
      // The step is committed: a checkpoint that fails must not report it as failed (its
      // caller would deny a call whose reservations stand). The WAL keeps every page; the
      // next round, or SQLite's own checkpoint, copies them.
    }
    return value;
  }

  /** Runs a read outside a step; an error of the driver is a `STORE_FAILURE`. */
  #reading<T>(read: () => T): T {
    try {
      return read();
    } catch (error) {
      throw driverFailure(this.#path, error);
    }
  }

  /**
   * Runs `attempt` — a transaction, or anything else that takes the write lock — and while
   * another connection holds the lock, tries again on a timer, for up to `LOCK_WAIT_MS`.
   * Nothing of a transaction has run when it cannot begin, so trying again is safe.
   */
  async #whenUnlocked<T>(attempt: () => T): Promise<T> {
    const deadline = performance.now() + LOCK_WAIT_MS;
    if (!this.#lockTurn) {
      try {
        return attempt();
      } catch (error) {
        if (!isBusy(error)) throw error;
      }
    }
    return this.#waitForLock(attempt, deadline);
  }

  /** `#whenUnlocked` once the lock was found taken, or another step already waits for it. */
  async #waitForLock<T>(attempt: () => T, deadline: number): Promise<T> {
    const tryOnce = (): { value: T } | undefined => {
      try {
        return { value: attempt() };
      } catch (error) {
        if (!isBusy(error)) throw error;
        if (performance.now() >= deadline) throw lockedOut(error);
        return undefined;
      }
    };
    if (this.#lockTurn) {
      while (this.#lockTurn) await this.#lockTurn;
      // Woken with the others: a step whose time is up, or whose store closed meanwhile,
      // fails without another try — each would hold the thread in SQLite's busy wait.
      this.assertOpen();
      if (performance.now() >= deadline) throw lockedOut();
      const first = tryOnce();
      if (first) return first.value;
    }
    // This step waits for the lock; the others wait for it (`#lockTurn`).
    let done = () => {};
    this.#lockTurn = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      for (let wait = 1; ; wait = Math.min(2 * wait, 50)) {
        await pause(wait);
        this.assertOpen();
        const next = tryOnce();
        if (next) return next.value;
      }
    } finally {
      this.#lockTurn = undefined;
      done();
    }
  }

  /**
   * Group commit: every step queued since the last flush runs in one transaction, in order.
   * A step that throws (settling a settled writ) leaves nothing behind — its writes are held
   * apart until it returns — so it fails alone. When the transaction itself fails (a record
   * that is not JSON, a full disk), nothing of it was committed, and each step is run again
   * in a transaction of its own, so that only the steps that cannot commit fail.
   */
  #flush() {
    const jobs = this.#queue;
    this.#queue = [];
    this.#flushScheduled = false;
    // Closed while the batch waited for another process's lock: nothing of it committed.
    if (this.closed) {
      for (const job of jobs) job.reject(this.closedError());
      return;
    }
    let outcomes: Outcome[];
    try {
      outcomes = this.#transaction(() => jobs.map((job) => this.#attempt(job)));
      this.#lockedSince = undefined;
      this.#lockPause = 1;
    } catch (error) {
      // Another connection holds the lock: the batch waits its turn, in front of what
      // arrives meanwhile, on a timer (see `#whenUnlocked`).
      this.#lockedSince ??= performance.now();
      if (isBusy(error) && performance.now() - this.#lockedSince < LOCK_WAIT_MS) {
        this.#queue = [...jobs, ...this.#queue];
        this.#flushScheduled = true;
        setTimeout(() => this.#flush(), this.#lockPause);
        this.#lockPause = Math.min(2 * this.#lockPause, 50);
        return;
      }
      this.#lockedSince = undefined;
      this.#lockPause = 1;
      // Locked out for good: every step fails at once, none tries again alone (each try
      // would hold the thread in SQLite's busy wait).
      if (isBusy(error)) outcomes = jobs.map(() => ({ ok: false, error: lockedOut(error) }));
      else if (jobs.length === 1) outcomes = [{ ok: false, error }];
      else
        outcomes = jobs.map((job) => {
          try {
            return this.#transaction(() => this.#attempt(job));
          } catch (error) {
            return { ok: false, error };
          }
        });
    }
    jobs.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) job.resolve(outcome.value);
      else job.reject(outcome.error);
    });
  }

  /** Runs one queued step inside the open transaction; what it throws is its own outcome. */
  #attempt(job: Job): Outcome {
    try {
      return { ok: true, value: this.#state.step(job.step) };
    } catch (error) {
      return { ok: false, error: driverFailure(this.#path, error) };
    }
  }

  /** Where each kind's sweep goes on: the last key it looked at. */
  readonly #sweeps = new Map<Kind, string>();

  protected sweepKeys(kind: Kind, limit: number): { keys: string[]; done: boolean } {
    const after = this.#sweeps.get(kind) ?? '';
    const keys = this.#reading(() => this.#state.keysAfter(kind, after, limit));
    const done = keys.length < limit;
    if (done) this.#sweeps.delete(kind);
    else this.#sweeps.set(kind, keys[keys.length - 1]!);
    return { keys, done };
  }

  protected get closed(): boolean {
    return !this.#db.open;
  }

  async readLog(afterSeq: number, limit: number): Promise<LogEntry[]> {
    this.assertOpen();
    const rows = this.#reading(() => this.#logAfter.all(afterSeq, limit));
    return rows.map((row) => storedEntry(row.seq, row.entry));
  }

  async findDecision(id: string): Promise<LogEntry | undefined> {
    this.assertOpen();
    let indexed = !this.#readonly;
    if (indexed) {
      try {
        await this.#whenUnlocked(() => this.#indexDecisions());
      } catch (error) {
        // A file this process may read but not write (SQLite opened it read-only): the log
        // is searched instead of the index being brought up to date.
        if (!cannotWrite(error)) throw driverFailure(this.#path, error);
        indexed = false;
      }
    }
    let seq = this.#reading(() => this.#decisionSeq.get(id));
    if (seq === undefined && !indexed) seq = this.#reading(() => this.#searchUnindexed(id));
    const row = seq === undefined ? undefined : this.#reading(() => this.#entryAt.get(seq));
    return row === undefined || seq === undefined
      ? undefined
      : indexedDecision(id, seq, storedEntry(seq, row.entry));
  }

  /**
   * Where decision `id` is among the log entries the index does not cover yet, read without
   * writing the index (a store opened read-only): a batch at a time, up to the first match.
   */
  #searchUnindexed(id: string): number | undefined {
    let after = this.#lastIndexed.get() ?? 0;
    for (;;) {
      const rows = this.#logAfter.all(after, 1000);
      for (const { seq, entry } of rows) if (decisionIdOf(seq, entry) === id) return seq;
      if (rows.length === 0) return undefined;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /**
   * Brings the decision index up to the end of the log. A decision does not write its index
   * row — one row and one page fewer per decision — so a look-up first indexes the entries
   * appended since the last decision indexed, a batch at a time, under the write lock.
   */
  #indexDecisions() {
    // Most look-ups find the index current: then they need no write lock to find that out.
    if (this.#indexedThrough >= (this.#lastLogged.get() ?? 0)) return;
    // A transaction per batch: a long backlog must not hold the write lock, which every
    // decision needs, for longer than one batch takes. (Another connection indexing the
    // same rows meanwhile is harmless: an entry is indexed once, `INSERT OR IGNORE`.)
    const indexBatch = this.#db.transaction((after: number): number | undefined => {
      const rows = this.#logAfter.all(after, 1000);
      for (const { seq, entry } of rows) {
        const id = decisionIdOf(seq, entry);
        if (id !== undefined) this.#indexDecision.run(id, seq);
      }
      return rows[rows.length - 1]?.seq;
    });
    let after = this.#lastIndexed.get() ?? 0;
    for (let last = indexBatch.immediate(after); last !== undefined; ) {
      after = last;
      last = indexBatch.immediate(after);
    }
    this.#indexedThrough = after;
  }

  /**
   * Streams the log row by row (`iterate`), so a log of any length verifies in bounded
   * memory. The rows and the head are read in one transaction, one snapshot: read apart,
   * entries another process appended in between looked like a truncated log.
   */
  async verifyLog(anchors: readonly LogHead[] = []): Promise<ChainReport> {
    this.assertOpen();
    return this.#reading(
      this.#db.transaction(() => {
        const verifier = new ChainVerifier(anchors);
        for (const row of this.#allLog.iterate()) {
          if (!verifier.push({ seq: row.seq, text: row.entry })) break;
        }
        const text = this.#logHead.get();
        return verifier.finish(text === undefined ? undefined : logHeadOf(text));
      }),
    );
  }

  async close(): Promise<void> {
    if (this.#queue.length > 0) this.#flush();
    // Steps still queued wait for another process's lock: they fail now, closed, rather
    // than run later on a closed connection.
    for (const job of this.#queue.splice(0)) job.reject(this.closedError());
    // The worker's connection first: the store's own, closed last, then checkpoints what is
    // left and removes the WAL, as it did before there was a worker.
    await this.#checkpointer?.close();
    if (this.#db.open) this.#reading(() => this.#db.close());
  }
}

/**
 * Whether `path` names a directory rather than a file: it ends in a path separator or in
 * `.` or `..`, or a directory is there.
 */
export function namesDirectory(path: string): boolean {
  if (path.endsWith('/') || path.endsWith(sep) || ['.', '..'].includes(basename(path))) return true;
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    // Cannot be looked at (a parent that is a file, no permission): opening it will say why.
    return false;
  }
}

/**
 * Opens (creating it and its directory if missing) and migrates the database at `path`. A
 * file that cannot be one — not a database, a directory, another program's database, one
 * written by a newer writ — is a `STORE_FAILURE` that names the path, and is left as it was.
 */
function open(path: string, synchronous: 'NORMAL' | 'FULL'): Database.Database {
  let db: Database.Database | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    // First, so that a process opening the file while another creates it waits its turn.
    db.pragma('busy_timeout = 5000');
    const version = refuseForeign(db);
    const opened = db;
    retryWhileLocked(() => opened.pragma('journal_mode = WAL'));
    db.pragma(`synchronous = ${synchronous}`);
    // Only a store behind this version takes the write lock to migrate: opening to read
    // must not wait for, or hold up, the processes deciding.
    if (version < MIGRATIONS.length) migrate(db);
    // Opened: from now on, a lock another connection holds is waited for on timers.
    db.pragma(`busy_timeout = ${BLOCKING_WAIT_MS}`);
    return db;
  } catch (error) {
    db?.close();
    throw openFailure(path, error);
  }
}

/**
 * Opens the existing database at `path` to read it only: nothing is created, migrated or
 * written. Where SQLite cannot make the WAL's shared-memory file beside it (the directory or
 * the mount is read-only) and there is no write-ahead log, it reads a copy of the file in
 * memory: the store as it is now, whole. A write-ahead log that holds commits is refused
 * instead: the file alone would be an older store, which must not pass for the current one.
 */
function openReadOnly(path: string): Database.Database {
  try {
    // A writer that opened the store while it was being copied has made the WAL's files:
    // it is read through them after all.
    return (
      readLive(path) ??
      readLive(path) ??
      fail('another process began writing it while it was read; try again')
    );
  } catch (error) {
    throw openFailure(path, error);
  }
}

/** The store at `path` opened read-only, or its copy; `undefined` when a writer came meanwhile. */
function readLive(path: string): Database.Database | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    let version: number;
    try {
      version = refuseForeign(db);
    } catch (error) {
      if (!cannotWrite(error)) throw error;
      db.close();
      db = undefined;
      if (walSize(path) > 0)
        throw new Error(
          `its write-ahead log ${path}-wal holds commits that cannot be read here: SQLite reads them through ${path}-shm, which it can neither open nor create (read a copy of the store and its -wal file in a directory you can write)`,
        );
      const image = readFileSync(path);
      if (walSize(path) > 0) return undefined;
      // Header bytes 18 and 19 are 2 in WAL mode, which needs the files that cannot be made
      // here: the private copy reads as a rollback-journal database, the same pages.
      if (image.length >= 20 && image[18] === 2 && image[19] === 2) image.fill(1, 18, 20);
      db = new Database(image, { readonly: true });
      version = refuseForeign(db);
    }
    if (version === 0) throw new Error('it is not a writ store (it has no writ schema)');
    if (version < MIGRATIONS.length)
      throw new Error(
        `it has schema version ${version}, older than this writ's ${MIGRATIONS.length}, and opened read-only it cannot be migrated (any writ command that can write it migrates it)`,
      );
    db.pragma(`busy_timeout = ${BLOCKING_WAIT_MS}`);
    return db;
  } catch (error) {
    db?.close();
    throw error;
  }
}

const walSize = (path: string) => statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0;
const fail = (message: string): never => {
  throw new Error(message);
};

/**
 * Runs `step` while it fails for a lock another process holds, for up to `LOCK_WAIT_MS`,
 * blocking: switching a new file to WAL takes an exclusive lock, which SQLite's busy
 * handler does not wait for when this connection already reads the file (processes
 * opening a new store at once then failed with "database is locked"). Only for opening,
 * before anything else runs on the connection.
 */
function retryWhileLocked<T>(step: () => T): T {
  const deadline = performance.now() + LOCK_WAIT_MS;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return step();
    } catch (error) {
      if (!isBusy(error) || performance.now() >= deadline) throw error;
    }
    Atomics.wait(sleeper, 0, 0, 5);
  }
}

/**
 * A log row parsed, or a `STORE_FAILURE` naming it: a row that is no entry (`null`), or holds
 * another entry, must be reported, not fail deep in a reader — which also pages on by the
 * last entry's `seq`, and would read the same rows again for ever.
 */
function storedEntry(seq: number, text: string): LogEntry {
  const record = `log entry ${seq}`;
  const entry = parseStored(text, record) as Partial<LogEntry> | null;
  const problem =
    typeof entry?.seq !== 'number'
      ? `is not a log entry: ${text.slice(0, 80)}`
      : entry.seq !== seq
        ? `holds entry ${entry.seq}`
        : undefined;
  if (problem) throw new WritError('STORE_FAILURE', `the store's ${record} ${problem}`, { record });
  return entry as LogEntry;
}

/** The decision id of a stored log entry, or `undefined` for an entry that is no decision. */
function decisionIdOf(seq: number, entry: string): string | undefined {
  if (!entry.includes('"kind":"decision"')) return undefined;
  const parsed = parseStored(entry, `log entry ${seq}`) as Partial<LogEntry> | null;
  if (parsed?.kind !== 'decision') return undefined;
  const id = parsed.decision?.id;
  if (typeof id !== 'string')
    throw new WritError('STORE_FAILURE', `the store's log entry ${seq} has no decision id`);
  return id;
}

/** The chain head as stored, or a `STORE_FAILURE`: a damaged head must not pass for none. */
function logHeadOf(text: string): LogHead {
  const head = parseStored(text, 'log head') as Partial<LogHead> | null;
  if (!Number.isSafeInteger(head?.seq) || typeof head?.hash !== 'string')
    throw new WritError('STORE_FAILURE', `the store's log head is damaged: ${text.slice(0, 80)}`);
  return head as LogHead;
}

function openFailure(path: string, error: unknown): WritError {
  return new WritError(
    'STORE_FAILURE',
    `cannot open the SQLite store ${path}: ${messageOf(error)}`,
    { path },
    { cause: error },
  );
}

/** The tables every migrated store has. */
const WRIT_TABLES = ['decision', 'log', 'shared', 'state'];

/**
 * Refuses, before changing anything in it, a database writ did not make: one written by a
 * newer writ, or one with tables of its own and no writ schema (another program's file).
 * Returns its schema version.
 */
function refuseForeign(db: Database.Database): number {
  // Both read in one snapshot: another process may be creating the store right now.
  const { version, tables } = db.transaction(() => ({
    version: db.pragma('user_version', { simple: true }) as number,
    tables: db
      .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all(),
  }))();
  if (version > MIGRATIONS.length) {
    throw new Error(
      `it has schema version ${version}, written by a newer writ; this one knows ${MIGRATIONS.length}`,
    );
  }
  const foreign =
    version === 0
      ? tables.length > 0
      : version === MIGRATIONS.length && WRIT_TABLES.some((t) => !tables.includes(t));
  if (foreign) {
    throw new Error(
      `it is not a writ store (its tables: ${tables.join(', ') || 'none'}; schema version ${version})`,
    );
  }
  return version;
}

/** Applies the migrations not yet applied, in one transaction that holds the write lock. */
function migrate(db: Database.Database) {
  db.transaction(() => {
    // Read under the lock: another process may have migrated the file since it was opened.
    const current = db.pragma('user_version', { simple: true }) as number;
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    if (current < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

/**
 * A durable store in one SQLite file (WAL). Each authorization and settlement is one
 * `BEGIN IMMEDIATE` transaction, or, with group commit, part of one shared transaction.
 * Throws a `WritError` with code `STORE_FAILURE`, naming the path, when the file cannot be
 * opened as a writ store (not a database, not writable, written by a newer writ).
 *
 * @example
 * const store = sqliteStore({ path: '.writ/writ.db', synchronous: 'FULL' });
 */
export function sqliteStore(options: SqliteStoreOptions = {}): Store {
  return new SqliteStore(options);
}
